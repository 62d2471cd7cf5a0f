import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EMPTY_SHA256 } from '../../../src/oci/digest.js';
import { blobExists, mountBlob } from '../../../src/registry/blob-mount.js';
import { uploadBlob } from '../../../src/registry/upload.js';
import type { SessionTracker } from '../../../src/registry/upload-session.js';
import { withDigest, parseUploadRange } from '../../../src/registry/push-util.js';
import { deterministicBytes } from '../../helpers/mem-registry.js';
import { opener, recordingRepo, setup, sha256, uploadRequests } from './support.js';

const blob = (n: number, seed = 'blob') => deterministicBytes(`${seed}:${n}`, n);

describe('uploadBlob', () => {
  it('monolithic: POST then one PUT with the whole body; the registry stores the exact bytes', async () => {
    const { reg, repo } = await setup();
    const data = blob(100_000);
    const d = { digest: sha256(data), size: data.length };
    let progress = 0;
    const tracker: SessionTracker = new Set();
    await uploadBlob(repo('app'), d, opener(data).open, { onProgress: (n) => (progress += n), tracker });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(progress).toBe(data.length);
    expect(tracker.size).toBe(0);
    const puts = uploadRequests(reg, 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.query).toMatch(/^_state=[^&]+&digest=sha256%3A[0-9a-f]{64}$/);
    expect(puts[0]!.bytesIn).toBe(data.length);
    expect(uploadRequests(reg, 'PATCH')).toHaveLength(0);
  });

  it('the empty blob is sent with no body', async () => {
    const { reg, repo } = await setup();
    await uploadBlob(repo('app'), { digest: EMPTY_SHA256, size: 0 }, opener(new Uint8Array(0)).open);
    expect(reg.getBlob('app', EMPTY_SHA256)?.length).toBe(0);
    expect(uploadRequests(reg, 'PUT')[0]!.bytesIn).toBe(0);
  });

  it('blobExists: HEAD answers true only for a present blob of the right size', async () => {
    const { reg, repo } = await setup();
    const data = blob(10);
    const digest = reg.putBlob('app', data);
    const r = repo('app');
    expect(await blobExists(r, { digest: digest as `${string}:${string}`, size: 10 })).toBe(true);
    expect(await blobExists(r, { digest: digest as `${string}:${string}`, size: 11 })).toBe(false);
    expect(await blobExists(r, { digest: sha256(blob(11)), size: 11 })).toBe(false);
    expect(reg.requests.every((q) => q.method === 'HEAD')).toBe(true);
  });

  it('chunked when the registry advertises OCI-Chunk-Min-Length: chunks raised to the minimum, last one short', async () => {
    const { reg, repo } = await setup({ chunkMinLength: 1000 });
    const data = blob(3500);
    const d = { digest: sha256(data), size: data.length };
    let progress = 0;
    await uploadBlob(repo('app'), d, opener(data, 300).open, { chunkSize: 400, onProgress: (n) => (progress += n) });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.bytesIn)).toEqual([1000, 1000, 1000, 500]);
    const puts = uploadRequests(reg, 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]!.bytesIn).toBe(0);
    expect(progress).toBe(data.length);
  });

  it('chunked by request: chunkSize alone selects PATCH mode', async () => {
    const { reg, repo } = await setup();
    const data = blob(2500);
    await uploadBlob(repo('app'), { digest: sha256(data), size: data.length }, opener(data).open, { chunkSize: 1000 });
    expect(uploadRequests(reg, 'PATCH').map((r) => r.bytesIn)).toEqual([1000, 1000, 500]);
    expect(reg.getBlob('app', sha256(data))?.equals(data)).toBe(true);
  });

  it('413 on the monolithic PUT falls back to chunks in the same session', async () => {
    const { reg, repo } = await setup();
    reg.faults.push({ match: { method: 'PUT', path: /blobs\/uploads/ }, times: 1, action: { kind: 'status', status: 413 } });
    const data = blob(1024 * 1024 + 17);
    const d = { digest: sha256(data), size: data.length };
    await uploadBlob(repo('app'), d, opener(data, 65536).open);
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(reg.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.bytesIn)).toEqual([1048576, 17]);
  });

  it('a connection reset on the monolithic PUT is retried by re-opening the source from 0', async () => {
    const { reg, repo } = await setup();
    reg.faults.push({ match: { method: 'PUT', path: /blobs\/uploads/ }, times: 1, action: { kind: 'reset' } });
    const data = blob(200_000);
    const d = { digest: sha256(data), size: data.length };
    const src = opener(data);
    let progress = 0;
    await uploadBlob(repo('app'), d, src.open, { onProgress: (n) => (progress += n) });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(src.opened).toEqual([0, 0]);
    expect(uploadRequests(reg, 'PUT')).toHaveLength(2);
    expect(progress).toBe(data.length);
  });

  it('a reset on a chunk re-opens the source at that chunk offset', async () => {
    const { reg, repo } = await setup();
    // The first PATCH passes (a no-op fault uses up the first rule), the second dies once.
    reg.faults.push({ match: { method: 'PATCH' }, times: 1, action: { kind: 'delay', ms: 0 } });
    reg.faults.push({ match: { method: 'PATCH' }, times: 1, action: { kind: 'reset' } });
    const data = blob(3000);
    const src = opener(data);
    await uploadBlob(repo('app'), { digest: sha256(data), size: data.length }, src.open, { chunkSize: 1000 });
    expect(reg.getBlob('app', sha256(data))?.equals(data)).toBe(true);
    expect(src.opened).toEqual([0, 1000, 1000, 2000]);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.status)).toEqual([202, 0, 202, 202]);
  });

  it('a Location the registry refuses as stale (BLOB_UPLOAD_INVALID) starts a new session after checking the blob', async () => {
    const { reg, repo } = await setup();
    // What distribution answers when a retried PATCH presents an outdated _state (and it cancels the session).
    reg.faults.push({
      match: { method: 'PATCH' }, times: 1,
      action: { kind: 'status', status: 400, body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: 'upload resumed at wrong offset' }] }) },
    });
    const data = blob(2000);
    const d = { digest: sha256(data), size: data.length };
    await uploadBlob(repo('app'), d, opener(data).open, { chunkSize: 1000 });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(reg.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(uploadRequests(reg, 'DELETE')).toHaveLength(1);
    expect(reg.requests.some((r) => r.method === 'HEAD')).toBe(true);
  });

  it('416 on a chunk: GET the upload status and resume from the registry offset', async () => {
    const { reg, repo } = await setup();
    reg.faults.push({ match: { method: 'PATCH' }, times: 1, action: { kind: 'status', status: 416 } });
    const data = blob(2500);
    const src = opener(data);
    await uploadBlob(repo('app'), { digest: sha256(data), size: data.length }, src.open, { chunkSize: 1000 });
    expect(reg.getBlob('app', sha256(data))?.equals(data)).toBe(true);
    expect(uploadRequests(reg, 'GET')).toHaveLength(1);
    expect(src.opened).toEqual([0, 0, 1000, 2000]);
  });

  it('a source shorter than the descriptor fails with E_SIZE_MISMATCH, commits nothing and deletes the session', async () => {
    const { reg, repo } = await setup();
    const data = blob(5000);
    const short = data.subarray(0, 4000);
    const tracker: SessionTracker = new Set();
    await expect(uploadBlob(repo('app'), { digest: sha256(data), size: data.length }, opener(short).open, { tracker }))
      .rejects.toMatchObject({ code: 'E_SIZE_MISMATCH' });
    const longer = Buffer.concat([data, Buffer.from('x')]);
    await expect(uploadBlob(repo('app'), { digest: sha256(data), size: data.length }, opener(longer).open))
      .rejects.toMatchObject({ code: 'E_SIZE_MISMATCH' });
    expect(reg.getBlob('app', sha256(data))).toBeUndefined();
    expect(uploadRequests(reg, 'DELETE')).toHaveLength(2);
    expect(tracker.size).toBe(0);
  });

  it('wrong content: withheld locally on a monolithic PUT, refused by the registry (DIGEST_INVALID) when chunked', async () => {
    const { reg, repo } = await setup();
    const data = blob(3000);
    const other = blob(3000, 'other');
    const d = { digest: sha256(data), size: data.length };
    await expect(uploadBlob(repo('app'), d, opener(other).open)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    await expect(uploadBlob(repo('app'), d, opener(other).open, { chunkSize: 1000 })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH', status: 400 });
    expect(reg.getBlob('app', d.digest)).toBeUndefined();
  });

  it('read-only user: E_DENIED naming the repository (basic and token auth)', async () => {
    for (const auth of ['basic', 'token'] as const) {
      const { reg, repo } = await setup({ auth, users: { bob: { password: 'pw', pull: ['*'] } } }, ['bob', 'pw']);
      const data = blob(10);
      const err = await uploadBlob(repo('team/app'), { digest: sha256(data), size: 10 }, opener(data).open).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_DENIED' });
      expect((err as Error).message).toContain(`${reg.host}/team/app`);
    }
  });

  it('token auth: the push token (pull,push) serves the HEADs, POST and PUT of every blob', async () => {
    const { reg, repo } = await setup({ auth: 'token', users: { alice: { password: 'pw', push: ['*'] } } }, ['alice', 'pw']);
    const data = blob(1000);
    const d = { digest: sha256(data), size: data.length };
    const r = repo('app');
    expect(await blobExists(r, d)).toBe(false);
    await uploadBlob(r, d, opener(data).open);
    expect(await blobExists(r, d)).toBe(true);
    const tokens = reg.requests.filter((q) => q.path === '/token');
    // First contact also asks for the challenge's own scope (auth middleware), hence at most 2.
    expect(tokens.length).toBeLessThanOrEqual(2);
    expect(decodeURIComponent(tokens.at(-1)!.query)).toContain('scope=repository:app:pull,push');
    const more = blob(2000);
    const d2 = { digest: sha256(more), size: more.length };
    expect(await blobExists(r, d2)).toBe(false);
    await uploadBlob(r, d2, opener(more).open, { chunkSize: 1000 });
    expect(reg.requests.filter((q) => q.path === '/token')).toHaveLength(tokens.length);
    expect(reg.getBlob('app', d2.digest)?.equals(more)).toBe(true);
  });
});

describe('mountBlob', () => {
  it('201: mounted from a readable repository on the same registry, no bytes move', async () => {
    const { reg, repo } = await setup();
    const data = blob(4000);
    const digest = reg.putBlob('src/app', data);
    const r = await mountBlob(repo('dst/app'), { digest: digest as `${string}:${string}`, size: data.length }, 'src/app');
    expect(r).toEqual({ mounted: true });
    expect(reg.getBlob('dst/app', digest)?.equals(data)).toBe(true);
    expect(reg.requests.filter((q) => q.bytesIn > 0)).toHaveLength(0);
  });

  it('202: not mounted; the open session is handed back for the upload, not a second POST', async () => {
    const { reg, repo } = await setup();
    const data = blob(4000);
    const d = { digest: sha256(data), size: data.length };
    const tracker: SessionTracker = new Set();
    const r = await mountBlob(repo('dst/app'), d, 'src/none', { tracker });
    expect(r.mounted).toBe(false);
    if (r.mounted || !r.session) throw new Error('expected a session');
    expect(tracker.has(r.session)).toBe(true);
    await uploadBlob(repo('dst/app'), d, opener(data).open, { session: r.session, tracker });
    expect(reg.requests.filter((q) => q.method === 'POST')).toHaveLength(1);
    expect(reg.getBlob('dst/app', d.digest)?.equals(data)).toBe(true);
    expect(tracker.size).toBe(0);
  });

  it('a refused mount (403 / 401) is "not mounted", never an error', async () => {
    const { reg, repo } = await setup();
    const data = blob(10);
    const d = { digest: reg.putBlob('src/app', data) as `${string}:${string}`, size: 10 };
    reg.faults.push({ match: { method: 'POST', path: /[?&]mount=/ }, times: 1, action: { kind: 'status', status: 403 } });
    expect(await mountBlob(repo('dst/app'), d, 'src/app')).toEqual({ mounted: false });
    reg.faults.push({ match: { method: 'POST', path: /[?&]mount=/ }, times: 1, action: { kind: 'status', status: 401 } });
    expect(await mountBlob(repo('dst/app'), d, 'src/app')).toEqual({ mounted: false });
  });
});

describe('request shapes', () => {
  it('monolithic PUT: octet-stream, Content-Length, no Content-Range, body re-openable; PATCH: inclusive Content-Range', async () => {
    const { reg } = await setup({ chunkMinLength: 10 });
    const { repo, sent } = recordingRepo(reg, 'app');
    const data = blob(25);
    await uploadBlob(repo, { digest: sha256(data), size: 25 }, opener(data).open, { chunkSize: 10 });
    const patches = sent.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => [r.headers['content-range'], r.headers['content-length'], r.headers['content-type']])).toEqual([
      ['0-9', '10', 'application/octet-stream'], ['10-19', '10', 'application/octet-stream'], ['20-24', '5', 'application/octet-stream'],
    ]);
    expect(patches.every((r) => typeof r.body === 'function')).toBe(true);
    expect(patches[1]!.url.search).toMatch(/^\?_state=/); // the latest Location, not the first
    expect(patches[1]!.url.href).not.toBe(patches[0]!.url.href);
    const close = sent.filter((r) => r.method === 'PUT')[0]!;
    expect(close.headers['content-length']).toBe('0');
    expect(close.headers['content-range']).toBeUndefined();

    const { reg: reg2 } = await setup();
    const { repo: r2, sent: sent2 } = recordingRepo(reg2, 'app');
    await uploadBlob(r2, { digest: sha256(data), size: 25 }, opener(data).open);
    const put = sent2.find((r) => r.method === 'PUT')!;
    expect(put.headers).toMatchObject({ 'content-type': 'application/octet-stream', 'content-length': '25' });
    expect(put.headers['content-range']).toBeUndefined();
    expect(typeof put.body).toBe('function');
    expect(put.url.search).toMatch(/^\?_state=[^&]+&digest=sha256%3A/);
  });
});

describe('helpers', () => {
  it('withDigest keeps the existing query verbatim', () => {
    expect(withDigest(new URL('https://h/v2/a/blobs/uploads/u?_state=a%2Bb=='), 'sha256:00').href).toBe('https://h/v2/a/blobs/uploads/u?_state=a%2Bb==&digest=sha256%3A00');
    expect(withDigest(new URL('https://h/u'), 'sha256:00').search).toBe('?digest=sha256%3A00');
  });
  it('parseUploadRange accepts 0-N and bytes=0-N', () => {
    expect(parseUploadRange('0-99')).toBe(99);
    expect(parseUploadRange('bytes=0-5')).toBe(5);
    expect(parseUploadRange('5-9')).toBeUndefined();
    expect(parseUploadRange(undefined)).toBeUndefined();
  });
});
