/**
 * Fault injection, part 1: pulls from the real distribution registry (open mode) through the
 * fault proxy (test/helpers/fault-proxy.ts): connection resets, 5xx bursts, 429 with
 * Retry-After, bodies cut below their Content-Length, flipped bytes, a stalled body, hostile
 * manifests and a self-referencing tags `Link`. Each scenario ends in a verified success (the
 * layout's or tarball's blobs hash to their names and the manifest digest is the pushed one) or
 * in a clean failure: the failure class's exit status, one `ferry:` line, no stack trace, nothing
 * new at the destination (an existing tarball untouched).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireBinary, type TempDir } from '../helpers/binaries.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { OCI_MANIFEST, type OciLayoutResult } from '../helpers/images.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { blobDigests, entryJson, readTar, sha256, type DockerManifestItem } from './archive-support.js';
import { type FaultImage, faultImage } from './faults-support.js';
import { expectBlobs, expectFailure, layoutEntry, readBlob, sha256Of } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const LAYER = 512 * 1024;

describe.skipIf(!has)('pulls through a faulty network', () => {
  let f: FaultImage | undefined;
  let proxy: FaultProxy;
  let src: TempDir;
  let image: OciLayoutResult;
  let blobs: string[]; // config + layers
  let imageBytes: number; // config + layers
  let ref: string;
  let fresh: (name?: string) => string;

  beforeAll(async () => {
    f = await faultImage({ name: 'faults-pull', mode: 'open', repo: 'lib/app', layers: 3, layerSize: LAYER });
    ({ proxy, src, image, blobs, imageBytes, ref, fresh } = f);
  });
  afterAll(async () => {
    await f?.stop();
  });
  beforeEach(() => proxy.reset());

  const pullOci = (dir: string, ...extra: string[]): Promise<CliResult> => runCli(['pull', '-q', ...extra, ref, `oci:${dir}`]);
  const pullTar = (file: string, ...extra: string[]): Promise<CliResult> => runCli(['pull', '-q', ...extra, ref, '-o', file]);

  /** The layout holds the pushed image, every blob hashing to its name. */
  function expectGoodLayout(r: CliResult, dir: string): void {
    expect(r.code, r.stderr).toBe(0);
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    expectBlobs(dir, [image.digest, ...blobs]);
  }

  /** The tarball holds the pushed config and layers, every blob hashing to its name. */
  async function expectGoodTar(r: CliResult, file: string): Promise<void> {
    expect(r.code, r.stderr).toBe(0);
    const entries = await readTar(file);
    const items = entryJson<DockerManifestItem[]>(entries, 'manifest.json');
    expect(items).toHaveLength(1);
    for (const d of blobDigests(entries)) {
      const e = entries.find((x) => x.name === `blobs/sha256/${d.slice(7)}`)!;
      expect(sha256(e.data!), e.name).toBe(d);
    }
    expect(blobDigests(entries)).toEqual(expect.arrayContaining(blobs));
  }

  /** A failed pull into a layout left no layout behind (no index.json naming the tag, no blob). */
  function expectNoLayout(dir: string): void {
    if (!existsSync(dir)) return;
    const index = join(dir, 'index.json');
    if (existsSync(index)) expect(readFileSync(index, 'utf8')).not.toContain(image.digest);
    const blobDir = join(dir, 'blobs', 'sha256');
    const files = existsSync(blobDir) ? readdirSync(blobDir) : [];
    for (const f of files) expect(sha256Of(readFileSync(join(blobDir, f)))).toBe(`sha256:${f}`); // only verified blobs
  }

  /** A failed pull into an existing tarball left it untouched and nothing beside it. */
  function expectTarUntouched(file: string): void {
    expect(readFileSync(file, 'utf8')).toBe('previous contents');
    const dir = join(file, '..');
    expect(readdirSync(dir).filter((f) => f !== 'app.tar')).toEqual([]);
  }

  /** `<fresh dir>/app.tar` holding 'previous contents'. */
  function existingTar(): string {
    const dir = fresh('tar');
    mkdirSync(dir);
    const file = join(dir, 'app.tar');
    writeFileSync(file, 'previous contents');
    return file;
  }

  it('baseline: a clean pull through the proxy fetches each blob once', async () => {
    const dir = fresh();
    expectGoodLayout(await pullOci(dir), dir);
    expect(proxy.blobBytesTotal).toBe(imageBytes);
  });

  const layer = (i: number): RegExp => new RegExp(`/blobs/${image.manifests[0]!.layerDigests[i]!}$`);
  const anyBlob = /\/blobs\/sha256:/;
  const manifest = /\/manifests\//;
  /** Range offsets ferry asked for on `path` after its first GET. */
  const resumedAt = (path: RegExp): number[] => proxy.log
    .filter((l) => l.method === 'GET' && path.test(l.path) && typeof l.headers['range'] === 'string')
    .map((l) => Number(/bytes=(\d+)-/.exec(l.headers['range'] as string)?.[1]));

  describe('connection reset mid-blob', () => {
    it('oci: resumed by Range where the bytes stopped, verified', async () => {
      const rule = proxy.addRule({ method: 'GET', path: layer(0), action: { kind: 'reset', afterBytes: LAYER / 2 } });
      const dir = fresh();
      expectGoodLayout(await pullOci(dir), dir);
      expect(rule.hits).toBe(1);
      const at = resumedAt(layer(0));
      expect(at).toHaveLength(1);
      expect(at[0]).toBeGreaterThan(0);
      expect(at[0]).toBeLessThanOrEqual(LAYER / 2);
      expect(proxy.blobBytesTotal).toBeLessThan(imageBytes + LAYER / 2);
    });

    it('docker-archive: resets on two blobs, resumed and verified', async () => {
      proxy.addRule({ method: 'GET', path: layer(1), action: { kind: 'reset', afterBytes: 1000 } });
      proxy.addRule({ method: 'GET', path: layer(2), action: { kind: 'reset', afterBytes: LAYER - 10 } });
      const file = `${fresh('tar')}.tar`;
      await expectGoodTar(await pullTar(file), file);
    });

    it('every attempt reset: exit 5, one line, no layout and the existing tarball untouched', async () => {
      proxy.addRule({ method: 'GET', path: layer(0), times: Infinity, action: { kind: 'reset', afterBytes: 1000 } });
      const dir = fresh();
      const r = await pullOci(dir);
      expectFailure(r, 5);
      expect(r.stderr.trim().split('\n').filter((l) => !/^\s*hint:/.test(l))).toHaveLength(1);
      expect(r.stderr).not.toMatch(/unexpected error/i);
      expectNoLayout(dir);
      const file = existingTar();
      expectFailure(await pullTar(file), 5);
      expectTarUntouched(file);
    });
  });

  describe('5xx bursts', () => {
    it('500 twice on the manifest, 502 and 503 twice on two blobs, 500 on the config: retried, verified', async () => {
      const rules = [
        proxy.addRule({ method: 'GET', path: manifest, times: 2, action: { kind: 'status', status: 500 } }),
        proxy.addRule({ method: 'GET', path: layer(1), times: 2, action: { kind: 'status', status: 502 } }),
        proxy.addRule({ method: 'GET', path: layer(2), times: 2, action: { kind: 'status', status: 503 } }),
        proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${blobs[0]!}$`), action: { kind: 'status', status: 500 } }),
      ];
      const dir = fresh();
      expectGoodLayout(await pullOci(dir), dir);
      expect(rules.map((x) => x.hits)).toEqual([2, 2, 2, 1]);
      expect(proxy.blobBytesTotal).toBe(imageBytes); // a refused request sent no bytes
    });

    it('503 on every request for a blob: exit 5 naming the status, nothing at the destination', async () => {
      proxy.addRule({ method: 'GET', path: layer(2), times: Infinity, action: { kind: 'status', status: 503 } });
      const file = existingTar();
      const r = await pullTar(file);
      expectFailure(r, 5, '503');
      expectTarUntouched(file);
    });
  });

  describe('429 with Retry-After', () => {
    it('Retry-After: 1 is waited for and the pull succeeds', async () => {
      const rule = proxy.addRule({ method: 'GET', path: anyBlob, action: { kind: 'status', status: 429, retryAfter: '1', code: 'TOOMANYREQUESTS' } });
      const file = `${fresh('tar')}.tar`;
      await expectGoodTar(await pullTar(file), file);
      expect(rule.hits).toBe(1);
    });

    it('429 on every attempt: E_RATE_LIMITED (exit 5) after the retries, the existing tarball untouched', async () => {
      const rule = proxy.addRule({ method: 'GET', path: layer(0), times: Infinity, action: { kind: 'status', status: 429, retryAfter: '1', code: 'TOOMANYREQUESTS' } });
      const file = existingTar();
      const r = await runCli(['pull', '-q', '--json', ref, '-o', file]);
      expect(r.code, r.stderr).toBe(5);
      expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe('E_RATE_LIMITED');
      expect(rule.hits).toBeGreaterThanOrEqual(5);
      expectTarUntouched(file);
    });

    it('Retry-After over the cap: E_RATE_LIMITED (exit 5) at once, saying when', async () => {
      proxy.addRule({ method: 'GET', path: manifest, times: Infinity, action: { kind: 'status', status: 429, retryAfter: '7200', code: 'TOOMANYREQUESTS' } });
      const dir = fresh();
      const r = await runCli(['pull', '-q', '--json', ref, `oci:${dir}`]);
      expect(r.code, r.stderr).toBe(5);
      const doc = JSON.parse(r.stdout) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe('E_RATE_LIMITED');
      expect(doc.error.message).toMatch(/2 h|7200|120 min|hour/);
      expectNoLayout(dir);
    });
  });

  describe('body cut below its Content-Length', () => {
    it('a blob cut once: resumed and verified (oci and docker-archive)', async () => {
      proxy.addRule({ method: 'GET', path: layer(0), action: { kind: 'truncate', afterBytes: LAYER / 3 } });
      const dir = fresh();
      expectGoodLayout(await pullOci(dir), dir);
      expect(resumedAt(layer(0))[0]).toBeGreaterThan(0);
      proxy.reset();
      proxy.addRule({ method: 'GET', path: layer(2), action: { kind: 'truncate', afterBytes: 7 } });
      const file = `${fresh('tar')}.tar`;
      await expectGoodTar(await pullTar(file), file);
    });

    it('the manifest cut once: read again, verified', async () => {
      const rule = proxy.addRule({ method: 'GET', path: manifest, action: { kind: 'truncate', afterBytes: 100 } });
      const dir = fresh();
      expectGoodLayout(await pullOci(dir), dir);
      expect(rule.hits).toBe(1);
    });

    it('a blob cut on every attempt: exit 5, nothing at the destination', async () => {
      proxy.addRule({ method: 'GET', path: layer(1), times: Infinity, action: { kind: 'truncate', afterBytes: 100 } });
      const file = existingTar();
      expectFailure(await pullTar(file), 5);
      expectTarUntouched(file);
    });
  });

  describe('flipped bytes', () => {
    it.each([['oci'], ['docker-archive']])('a flipped byte in a layer (%s): exit 6 naming the digest, nothing corrupt kept', async (format) => {
      const digest = image.manifests[0]!.layerDigests[1]!;
      proxy.addRule({ method: 'GET', path: layer(1), times: Infinity, action: { kind: 'flip', offset: 12345 } });
      if (format === 'oci') {
        const dir = fresh();
        const r = await pullOci(dir);
        expectFailure(r, 6, digest);
        expectNoLayout(dir);
      } else {
        const file = existingTar();
        expectFailure(await pullTar(file), 6, digest);
        expectTarUntouched(file);
      }
    });

    it('a flipped byte in the manifest fetched by digest: exit 6', async () => {
      proxy.addRule({ method: 'GET', path: manifest, times: Infinity, action: { kind: 'flip', offset: 20 } });
      const dir = fresh();
      const r = await runCli(['pull', '-q', `${proxy.host}/lib/app@${image.digest}`, `oci:${dir}`]);
      expectFailure(r, 6);
      expectNoLayout(dir);
    });
  });

  describe('stalled connection', () => {
    it('a blob that stalls 1 s mid-body and then continues: verified', async () => {
      const rule = proxy.addRule({ method: 'GET', path: layer(0), action: { kind: 'stall', afterBytes: LAYER / 2, ms: 1000 } });
      const dir = fresh();
      expectGoodLayout(await pullOci(dir), dir);
      expect(rule.hits).toBe(1);
      expect(resumedAt(layer(0))).toEqual([]); // the same stream went on: no timeout, no Range retry
    });

    it('a blob that stalls for good: given up after --idle-timeout, resumed with Range at the offset it reached, verified', async () => {
      const rule = proxy.addRule({ method: 'GET', path: layer(0), action: { kind: 'stall', afterBytes: LAYER / 2, ms: 'forever' } });
      const dir = fresh();
      const t0 = performance.now();
      const r = await pullOci(dir, '--idle-timeout', '1');
      expectGoodLayout(r, dir);
      expect(rule.hits).toBe(1);
      const at = resumedAt(layer(0));
      expect(at).toHaveLength(1);
      expect(at[0]).toBeGreaterThan(0);
      expect(at[0]).toBeLessThanOrEqual(LAYER / 2 + 65536);
      expect(performance.now() - t0).toBeLessThan(30_000); // not the 120 s default
    });

    it('--idle-timeout that is not a number of seconds: exit 2 naming it', async () => {
      const r = await pullOci(fresh(), '--idle-timeout', '5m');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--idle-timeout "5m": expected seconds');
    });
  });

  describe('hostile manifests', () => {
    const m = (): Record<string, unknown> => JSON.parse(readBlob(src.path, image.digest).toString('utf8')) as Record<string, unknown>;
    const serve = (body: Buffer | string): void => {
      const b = Buffer.from(body);
      proxy.addRule({
        method: 'GET', path: manifest, times: Infinity,
        action: { kind: 'replace', body: b, headers: { 'docker-content-digest': sha256Of(b), 'content-type': OCI_MANIFEST } },
      });
    };

    it.each([
      ['sha256:../../../../tmp/ferry-escape'],
      ['../../etc/passwd'],
    ])('a layer digest %s is refused (exit 6), nothing written outside the layout, no request naming ..', async (digest) => {
      const doc = m();
      (doc['layers'] as Array<{ digest: string }>)[0]!.digest = digest;
      serve(JSON.stringify(doc));
      const dir = fresh();
      const r = await pullOci(dir);
      expectFailure(r, 6);
      expectNoLayout(dir);
      expect(existsSync('/tmp/ferry-escape')).toBe(false);
      expect(proxy.log.filter((l) => l.path.includes('..'))).toEqual([]);
    });

    it('a manifest over 4 MiB is refused (exit 6) without reading it all', async () => {
      const doc = m();
      doc['annotations'] = { pad: 'x'.repeat(5 * 1024 * 1024) };
      serve(JSON.stringify(doc));
      const file = existingTar();
      expectFailure(await pullTar(file), 6);
      expectTarUntouched(file);
    });

    it('a manifest that is not JSON is refused (exit 6)', async () => {
      serve('<html>this is not a manifest</html>');
      const dir = fresh();
      const r = await pullOci(dir);
      expectFailure(r, 6);
      expectNoLayout(dir);
    });
  });

  describe('self-referencing Link', () => {
    it('a tags page whose Link names itself: E_REGISTRY (exit 5) naming the loop, no endless paging', async () => {
      const rule = proxy.addRule({
        method: 'GET', path: /\/tags\/list$/, times: Infinity,
        action: { kind: 'replace', headers: { link: '</v2/lib/app/tags/list?n=100>; rel="next"' } },
      });
      const r = await runCli(['tags', `${proxy.host}/lib/app`], { timeoutMs: 30_000 });
      expect(r.signal).toBeNull();
      expectFailure(r, 5, 'pagination loop');
      expect(rule.hits).toBeGreaterThanOrEqual(1);
      expect(rule.hits).toBeLessThanOrEqual(2);
    });
  });
});
