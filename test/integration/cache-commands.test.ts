/**
 * `ferry cache ls|du|prune|verify` against a cache filled by real pulls from the CNCF registry,
 * every byte it serves counted by a relay (test/helpers/counting-relay.ts):
 * - ls and du (text and --json) report what the pull stored; a missing directory is empty; --no-cache
 *   is a usage error;
 * - a blob corrupted on disk is removed by verify, and the next pull fetches just that blob;
 * - prune --keep-size while another pull into the same cache is mid-download: the old blobs go,
 *   the live download is untouched, the pull finishes and verifies.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobGets as blobGetsOf, pushedImage, verifyLayout } from './cache-support.js';
import { startCountingRelay, type CountingRelay } from '../helpers/counting-relay.js';
import type { OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { formatBytes } from '../../src/util/format.js';
import { expectDocument, expectErrorDocument } from './json-contract.js';

let reg: RealRegistry;
let relay: CountingRelay;
let work: string;
let a: OciLayoutResult;
let b: OciLayoutResult;
let bBytes = 0;
const MiB = 1024 * 1024;

beforeAll(async () => {
  reg = await startRegistry('open');
  work = mkdtempSync(join(tmpdir(), 'ferry-cache-cmd-'));
  ({ image: a } = await pushedImage(reg, join(work, 'src-a'), 'cachecmd/a', { layers: 3, layerSize: MiB / 2, seed: 'cache-cmd-a' }));
  ({ image: b, bytes: bBytes } = await pushedImage(reg, join(work, 'src-b'), 'cachecmd/b', { layers: 4, layerSize: MiB, seed: 'cache-cmd-b' }));
  relay = await startCountingRelay(Number(reg.host.split(':')[1]));
}, 120_000);
afterAll(async () => {
  await relay?.stop();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const blobGets = (): string[] => blobGetsOf(relay);

/** name → size of the files in `<cache>/<sub>/sha256`. A running pull renames and removes files
 * there: one listed by readdir and gone before its stat is left out (it was a moment's file). */
function files(cache: string, sub: string): Map<string, number> {
  const d = join(cache, sub, 'sha256');
  const sizes: Array<[string, number]> = [];
  for (const f of existsSync(d) ? readdirSync(d) : []) {
    const st = statSync(join(d, f), { throwIfNoEntry: false });
    if (st) sizes.push([f, st.size]);
  }
  return new Map(sizes);
}

async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const imageBlobs = (img: OciLayoutResult): string[] => [img.manifests[0]!.configDigest, ...img.manifests[0]!.layerDigests];

describe('ferry cache', () => {
  it('ls and du report what a pull stored (text and --json); a missing directory is empty; --no-cache is a usage error', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const pull = await runCli(['pull', '--cache-dir', cache, `${reg.host}/cachecmd/a:v1`, `oci:${join(work, 'a1')}`]);
    expect(pull.code, pull.stderr).toBe(0);
    const onDisk = files(cache, 'blobs');
    for (const d of imageBlobs(a)) expect(onDisk.has(d.slice(7)), d).toBe(true);
    const bytes = [...onDisk.values()].reduce((x, y) => x + y, 0);

    const ls = await runCli(['cache', 'ls', '--cache-dir', cache]);
    expect(ls.code, ls.stderr).toBe(0);
    const lines = ls.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DIGEST +SIZE +LAST USED$/);
    expect(lines).toHaveLength(1 + onDisk.size);
    const layer0 = a.manifests[0]!.layerDigests[0]!;
    expect(lines.find((l) => l.startsWith(layer0))).toMatch(new RegExp(` ${formatBytes(onDisk.get(layer0.slice(7))!).replace(".", "\\.")}  20\\d\\d-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\(.+ ago\\)$`));

    const lsJson = await runCli(['cache', 'ls', '--json'], { env: { FERRY_CACHE_DIR: cache } });
    expect(lsJson.code, lsJson.stderr).toBe(0);
    const doc = JSON.parse(lsJson.stdout) as { cacheDir: string; entries: Array<{ digest: string; size: number; lastUsed: string }>; partials: unknown[]; totalBytes: number };
    expectDocument(doc, 'cache ls');
    expect(doc.cacheDir).toBe(cache);
    expect(new Map(doc.entries.map((e) => [e.digest.slice(7), e.size]))).toEqual(onDisk);
    expect(doc.partials).toEqual([]);
    expect(doc.totalBytes).toBe(bytes);

    const du = await runCli(['cache', 'du', '--cache-dir', cache]);
    expect(du.code, du.stderr).toBe(0);
    expect(du.stdout.trim()).toMatch(new RegExp(`^${cache.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${onDisk.size} blobs \\(.+\\), 0 partial downloads \\(0 B\\), total .+$`));
    const duJson = JSON.parse((await runCli(['cache', 'du', '--json', '--cache-dir', cache])).stdout) as Record<string, unknown>;
    expectDocument(duJson, 'cache du');
    expect(duJson).toMatchObject({ blobCount: onDisk.size, blobBytes: bytes, partialCount: 0, partialBytes: 0, totalBytes: bytes });

    const missing = join(work, 'never-created');
    const empty = await runCli(['cache', 'ls', '--json', '--cache-dir', missing]);
    expect(empty.code, empty.stderr).toBe(0);
    expect(JSON.parse(empty.stdout)).toMatchObject({ entries: [], partials: [], totalBytes: 0 });
    expect(existsSync(missing)).toBe(false);

    const noCache = await runCli(['cache', 'prune', '--json', '--no-cache', '--cache-dir', cache]);
    expect(noCache.code).toBe(2);
    expect(noCache.stderr).toMatch(/--no-cache: ferry cache prune needs a cache/);
    expectErrorDocument(noCache.stdout, 'cache prune', 'E_USAGE', 2);
    expect(files(cache, 'blobs')).toEqual(onDisk); // nothing pruned
    const badSize = await runCli(['cache', 'prune', '--keep-size', '10 parsecs', '--cache-dir', cache]);
    expect(badSize.code).toBe(2);
    expect(badSize.stderr).toContain('--keep-size "10 parsecs": not a size');
  }, 60_000);

  it('verify removes a blob corrupted on disk (exit 0, a warning), and the next pull fetches just that blob', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const first = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cachecmd/a:v1`, `oci:${join(work, 'v1')}`]);
    expect(first.code, first.stderr).toBe(0);
    const victim = a.manifests[0]!.layerDigests[1]!;
    const path = join(cache, 'blobs', 'sha256', victim.slice(7));
    const fd = openSync(path, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 4096);
    byte[0] ^= 0xff;
    writeSync(fd, byte, 0, 1, 4096);
    closeSync(fd);
    const before = files(cache, 'blobs');
    const size = formatBytes(before.get(victim.slice(7))!).replace('.', '\\.');

    const v = await runCli(['cache', 'verify', '--cache-dir', cache]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(new RegExp(`warning: cache: removed ${victim} \\(${size}\\): content hashes to sha256:[0-9a-f]{64}`));
    expect(v.stdout.trim()).toMatch(new RegExp(`^removed 1 blob \\(${size}\\), kept ${before.size - 1} \\(.+\\)$`));
    expect(existsSync(path)).toBe(false);
    const after = files(cache, 'blobs');
    expect([...before.keys()].filter((k) => !after.has(k))).toEqual([victim.slice(7)]);

    const again = await runCli(['cache', 'verify', '--json', '--cache-dir', cache]);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout) as Record<string, unknown>;
    expectDocument(doc, 'cache verify');
    expect(doc).toMatchObject({ checked: before.size - 1, removed: { count: 0, bytes: 0 }, kept: { count: before.size - 1 }, skipped: 0, bad: [] });

    relay.reset();
    const repull = await runCli(['pull', '--cache-dir', cache, `${relay.host}/cachecmd/a:v1`, `oci:${join(work, 'v2')}`]);
    expect(repull.code, repull.stderr).toBe(0);
    expect(blobGets()).toEqual([expect.stringContaining(`/blobs/${victim}`)]);
    expect(verifyLayout(join(work, 'v2'))).toBe(5); // config, 3 layers, manifest
    expect(files(cache, 'blobs')).toEqual(before);
  }, 60_000);

  it('prune --keep-size while another pull into the cache is mid-download: old blobs go, the download is untouched, the pull verifies', async () => {
    const cache = mkdtempSync(join(work, 'c-'));
    const fill = await runCli(['pull', '--cache-dir', cache, `${reg.host}/cachecmd/a:v1`, `oci:${join(work, 'p-a')}`]);
    expect(fill.code, fill.stderr).toBe(0);
    const old = files(cache, 'blobs');
    const hourAgo = new Date(Date.now() - 3_600_000);
    for (const f of old.keys()) utimesSync(join(cache, 'blobs', 'sha256', f), hourAgo, hourAgo);

    relay.reset();
    const stalled = relay.stallAt(Math.floor(bBytes / 2));
    const out = join(work, 'p-b');
    const pulling = runCli(['pull', '--cache-dir', cache, `${relay.host}/cachecmd/b:v1`, `oci:${out}`]);
    await stalled;
    const bHex = new Set(imageBlobs(b).map((d) => d.slice(7)));
    const partialOfB = (): string[] => [...files(cache, 'partial').keys()].filter((f) => bHex.has(f));
    await until('a partial download of b', () => partialOfB().length > 0);
    // What the relay forwarded before the stall reaches ferry within moments (a blob may still
    // complete and be published): wait until the partial files stop changing for a second.
    let seen = '';
    let since = Date.now();
    await until('the stalled pull to settle', () => {
      const now = JSON.stringify([...files(cache, 'partial')]);
      if (now !== seen) [seen, since] = [now, Date.now()];
      return Date.now() - since > 1000;
    });
    const partialsBefore = new Map(partialOfB().map((f) => [f, readFileSync(join(cache, 'partial', 'sha256', f))]));

    const ls = JSON.parse((await runCli(['cache', 'ls', '--json', '--cache-dir', cache])).stdout) as { partials: Array<{ digest: string; status: string; owner?: { pid: number } }> };
    const live = ls.partials.filter((p) => bHex.has(p.digest.slice(7)));
    expect(live.length).toBeGreaterThan(0);
    for (const p of live) expect(p).toMatchObject({ status: 'downloading', owner: { pid: expect.any(Number) } });

    const prune = await runCli(['cache', 'prune', '--json', '--keep-size', '1MiB', '--cache-dir', cache]);
    expect(prune.code, prune.stderr).toBe(0);
    const doc = JSON.parse(prune.stdout) as { removed: { count: number; bytes: number }; kept: { count: number }; recentlyUsed: number; partialsKept: number; partialsRemoved: number };
    expectDocument(doc, 'cache prune');
    expect(doc.removed).toEqual({ count: old.size, bytes: [...old.values()].reduce((x, y) => x + y, 0) });
    expect(doc.partialsKept).toBeGreaterThanOrEqual(partialsBefore.size);
    expect(doc.partialsRemoved).toBe(0);
    // What b finished before the stall was just used: kept as recent, whatever the size.
    expect(doc.kept.count).toBe(doc.recentlyUsed);
    for (const f of old.keys()) expect(existsSync(join(cache, 'blobs', 'sha256', f)), f).toBe(bHex.has(f));
    // The live partial files are untouched (the pull is stalled: nothing more was written).
    for (const [f, bytes] of partialsBefore) expect(readFileSync(join(cache, 'partial', 'sha256', f)).equals(bytes), f).toBe(true);

    relay.unstall();
    const done = await pulling;
    expect(done.code, done.stderr).toBe(0);
    expect(verifyLayout(out)).toBe(6); // config, 4 layers, manifest
    expect(files(cache, 'partial').size).toBe(0);

    // Everything now is older than the grace period only in an hour: a plain prune keeps them.
    const plain = await runCli(['cache', 'prune', '--cache-dir', cache]);
    expect(plain.code, plain.stderr).toBe(0);
    const n = files(cache, 'blobs').size;
    expect(plain.stdout.trim()).toMatch(new RegExp(`^removed 0 blobs \\(0 B\\), kept ${n} \\(.+\\); ${n} of them used in the last 30 s$`));
    for (const f of files(cache, 'blobs').keys()) utimesSync(join(cache, 'blobs', 'sha256', f), hourAgo, hourAgo);
    const all = await runCli(['cache', 'prune', '--cache-dir', cache]);
    expect(all.stdout.trim()).toMatch(new RegExp(`^removed ${n} blobs \\(.+\\), kept 0 \\(0 B\\)$`));
    expect(files(cache, 'blobs').size).toBe(0);
    expect(verifyLayout(out)).toBe(6); // the layout's hard links keep their bytes
  }, 60_000);
});
