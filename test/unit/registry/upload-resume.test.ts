/**
 * Chunked uploads that fail after the retry middleware's attempts resume in the same session from
 * the offset the registry reports (GET on the upload URL), against the in-process registry with
 * injected faults. "Bytes received" is the registry's own count of request body bytes it read.
 */
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { compose } from '../../../src/http/compose.js';
import { retryMiddleware } from '../../../src/http/retry.js';
import { schemeMiddleware } from '../../../src/http/scheme.js';
import { createSend } from '../../../src/http/send.js';
import type { HttpRequest, HttpResponse, Middleware } from '../../../src/http/types.js';
import { RegistryClient, type RepositoryClient } from '../../../src/registry/client.js';
import { uploadBlob } from '../../../src/registry/upload.js';
import { MAX_STALLED_RESUMES, ResumeState } from '../../../src/registry/upload-resume.js';
import { deterministicBytes, type MemRegistry } from '../../helpers/mem-registry.js';
import { opener, setup, sha256, uploadRequests } from './support.js';

const blob = (n: number, seed = 'resume') => deterministicBytes(`${seed}:${n}`, n);
const CHUNK = 1000;
/** The test Session's retry policy makes 4 attempts per request. */
const ATTEMPTS = 4;

const pass = (method: string, times: number) => ({ match: { method }, times, action: { kind: 'delay' as const, ms: 0 } });
const posts = (reg: MemRegistry) => reg.requests.filter((r) => r.method === 'POST');
/** Body bytes the registry read for upload-session requests (PATCH and PUT), refused ones included. */
const received = (reg: MemRegistry) => [...uploadRequests(reg, 'PATCH'), ...uploadRequests(reg, 'PUT')].reduce((n, r) => n + r.bytesIn, 0);
/** Body bytes of PATCHes the registry accepted (stored). */
const stored = (reg: MemRegistry) => uploadRequests(reg, 'PATCH').filter((r) => r.status === 202).reduce((n, r) => n + r.bytesIn, 0);

/** The error `p` fails with (a success fails the test). */
async function failure(p: Promise<void>): Promise<Error & { code?: string; status?: number }> {
  const e: unknown = await p.then(() => undefined, (x: unknown) => x ?? new Error('rejected with nothing'));
  if (!(e instanceof Error)) throw new Error('expected the upload to fail');
  return e;
}

const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
});

/**
 * A client whose answers to the requests `lose` picks are thrown away after the registry handled
 * them (the request was applied, the answer never arrived: ECONNRESET). `below` the retry
 * middleware (it re-sends), or `above` it (as if the last attempt's answer was lost).
 */
function lossyRepo(reg: MemRegistry, name: string, where: 'below' | 'above', lose: (req: HttpRequest, res: HttpResponse) => boolean): RepositoryClient {
  const agent = new Agent();
  agents.push(agent);
  const loser: Middleware = (next) => async (req) => {
    const res = await next(req);
    if (!lose(req, res)) return res;
    await res.dump();
    throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  };
  const retry = retryMiddleware({ attempts: ATTEMPTS, baseMs: 2, maxMs: 10, maxRetryAfterMs: 1000 });
  const scheme = schemeMiddleware({ scheme: 'http', tlsVerify: true }, reg.host);
  const layers = where === 'below' ? [retry, scheme, loser] : [loser, retry, scheme];
  const client = new RegistryClient({ send: compose(layers, createSend(() => agent)), registry: reg.host, apiHost: reg.host });
  return client.repository(name);
}

describe('chunked upload resume', () => {
  it('resets on the 3rd PATCH beyond the retry budget: resumed from the registry offset in the same session', async () => {
    const { reg, repo } = await setup();
    const data = blob(5000);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(pass('PATCH', 2), { match: { method: 'PATCH' }, times: ATTEMPTS + 1, action: { kind: 'reset' } });
    const src = opener(data);
    let progress = 0;
    await uploadBlob(repo('app'), d, src.open, { chunkSize: CHUNK, onProgress: (n) => (progress += n) });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'GET')).toHaveLength(1);
    expect(src.opened).toEqual([0, 1000, ...Array(ATTEMPTS + 2).fill(2000), 3000, 4000]);
    expect(received(reg)).toBeLessThan(data.length + CHUNK); // a restart would send 2 chunks again
    expect(received(reg)).toBe(data.length);
    expect(progress).toBe(data.length);
  });

  it('a 503 burst on a PATCH beyond the retry budget: resumed in the same session, every chunk stored once', async () => {
    const { reg, repo } = await setup();
    const data = blob(3500);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(pass('PATCH', 1), { match: { method: 'PATCH' }, times: ATTEMPTS + 2, action: { kind: 'status', status: 503 } });
    const src = opener(data);
    await uploadBlob(repo('app'), d, src.open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'GET')).toHaveLength(1);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.status)).toEqual([202, ...Array(ATTEMPTS + 2).fill(503), 202, 202, 202]);
    expect(stored(reg)).toBe(data.length);
    // A 503 is answered after the body was read: those bytes are the retries', not a restart's.
    expect(received(reg)).toBe(data.length + (ATTEMPTS + 2) * CHUNK);
  });

  it('a lost 202 (applied; the retried PATCH is refused as stale): asks, then continues after the applied chunk', async () => {
    const { reg } = await setup();
    const data = blob(4000);
    const d = { digest: sha256(data), size: data.length };
    let patches = 0;
    const repo = lossyRepo(reg, 'app', 'below', (req) => req.method === 'PATCH' && ++patches === 2);
    const src = opener(data);
    await uploadBlob(repo, d, src.open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'GET')).toHaveLength(1);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.status)).toEqual([202, 202, 400, 202, 202]);
    expect(src.opened).toEqual([0, 1000, 1000, 2000, 3000]);
    expect(stored(reg)).toBe(data.length);
    expect(received(reg)).toBe(data.length + CHUNK); // only the retry middleware's one re-send
  });

  it('the last attempt\'s 202 lost: the status says the chunk arrived, nothing is sent twice', async () => {
    const { reg } = await setup();
    const data = blob(4000);
    const d = { digest: sha256(data), size: data.length };
    let patches = 0;
    const repo = lossyRepo(reg, 'app', 'above', (req) => req.method === 'PATCH' && ++patches === 3);
    const src = opener(data);
    await uploadBlob(repo, d, src.open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(src.opened).toEqual([0, 1000, 2000, 3000]);
    expect(received(reg)).toBe(data.length);
  });

  it('Range 0-0 is 0 or 1 byte: resent from 0 first, from 1 after the registry refuses that (416)', async () => {
    const { reg } = await setup();
    const data = blob(3);
    const d = { digest: sha256(data), size: data.length };
    let patches = 0;
    const repo = lossyRepo(reg, 'app', 'above', (req) => req.method === 'PATCH' && ++patches === 1);
    const src = opener(data);
    await uploadBlob(repo, d, src.open, { chunkSize: 1 });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'PATCH').map((r) => r.status)).toEqual([202, 416, 202, 202]);
    expect(src.opened).toEqual([0, 0, 1, 2]);
    expect(uploadRequests(reg, 'GET')).toHaveLength(2);
  });

  it('a closing PUT that fails with 500 after the retries: the status says every byte arrived, the PUT is sent again', async () => {
    const { reg, repo } = await setup();
    const data = blob(2500);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push({ match: { method: 'PUT', path: /blobs\/uploads/ }, times: ATTEMPTS, action: { kind: 'status', status: 500 } });
    const src = opener(data);
    await uploadBlob(repo('app'), d, src.open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'PUT').map((r) => r.status)).toEqual([...Array(ATTEMPTS).fill(500), 201]);
    expect(src.opened).toEqual([0, 1000, 2000]);
  });

  it('the session is gone (status → 404 BLOB_UPLOAD_UNKNOWN): a new session after checking the blob, as before', async () => {
    const { reg, repo } = await setup();
    const data = blob(3000);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(
      pass('PATCH', 1), { match: { method: 'PATCH' }, times: ATTEMPTS, action: { kind: 'reset' } },
      { match: { method: 'GET', path: /blobs\/uploads\// }, times: 1, action: { kind: 'status', status: 404, body: JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown' }] }) } },
    );
    await uploadBlob(repo('app'), d, opener(data).open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(2);
    expect(reg.requests.some((r) => r.method === 'HEAD')).toBe(true);
    expect(uploadRequests(reg, 'DELETE')).toHaveLength(1);
  });

  it('a status claiming more bytes than were sent is a corrupted session: a new one', async () => {
    const { reg, repo } = await setup();
    const data = blob(3000);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(
      pass('PATCH', 1), { match: { method: 'PATCH' }, times: ATTEMPTS, action: { kind: 'status', status: 502 } },
      { match: { method: 'GET', path: /blobs\/uploads\// }, times: 1, action: { kind: 'status', status: 204, headers: { Range: '0-2499' } } },
    );
    await uploadBlob(repo('app'), d, opener(data).open, { chunkSize: CHUNK });
    expect(reg.getBlob('app', d.digest)?.equals(data)).toBe(true);
    expect(posts(reg)).toHaveLength(2);
  });

  it('no progress: after a few resumes at the same offset, the original error as one line saying where it stopped', async () => {
    const { reg, repo } = await setup();
    const data = blob(3000);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(pass('PATCH', 1), { match: { method: 'PATCH' }, action: { kind: 'reset' } });
    const err = await failure(uploadBlob(repo('app'), d, opener(data).open, { chunkSize: CHUNK }));
    expect(err).toMatchObject({ code: 'E_NETWORK' });
    expect(err.message).toContain(`${reg.host}/app@${d.digest}`);
    expect(err.message).toContain(`upload stopped at byte 1000 of 3000: ${MAX_STALLED_RESUMES + 1} resumes in the same session, the last ${MAX_STALLED_RESUMES} without progress`);
    expect(err.message).not.toContain('\n');
    expect(uploadRequests(reg, 'GET')).toHaveLength(MAX_STALLED_RESUMES + 1);
    expect(uploadRequests(reg, 'PATCH')).toHaveLength(1 + (MAX_STALLED_RESUMES + 1) * ATTEMPTS);
    expect(posts(reg)).toHaveLength(1);
    expect(uploadRequests(reg, 'DELETE')).toHaveLength(1);
    expect(reg.getBlob('app', d.digest)).toBeUndefined();
  });

  it('the status request fails too: the original error, saying the status could not be asked', async () => {
    const { reg, repo } = await setup();
    const data = blob(3000);
    const d = { digest: sha256(data), size: data.length };
    reg.faults.push(
      pass('PATCH', 1), { match: { method: 'PATCH' }, action: { kind: 'status', status: 503 } },
      { match: { method: 'GET', path: /blobs\/uploads\// }, action: { kind: 'status', status: 500 } },
    );
    const err = await failure(uploadBlob(repo('app'), d, opener(data).open, { chunkSize: CHUNK }));
    expect(err).toMatchObject({ status: 503 });
    expect(err.message).toMatch(new RegExp(`^${reg.host}/app@${d.digest}: .*503.* \\(upload stopped at byte 1000 of 3000: asking for the upload status failed: .*500`));
    expect(err.message).not.toContain('\n');
    expect(uploadRequests(reg, 'GET')).toHaveLength(ATTEMPTS);
  });
});

describe('ResumeState', () => {
  it('reads the Range end, bounded by what was sent; 0-0 is 0 first, then 1', () => {
    const s = new ResumeState(10);
    expect(s.point(0)).toEqual({ at: 0 }); // nothing sent: 0-0 is 0
    s.noteSent(4);
    expect(s.point(undefined)).toEqual({ at: 0 });
    expect(s.point(0)).toEqual({ at: 0 });
    expect(s.point(0)).toEqual({ at: 1 });
    expect(s.point(3)).toEqual({ at: 4 });
    expect(s.point(4)).toEqual({ corrupt: 5 });
    s.noteSent(2); // positions only raise it
    expect(s.point(3)).toEqual({ at: 4 });
  });

  it(`admits resumes while they progress; ${MAX_STALLED_RESUMES} in a row at or before the last offset stop it`, () => {
    const s = new ResumeState(100);
    expect([s.admit(10), s.admit(20), s.admit(20), s.admit(5), s.admit(30)]).toEqual([true, true, true, true, true]);
    expect([s.admit(30), s.admit(30), s.admit(30)]).toEqual([true, true, false]);
  });
});
