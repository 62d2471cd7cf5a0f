/**
 * Fault injection, part 3: SIGKILL and SIGINT in the middle of a pull (OCI layout and
 * docker-archive), a push and a copy through the fault proxy, then a rerun. The kill lands at a
 * byte-exact point: the proxy holds every blob body once half of the image's blob bytes went
 * through (holdAt), and the test signals ferry then: no sleeps. After the kill nothing partial
 * or corrupt is visible (no layout entry, only blobs that hash to their names, an existing
 * tarball untouched, no tag at the push target); the rerun succeeds, its output verifies, and the
 * bytes it moved (the proxy's counters) are reported and bounded. Also copies registry →
 * registry through resets, 5xx bursts and flipped bytes (the source behind the proxy).
 */
import { spawn } from 'node:child_process';
import { existsSync, statSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireBinary, type TempDir } from '../helpers/binaries.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import type { OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';
import { inspectDigest } from '../helpers/skopeo.js';
import { blobDigests, readTar, sha256 } from './archive-support.js';
import { getBlob } from './push-support.js';
import { type FaultImage, faultImage } from './faults-support.js';
import { expectBlobs, expectFailure, layoutEntry, sha256Of } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const LAYER = 1024 * 1024;
const SIGNALS = ['SIGKILL', 'SIGINT'] as const;

const ENV: NodeJS.ProcessEnv = {
  PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config',
  XDG_RUNTIME_DIR: '/nonexistent-ferry-test-xdg', XDG_CONFIG_HOME: '/nonexistent-ferry-test-xdg-config',
  FERRY_SYSCONF_ROOT: '/nonexistent-ferry-test-sysconf', FERRY_SYSTEM_CERTS_D: '', NO_COLOR: '1',
};

/** ferry as a child process the test can signal (the environment runCli gives it). */
function startFerry(args: string[]) {
  const child = spawn(process.execPath, [FERRY_BIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, done, stderr: () => stderr };
}

describe.skipIf(!has)('killed mid-transfer, then rerun', () => {
  let f: FaultImage | undefined;
  let reg: RealRegistry;
  let dest: RealRegistry;
  let proxy: FaultProxy;
  let src: TempDir;
  let image: OciLayoutResult;
  let blobs: string[];
  let imageBytes: number;
  let ref: string;
  let fresh: (name?: string) => string;
  const rerunBytes: Record<string, number> = {};

  beforeAll(async () => {
    [f, dest] = await Promise.all([faultImage({ name: 'faults-kill', mode: 'open', repo: 'lib/app', layers: 4, layerSize: LAYER }), startRegistry('open')]);
    ({ reg, proxy, src, image, blobs, imageBytes, ref, fresh } = f);
  });
  afterAll(async () => {
    console.info(`faults-kill: image ${imageBytes} blob bytes; rerun moved ${JSON.stringify(rerunBytes)}`);
    await Promise.all([f?.stop(), dest?.stop()]);
  });
  beforeEach(() => proxy.reset());

  /** Runs ferry until the proxy holds at half the image's bytes, then signals it. */
  async function killHalfway(args: string[], sig: (typeof SIGNALS)[number], kind: 'download' | 'upload', cacheDir?: string): Promise<void> {
    const half = Math.floor(imageBytes / 2);
    const held = proxy.holdAt(half, kind);
    const run = startFerry(args);
    const first = await Promise.race([held.then(() => 'held' as const), run.done.then(() => 'exited' as const)]);
    expect(first, `ferry finished before the hold: ${run.stderr()}`).toBe('held');
    // What the proxy sent before the hold may still sit in socket buffers (hundreds of KiB on
    // loopback, a large share of this small image): with a cache, kill once ferry has written
    // it (the partial files hold ~all of it), so the rerun's bytes measure resume, not the pipe.
    if (cacheDir) await partialBytesReach(cacheDir, half * 0.97, 10_000);
    run.child.kill(sig);
    const res = await run.done;
    proxy.release();
    if (sig === 'SIGKILL') expect(res.signal).toBe('SIGKILL');
    else {
      expect(res.code, run.stderr()).toBe(130);
      expect(run.stderr()).toMatch(/^ferry: .*interrupted/m);
      expect(run.stderr()).not.toMatch(/^\s+at /m);
    }
  }

  /** Waits until the cache's partial (and finished) blob files hold `bytes` in all. */
  async function partialBytesReach(cacheDir: string, bytes: number, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    const sum = (): number => ['partial', 'blobs'].reduce((acc, sub) => {
      const d = join(cacheDir, sub, 'sha256');
      if (!existsSync(d)) return acc;
      return acc + readdirSync(d).filter((f) => /^[0-9a-f]{64}$/.test(f)).reduce((a, f) => a + (statSync(join(d, f), { throwIfNoEntry: false })?.size ?? 0), 0); // a partial renamed meanwhile: counted at its new name
    }, 0);
    while (Date.now() < end && sum() < bytes) await new Promise((r) => setTimeout(r, 25));
  }

  /** Nothing that looks complete: no index entry for the image, every blob file verifies. */
  function expectNothingVisible(dir: string): void {
    const index = join(dir, 'index.json');
    if (existsSync(index)) expect(readFileSync(index, 'utf8')).not.toContain(image.digest);
    const blobDir = join(dir, 'blobs', 'sha256');
    for (const f of existsSync(blobDir) ? readdirSync(blobDir) : []) {
      if (/^[0-9a-f]{64}$/.test(f)) expect(sha256Of(readFileSync(join(blobDir, f)))).toBe(`sha256:${f}`);
    }
  }

  /** The rerun's bytes: at most the image once (+5% for a blob resent from a Range start). */
  function expectRerunBytes(label: string, bytes: number, bound = 1.05): void {
    rerunBytes[label] = bytes;
    expect(bytes).toBeGreaterThan(0);
    const gets = proxy.log.filter((l) => /\/blobs\/sha256:/.test(l.path)).map((l) => `${l.method} ${l.path.slice(-12)} ${String(l.headers['range'] ?? '')} ${l.status}`);
    expect(bytes, `rerun requests:\n${gets.join('\n')}\nper blob: ${JSON.stringify([...proxy.blobBytes])}`).toBeLessThanOrEqual(imageBytes * bound);
  }
  /** Downloads go through a blob cache of their own (--cache-dir): a rerun after a kill at 50%
   * fetches only what the killed run did not keep (its partial files are resumed). */
  const RESUMED = 0.55;

  describe.each(SIGNALS)('%s', (sig) => {
    it('pull into an OCI layout: nothing visible, the rerun verifies', async () => {
      const dir = fresh('oci');
      const cache = ['--cache-dir', fresh('cache')];
      await killHalfway([...cache, 'pull', '-q', ref, `oci:${dir}`], sig, 'download', cache[1]);
      expectNothingVisible(dir);
      if (sig === 'SIGINT') {
        // An interrupted run cleans up after itself: no temp or partial file anywhere in the layout.
        const all = readdirSync(dir, { recursive: true, encoding: 'utf8' });
        expect(all.filter((f) => /partial|tmp|\.ferry/i.test(f))).toEqual([]);
      }
      proxy.reset();
      const r = await runCli([...cache, 'pull', '-q', ref, `oci:${dir}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
      expectBlobs(dir, [image.digest, ...blobs]);
      expectRerunBytes(`pull-oci-${sig}`, proxy.blobBytesTotal, RESUMED);
      // No temp file of the killed run survives the rerun (the layout writer removes those of dead pids).
      expect(readdirSync(join(dir, 'blobs', 'sha256')).filter((f) => f.endsWith('.partial'))).toEqual([]);
    });

    it('pull into an existing docker-archive: the old file untouched, the rerun verifies', async () => {
      const dir = fresh('tar');
      mkdirSync(dir);
      const file = join(dir, 'app.tar');
      writeFileSync(file, 'previous contents');
      const cache = ['--cache-dir', fresh('cache')];
      await killHalfway([...cache, 'pull', '-q', ref, '-o', file], sig, 'download', cache[1]);
      expect(readFileSync(file, 'utf8')).toBe('previous contents');
      if (sig === 'SIGINT') expect(readdirSync(dir)).toEqual(['app.tar']);
      proxy.reset();
      const r = await runCli([...cache, 'pull', '-q', ref, '-o', file]);
      expect(r.code, r.stderr).toBe(0);
      const entries = await readTar(file);
      expect(blobDigests(entries)).toEqual(expect.arrayContaining(blobs));
      for (const d of blobDigests(entries)) expect(sha256(entries.find((e) => e.name === `blobs/sha256/${d.slice(7)}`)!.data!)).toBe(d);
      expectRerunBytes(`pull-tar-${sig}`, proxy.blobBytesTotal, RESUMED);
      expect(readdirSync(dir)).toEqual(['app.tar']); // the killed run's temp file is gone too
    });

    it('push: no tag at the target after the kill, the rerun pushes every blob intact', async () => {
      const repo = `pushed/${sig.toLowerCase()}`;
      const target = `${proxy.host}/${repo}:v1`;
      await killHalfway(['push', '-q', `oci:${src.path}:v1`, target], sig, 'upload');
      const tag = await fetch(`${reg.url}/v2/${repo}/manifests/v1`, { method: 'HEAD' });
      expect(tag.status).toBe(404);
      proxy.reset();
      const r = await runCli(['push', '-q', `oci:${src.path}:v1`, target]);
      expect(r.code, r.stderr).toBe(0);
      expect(await inspectDigest(reg, repo, 'v1')).toBe(image.digest);
      for (const d of blobs) expect(sha256Of(await getBlob(reg, repo, d))).toBe(d);
      expectRerunBytes(`push-${sig}`, proxy.uploadBytesTotal);
    });

    it('copy registry → registry: no tag at the target after the kill, the rerun verifies', async () => {
      const repo = `copied/${sig.toLowerCase()}`;
      const target = `${dest.host}/${repo}:v1`;
      const cache = ['--cache-dir', fresh('cache')];
      await killHalfway([...cache, 'copy', '-q', ref, target], sig, 'download', cache[1]);
      const tag = await fetch(`${dest.url}/v2/${repo}/manifests/v1`, { method: 'HEAD' });
      expect(tag.status).toBe(404);
      proxy.reset();
      const r = await runCli([...cache, 'copy', '-q', ref, target]);
      expect(r.code, r.stderr).toBe(0);
      expect(await inspectDigest(dest, repo, 'v1')).toBe(image.digest);
      for (const d of blobs) expect(sha256Of(await getBlob(dest, repo, d))).toBe(d);
      expectRerunBytes(`copy-${sig}`, proxy.blobBytesTotal, RESUMED);
    });
  });

  describe('copy through faults', () => {
    const layer = (i: number): RegExp => new RegExp(`/blobs/${image.manifests[0]!.layerDigests[i]!}$`);

    it('resets on two layers and a 502 burst on the manifest: the target holds the image intact', async () => {
      const resets = [
        proxy.addRule({ method: 'GET', path: layer(0), action: { kind: 'reset', afterBytes: LAYER / 2 } }),
        proxy.addRule({ method: 'GET', path: layer(3), action: { kind: 'truncate', afterBytes: 4096 } }),
      ];
      const burst = proxy.addRule({ method: 'GET', path: /\/manifests\//, times: 2, action: { kind: 'status', status: 502 } });
      const repo = 'copied/faults';
      const r = await runCli(['copy', '-q', ref, `${dest.host}/${repo}:v1`]);
      expect(r.code, r.stderr).toBe(0);
      expect(resets.map((x) => x.hits)).toEqual([1, 1]);
      expect(burst.hits).toBe(2);
      expect(await inspectDigest(dest, repo, 'v1')).toBe(image.digest);
      for (const d of blobs) expect(sha256Of(await getBlob(dest, repo, d))).toBe(d);
    });

    it('a flipped byte in a layer: exit 6 naming the digest, no tag and no such blob at the target', async () => {
      const digest = image.manifests[0]!.layerDigests[2]!;
      proxy.addRule({ method: 'GET', path: layer(2), times: Infinity, action: { kind: 'flip', offset: LAYER / 2 } });
      const repo = 'copied/flipped';
      const r = await runCli(['copy', '-q', ref, `${dest.host}/${repo}:v1`]);
      expectFailure(r, 6, digest);
      expect((await fetch(`${dest.url}/v2/${repo}/manifests/v1`, { method: 'HEAD' })).status).toBe(404);
      expect((await fetch(`${dest.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    });
  });
});
