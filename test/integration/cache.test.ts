/**
 * The blob cache (src/store) against the real distribution registry, every byte the registry
 * serves counted by a relay in front of it (test/helpers/counting-relay.ts):
 * - a cold pull fills the cache; a warm pull into a new layout and into a new archive fetches no
 *   blob; the layout's blobs are hard links to the cache's;
 * - a pull SIGKILLed when half the image bytes were served, run again, fetches about the other
 *   half only (partial files resumed with Range), and the result verifies;
 * - several pullers started at once on one cache get each blob from the registry once;
 * - --no-cache writes nothing to the cache.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets as blobGetsOf, pushedImage, verifyLayout } from './cache-support.js';
import { startCountingRelay, type CountingRelay } from '../helpers/counting-relay.js';
import type { OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';

let reg: RealRegistry;
let relay: CountingRelay;
let work: string;
let image: OciLayoutResult;
let imageBytes = 0;
const LAYER = 6 * 1024 * 1024;

beforeAll(async () => {
  reg = await startRegistry('open');
  work = mkdtempSync(join(tmpdir(), 'ferry-cache-'));
  ({ image, bytes: imageBytes } = await pushedImage(reg, join(work, 'src'), 'cache/app', { layers: 4, layerSize: LAYER, seed: 'cache-test' }));
  relay = await startCountingRelay(Number(reg.host.split(':')[1]));
}, 120_000);
afterAll(async () => {
  await relay?.stop();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const blobGets = (): string[] => blobGetsOf(relay);

/** Starts `ferry ARGS` and SIGKILLs it once the relay has served half the image's bytes and
 * ferry has had a moment to write what was on the wire. */
async function killAtHalf(args: string[]): Promise<void> {
  const stalled = relay.stallAt(Math.floor(imageBytes / 2));
  const child = spawn(process.execPath, [FERRY_BIN, '--progress', 'none', ...args], {
    env: { PATH: process.env['PATH'], HOME: '/nonexistent', NO_COLOR: '1' }, stdio: 'ignore',
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('close', (_c, s) => r(s)));
  await stalled;
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  relay.unstall();
}

function cacheEntries(cache: string, sub: 'blobs' | 'partial'): string[] {
  const d = join(cache, sub, 'sha256');
  return existsSync(d) ? readdirSync(d) : [];
}

describe('the blob cache', () => {
  it('cold pull fills it; warm pulls into a new layout and a new archive fetch no blob; layout blobs are hard links', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    relay.reset();
    const cold = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${join(work, 'cold')}`]);
    expect(cold.code, cold.stderr).toBe(0);
    expect(blobGets()).toHaveLength(5); // config + 4 layers
    expect(relay.served).toBeGreaterThanOrEqual(imageBytes);
    expect(cacheEntries(cache, 'blobs').length).toBeGreaterThanOrEqual(6); // + the manifest
    expect(cacheEntries(cache, 'partial').filter((f) => !f.endsWith('.state'))).toEqual([]);
    verifyLayout(join(work, 'cold'));

    relay.reset();
    const warm = await runCli(['pull', '--json', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${join(work, 'warm')}`]);
    expect(warm.code, warm.stderr).toBe(0);
    expect(blobGets()).toEqual([]);
    expect(relay.served).toBeLessThan(64 * 1024); // the tag is re-resolved: a manifest request, no blob
    expect(verifyLayout(join(work, 'warm'))).toBe(6);
    const layer = image.manifests[0]!.layerDigests[0]!.slice(7);
    expect(statSync(join(work, 'warm', 'blobs', 'sha256', layer)).ino).toBe(statSync(join(cache, 'blobs', 'sha256', layer)).ino);
    const doc = JSON.parse(warm.stdout) as { images: Array<{ servedBy?: Record<string, string> }> };
    expect(doc.images[0]!.servedBy?.[`sha256:${layer}`]).toBe('cache');

    relay.reset();
    const tar = join(work, 'warm.tar');
    const arch = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, '-o', tar]);
    expect(arch.code, arch.stderr).toBe(0);
    expect(blobGets()).toEqual([]);
    const back = await runCli(['copy', `docker-archive:${tar}`, `oci:${join(work, 'from-tar')}`]);
    expect(back.code, back.stderr).toBe(0);
    verifyLayout(join(work, 'from-tar'));
  }, 120_000);

  it('a pull SIGKILLed at half the bytes resumes: the rerun fetches about the other half, and verifies', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const out = join(work, 'killed');
    relay.reset();
    await killAtHalf(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${out}`]);
    const partial = cacheEntries(cache, 'partial').filter((f) => !f.endsWith('.state'));
    expect(partial.length).toBeGreaterThan(0);
    expect(existsSync(join(out, 'index.json'))).toBe(false);

    relay.reset();
    const rerun = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${out}`]);
    expect(rerun.code, rerun.stderr).toBe(0);
    verifyLayout(out);
    // About half was left; headers and the manifest add a little.
    expect(relay.served / imageBytes).toBeLessThan(0.55);
    expect(relay.requests.some((l) => l.startsWith('GET ') && l.includes('/blobs/'))).toBe(true);
    expect(cacheEntries(cache, 'partial')).toEqual([]);
  }, 120_000);

  it('a docker-archive pull SIGKILLed at half: the rerun takes the killed half from the cache, and removes the dead run\'s temp file', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const dir = mkdtempSync(join(work, 'tar-'));
    const tar = join(dir, 'app.tar');
    relay.reset();
    await killAtHalf(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, '-o', tar]);
    const leftover = readdirSync(dir);
    expect(leftover).toHaveLength(1); // the killed run's archive-sized temp file
    expect(leftover[0]).toMatch(/^\.app\.tar\.[0-9a-f]{8}-\d+\.[0-9a-f]{8}\.partial$/);

    relay.reset();
    const rerun = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, '-o', tar]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(relay.served / imageBytes).toBeLessThan(0.55);
    expect(readdirSync(dir)).toEqual(['app.tar']);
    const back = await runCli(['copy', `docker-archive:${tar}`, `oci:${join(work, 'tar-back')}`]);
    expect(back.code, back.stderr).toBe(0);
    expect(verifyLayout(join(work, 'tar-back'))).toBe(6);
  }, 120_000);

  it('four pullers started at once on one cache: each blob is served once, all four verify', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    relay.reset();
    const runs = await Promise.all([0, 1, 2, 3].map((i) => runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${join(work, `many-${i}`)}`])));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const gets = blobGets();
    expect(new Set(gets).size).toBe(5);
    expect(gets).toHaveLength(5);
    expect(relay.served).toBeLessThan(imageBytes * 1.05);
    for (let i = 0; i < 4; i++) expect(verifyLayout(join(work, `many-${i}`))).toBe(6);
    expect(readdirSync(join(cache, 'locks', 'sha256'))).toEqual([]);
  }, 120_000);

  it('a digest reference whose manifest is cached needs no registry: pull, inspect and export with it send no request; a tag still asks', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const pinned = `${relay.host}/cache/app@${image.digest}`;
    relay.reset();
    const first = await runCli(['pull', '--cache-dir', cache, pinned, `oci:${join(work, 'pin1')}`]);
    expect(first.code, first.stderr).toBe(0);
    expect(blobGets()).toHaveLength(5);

    relay.reset();
    const pull = await runCli(['pull', '--json', '--cache-dir', cache, pinned, `oci:${join(work, 'pin2')}`]);
    expect(pull.code, pull.stderr).toBe(0);
    expect(relay.requests).toEqual([]);
    expect(verifyLayout(join(work, 'pin2'))).toBe(6);
    const inspect = await runCli(['inspect', '--raw', '--cache-dir', cache, pinned]);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(`sha256:${createHash('sha256').update(inspect.stdout).digest('hex')}`).toBe(image.digest);
    const exp = await runCli(['export', '--json', '--cache-dir', cache, pinned, '-o', join(work, 'pin-root')]);
    expect(exp.code, exp.stderr).toBe(0);
    expect(JSON.parse(exp.stdout)).toMatchObject({ digest: image.manifestDigest, layers: 4 });
    expect(relay.requests).toEqual([]);

    // Same cache, the tag: resolved at the registry (a manifest request), blobs from the cache.
    const tag = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cache/app:v1`, `oci:${join(work, 'pin3')}`]);
    expect(tag.code, tag.stderr).toBe(0);
    expect(relay.requests.some((r) => r.includes('/manifests/v1'))).toBe(true);
    expect(blobGets()).toEqual([]);

    // A cache that lacks the manifest: the registry is asked.
    relay.reset();
    const other = await runCli(['inspect', '--raw', '--cache-dir', mkdtempSync(join(work, 'c-')), pinned]);
    expect(other.code, other.stderr).toBe(0);
    expect(relay.requests.some((r) => r.includes(`/manifests/${image.digest}`))).toBe(true);
  }, 90_000);

  it('--no-cache fetches everything and writes nothing to the cache', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    relay.reset();
    const r = await runCli(['pull', '--no-cache', `${relay.host}/cache/app:v1`, `oci:${join(work, 'nocache')}`], { env: { FERRY_CACHE_DIR: cache } });
    expect(r.code, r.stderr).toBe(0);
    expect(blobGets()).toHaveLength(5);
    expect(readdirSync(cache)).toEqual([]);
  }, 60_000);
});
