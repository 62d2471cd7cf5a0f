import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES } from '../../../src/registry/client.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import type { Digest } from '../../../src/oci/digest.js';
import { seedImage } from '../../helpers/mem-registry.js';
import { hexOf, listFiles, newSession, pullToLayout, rejection, repoOf, sha256, startRecordingProxy, startReg, tempDir } from './support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

describe('manifests', () => {
  it('HEAD resolves a tag by Docker-Content-Digest (no GET by tag)', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1');
    const { session } = newSession();
    const { source } = repoOf(session, reg.host, 'app', 'v1');
    const d = await source.resolve();
    expect(d).toEqual({ mediaType: OCI_MANIFEST, digest: seeded.digest, size: reg.getManifest('app', 'v1')!.bytes.length });
    expect(reg.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['HEAD /v2/app/manifests/v1']);
  });

  it('HEAD without Docker-Content-Digest (noHeadDigest) → falls back to GET and still returns the right digest', async () => {
    const reg = await startReg({ noHeadDigest: true });
    const seeded = seedImage(reg, 'app', 'v1');
    const { session } = newSession();
    const { source } = repoOf(session, reg.host, 'app', 'v1');

    const d = await source.resolve();

    expect(d.digest).toBe(seeded.digest);
    expect(d.mediaType).toBe(OCI_MANIFEST);
    expect(reg.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['HEAD /v2/app/manifests/v1 200', 'GET /v2/app/manifests/v1 200']);
    // the GET body is cached: fetching the root by digest costs no request
    expect(sha256(await source.fetchManifest(d))).toBe(seeded.digest);
    expect(reg.requests).toHaveLength(2);
  });

  it('a full pull from a noHeadDigest registry writes the right root', async () => {
    const reg = await startReg({ noHeadDigest: true });
    const seeded = seedImage(reg, 'app', 'v1');
    const { session } = newSession();
    const dir = tempDir();
    const r = await pullToLayout(session, reg.host, 'app', 'v1', dir);
    expect(r.root.digest).toBe(seeded.digest);
    const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(idx.manifests.map((m: Descriptor) => m.digest)).toEqual([seeded.digest]);
  });

  it('unknown tag: HEAD 404 → GET gives the precise E_NOT_FOUND with a tags hint', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    const { session } = newSession();
    const { source } = repoOf(session, reg.host, 'app', 'nope');
    const e = await rejection(source.resolve());
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toContain(`${reg.host}/app:nope`);
    expect(e.message).toContain('tag "nope" not found');
    expect(e.hint).toContain(`ferry tags ${reg.host}/app`);
    expect(reg.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['HEAD 404', 'GET 404']);
  });

  it('unknown repository → E_NOT_FOUND "repository not found"', async () => {
    const reg = await startReg();
    const { session } = newSession();
    const e = await rejection(repoOf(session, reg.host, 'ghost', 'v1').client.getManifest('v1'));
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toContain('repository not found');
    expect(e.registryCodes).toEqual(['NAME_UNKNOWN']);
  });

  it('a manifest over the 4 MiB cap → E_SIZE_MISMATCH (body not buffered)', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    const huge = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, pad: 'x'.repeat(MAX_MANIFEST_BYTES) });
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\/v1$/ }, action: { kind: 'status', status: 200, headers: { 'Content-Type': OCI_MANIFEST }, body: huge } });
    const { session } = newSession();
    const e = await rejection(repoOf(session, reg.host, 'app', 'v1').client.getManifest('v1'));
    expect(e.code).toBe('E_SIZE_MISMATCH');
    expect(e.message).toContain(String(Buffer.byteLength(huge)));
    expect(e.message).toContain(`${MAX_MANIFEST_BYTES}-byte limit`);
  });

  it('a manifest exactly at the cap is accepted', async () => {
    const reg = await startReg();
    const base = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [], pad: '' });
    const body = base.replace('"pad":""', `"pad":"${'y'.repeat(MAX_MANIFEST_BYTES - Buffer.byteLength(base))}"`);
    expect(Buffer.byteLength(body)).toBe(MAX_MANIFEST_BYTES);
    seedImage(reg, 'app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\/big$/ }, action: { kind: 'status', status: 200, headers: { 'Content-Type': OCI_MANIFEST }, body } });
    const { session } = newSession();
    const got = await repoOf(session, reg.host, 'app', 'big').client.getManifest('big');
    expect(got.descriptor).toEqual({ mediaType: OCI_MANIFEST, digest: sha256(body), size: MAX_MANIFEST_BYTES });
  });

  it('a manifest body corrupted in transit (GET by digest) → E_DIGEST_MISMATCH', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\/sha256:/ }, action: { kind: 'corrupt' } });
    const { session } = newSession();
    const { client } = repoOf(session, reg.host, 'app', 'v1');
    const e = await rejection(client.getManifest(seeded.digest));
    expect(e.code).toBe('E_DIGEST_MISMATCH');
    expect(e.message).toContain(seeded.digest);
  });

  it('a pull whose manifest is corrupted after HEAD → E_DIGEST_MISMATCH and nothing committed', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\/sha256:/ }, action: { kind: 'corrupt' } });
    const { session } = newSession();
    const dir = tempDir();
    const e = await rejection(pullToLayout(session, reg.host, 'app', 'v1', dir));
    expect(e.code).toBe('E_DIGEST_MISMATCH');
    expect(existsSync(join(dir, 'index.json'))).toBe(false);
    expect(reg.requests.filter((r) => r.path.includes('/blobs/'))).toEqual([]);
  });
});

describe('tags', () => {
  it('follows Link across pages: 5 tags, page size 2 → 3 requests, all tags in order', async () => {
    const reg = await startReg({ tagPageSize: 2 });
    for (const t of ['v1', 'v2', 'v3', 'v4', 'v5']) seedImage(reg, 'app', t);
    const { session } = newSession();
    const tags = await repoOf(session, reg.host, 'app').source.listTags();
    expect(tags).toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);
    const pages = reg.requests.filter((r) => r.path === '/v2/app/tags/list');
    expect(pages.map((r) => r.query)).toEqual(['', 'n=2&last=v2', 'n=2&last=v4']);
  });

  it('exactly one page when the tags fit', async () => {
    const reg = await startReg({ tagPageSize: 10 });
    for (const t of ['a', 'b']) seedImage(reg, 'app', t);
    const { session } = newSession();
    expect(await repoOf(session, reg.host, 'app').source.listTags()).toEqual(['a', 'b']);
    expect(reg.requests).toHaveLength(1);
  });

  it('null, empty, non-string and digest-shaped entries are skipped', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    const digest = `sha256:${'ab'.repeat(32)}`;
    reg.faults.push({
      match: { method: 'GET', path: /\/tags\/list$/ },
      action: { kind: 'status', status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'app', tags: [null, 'v1', digest, '', 42, 'latest', { t: 1 }, 'sha256-abc.sig'] }) },
    });
    const { session } = newSession();
    expect(await repoOf(session, reg.host, 'app').source.listTags()).toEqual(['v1', 'latest', 'sha256-abc.sig']);
  });

  it('"tags": null (empty repository on some registries) → []', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/tags\/list$/ }, action: { kind: 'status', status: 200, body: '{"name":"app","tags":null}' } });
    const { session } = newSession();
    expect(await repoOf(session, reg.host, 'app').source.listTags()).toEqual([]);
  });

  it('a tag list that is not JSON → E_REGISTRY', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/tags\/list$/ }, action: { kind: 'status', status: 200, body: '<html>login</html>' } });
    const { session } = newSession();
    const e = await rejection(repoOf(session, reg.host, 'app').source.listTags());
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain('not valid JSON');
  });
});

describe('blobs', () => {
  it('a connection cut mid-blob is resumed with Range; the final file has the right digest', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 1 << 20 });
    const layer = seeded.blobs[0]!;
    // the connection stalls after 300 000 bytes and then drops (the bytes reach the disk meanwhile)
    const proxy = await startRecordingProxy(reg.host, { cut: { path: new RegExp(`/blobs/${layer}$`), afterBytes: 300_000, pauseMs: 150, times: 1 } });
    const { session, lines } = newSession();
    const dir = tempDir();

    const r = await pullToLayout(session, proxy.host, 'app', 'v1', dir, { jobs: 1 });

    expect(r.root.digest).toBe(seeded.digest);
    const gets = proxy.requests.filter((q) => q.method === 'GET' && q.url.endsWith(layer));
    expect(gets).toHaveLength(2);
    expect(gets[0]!.headers.range).toBeUndefined();
    expect(gets[1]!.headers.range).toBe(`bytes=300000-${(1 << 20) - 1}`); // a closed range
    const requested = lines.filter((l) => l.startsWith('→ GET') && l.includes(layer));
    expect(requested[1]).toContain(`"range":"bytes=300000-${(1 << 20) - 1}"`);
    const served = reg.requests.filter((q) => q.method === 'GET' && q.path.endsWith(layer));
    expect(served.map((q) => q.status)).toEqual([200, 206]);
    expect(served[1]!.bytesOut).toBe((1 << 20) - 300_000);
    expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hexOf(layer))))).toBe(layer);
    expect(listFiles(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('a mem-registry truncate fault (cut without a stall) is also survived: retried, right digest', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 1 << 20 });
    const layer = seeded.blobs[0]!;
    reg.faults.push({ match: { method: 'GET', path: new RegExp(`/blobs/${layer}$`) }, times: 1, action: { kind: 'truncate', afterBytes: 300_000 } });
    const { session, lines } = newSession();
    const dir = tempDir();

    const r = await pullToLayout(session, reg.host, 'app', 'v1', dir, { jobs: 1 });

    expect(r.root.digest).toBe(seeded.digest);
    const gets = reg.requests.filter((q) => q.method === 'GET' && q.path.endsWith(layer));
    expect(gets).toHaveLength(2);
    expect(gets[0]!.bytesOut).toBe(300_000);
    // resumes from whatever was durably written (0 … 300 000 bytes): a Range only if > 0
    const second = lines.filter((l) => l.startsWith('→ GET') && l.includes(layer))[1]!;
    const offset = Number(/"range":"bytes=(\d+)-\d+"/.exec(second)?.[1] ?? 0);
    expect(offset).toBeLessThanOrEqual(300_000);
    expect(gets[1]!.bytesOut).toBe((1 << 20) - offset);
    expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hexOf(layer))))).toBe(layer);
  });

  it('a server that ignores Range (200 instead of 206): the first `offset` bytes are skipped', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 100_000 });
    const proxy = await startRecordingProxy(reg.host, { dropRequestHeaders: ['range'] });
    const { session } = newSession();
    const { client } = repoOf(session, proxy.host, 'app', 'v1');
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: seeded.blobs[0] as Digest, size: 100_000 };

    const tail = await readAll(await client.getBlob(d, { offset: 12_345 }));

    expect(proxy.requests[0]!.headers.range).toBe('bytes=12345-99999');
    expect(reg.requests[0]!.status).toBe(200);
    expect(tail.equals(reg.getBlob('app', d.digest)!.subarray(12_345))).toBe(true);
  });

  it('cut mid-blob on a registry that ignores Range: the resumed 200 is skipped to the offset, right digest', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 1 << 20 });
    const layer = seeded.blobs[0]!;
    const proxy = await startRecordingProxy(reg.host, { dropRequestHeaders: ['range'], cut: { path: new RegExp(`/blobs/${layer}$`), afterBytes: 400_000, pauseMs: 100, times: 1 } });
    const { session } = newSession();
    const dir = tempDir();

    const r = await pullToLayout(session, proxy.host, 'app', 'v1', dir, { jobs: 1 });

    expect(r.root.digest).toBe(seeded.digest);
    expect(proxy.requests.filter((q) => q.url.endsWith(layer)).map((q) => q.headers.range)).toEqual([undefined, `bytes=400000-${(1 << 20) - 1}`]);
    expect(reg.requests.filter((q) => q.path.endsWith(layer)).map((q) => q.status)).toEqual([200, 200]);
    expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hexOf(layer))))).toBe(layer);
  });

  // client.ts getBlob returns `res.body.pipe(skipBytes(offset))` for a 200-instead-of-206 answer;
  // pipe() does not forward errors, so when that connection drops the returned stream neither
  // errors nor ends and its consumer waits forever.
  it('Range ignored (200) and the connection drops: the returned stream errors instead of hanging', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 500_000 });
    const proxy = await startRecordingProxy(reg.host, { dropRequestHeaders: ['range'], cut: { path: /\/blobs\//, afterBytes: 200_000, pauseMs: 20, times: 1 } });
    const { session } = newSession();
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: seeded.blobs[0] as Digest, size: 500_000 };
    const stream = await repoOf(session, proxy.host, 'app').client.getBlob(d, { offset: 1000 });

    const outcome = await Promise.race([
      readAll(stream).then(() => 'ended', () => 'errored'),
      new Promise<string>((r) => setTimeout(() => r('hung for 1 s'), 1000)),
    ]);

    expect(outcome).toBe('errored');
  });

  it('a pull resuming on a registry that ignores Range survives a second drop (no hang)', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 1 << 20 });
    const layer = seeded.blobs[0]!;
    const proxy = await startRecordingProxy(reg.host, { dropRequestHeaders: ['range'], cut: { path: new RegExp(`/blobs/${layer}$`), afterBytes: 600_000, pauseMs: 100, times: 2 } });
    const { session } = newSession();
    const dir = tempDir();

    const outcome = await Promise.race([
      pullToLayout(session, proxy.host, 'app', 'v1', dir, { jobs: 1 }).then((r) => r.root.digest, (e: Error) => `failed: ${e.message}`),
      new Promise<string>((r) => setTimeout(() => r('hung for 2 s'), 2000)),
    ]);

    expect(outcome).toBe(seeded.digest);
    expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hexOf(layer))))).toBe(layer);
  });

  it('Range honoured (206): exactly the tail is returned', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 100_000 });
    const { session } = newSession();
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: seeded.blobs[0] as Digest, size: 100_000 };
    const tail = await readAll(await repoOf(session, reg.host, 'app').client.getBlob(d, { offset: 99_000 }));
    expect(reg.requests[0]!.status).toBe(206);
    expect(tail.equals(reg.getBlob('app', d.digest)!.subarray(99_000))).toBe(true);
  });

  it('offset at the end → an empty stream without a request (nothing is left to ask for)', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 1000 });
    const { session } = newSession();
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: seeded.blobs[0] as Digest, size: 1000 };
    const rest = await readAll(await repoOf(session, reg.host, 'app').client.getBlob(d, { offset: 1000 }));
    expect(rest.length).toBe(0);
    expect(reg.requests).toEqual([]);
  });

  it('unknown blob → E_NOT_FOUND "blob not found"', async () => {
    const reg = await startReg();
    seedImage(reg, 'app', 'v1');
    const { session } = newSession();
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${'0'.repeat(64)}`, size: 1 };
    const e = await rejection(repoOf(session, reg.host, 'app').client.getBlob(d));
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toContain('blob not found');
    expect(e.message).toContain(d.digest);
  });

  it('a corrupted blob → E_DIGEST_MISMATCH; no file at blobs/sha256/<hex> and no *.partial left', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 3, layerSize: 200_000 });
    const bad = seeded.blobs[1]!;
    reg.faults.push({ match: { method: 'GET', path: new RegExp(`/blobs/${bad}$`) }, action: { kind: 'corrupt' } });
    const { session } = newSession();
    const dir = tempDir();

    const e = await rejection(pullToLayout(session, reg.host, 'app', 'v1', dir));

    expect(e.code).toBe('E_DIGEST_MISMATCH');
    expect(e.message).toContain(bad);
    expect(existsSync(join(dir, 'blobs', 'sha256', hexOf(bad)))).toBe(false);
    const files = listFiles(dir);
    expect(files.filter((f) => f.endsWith('.partial'))).toEqual([]);
    expect(files).not.toContain('index.json');
    // a digest mismatch is not a transient failure: fetched once, not retried
    expect(reg.requests.filter((r) => r.path.endsWith(bad))).toHaveLength(1);
  });
});
