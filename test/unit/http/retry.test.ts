import { describe, expect, it } from 'vitest';
import { seedImage, type MemRegistry } from '../../helpers/mem-registry.js';
import { newSession, rejection, repoOf, startReg } from './support.js';

const MANIFEST = /\/v2\/app\/manifests\/v1$/;

async function setup() {
  const reg = await startReg();
  const seeded = seedImage(reg, 'app', 'v1');
  const { session, lines } = newSession();
  const { client } = repoOf(session, reg.host, 'app', 'v1');
  const hits = () => reg.requests.filter((r) => r.method === 'GET' && MANIFEST.test(r.path));
  return { reg, seeded, client, lines, hits };
}

const fault = (reg: MemRegistry, status: number, times?: number, headers?: Record<string, string>) =>
  reg.faults.push({ match: { method: 'GET', path: MANIFEST }, ...(times !== undefined ? { times } : {}), action: { kind: 'status', status, ...(headers ? { headers } : {}) } });

describe('retry middleware (through a Session against the mem registry)', () => {
  it.each([500, 502, 503, 504, 408])('HTTP %i twice, then success → 3 requests and the right manifest', async (status) => {
    const { reg, seeded, client, hits, lines } = await setup();
    fault(reg, status, 2);
    const got = await client.getManifest('v1');
    expect(got.descriptor.digest).toBe(seeded.digest);
    expect(hits().map((r) => r.status)).toEqual([status, status, 200]);
    expect(lines.filter((l) => l.startsWith('retry '))).toEqual([
      expect.stringMatching(new RegExp(`^retry 1/3 after \\d+ms: HTTP ${status}$`)),
      expect.stringMatching(new RegExp(`^retry 2/3 after \\d+ms: HTTP ${status}$`)),
    ]);
  });

  it('429 with Retry-After: 1 waits about a second (not the 5–20 ms backoff), then succeeds', async () => {
    const { reg, seeded, client, hits } = await setup();
    fault(reg, 429, 1, { 'Retry-After': '1' });
    const t0 = performance.now();
    const got = await client.getManifest('v1');
    const ms = performance.now() - t0;
    expect(got.descriptor.digest).toBe(seeded.digest);
    expect(hits().map((r) => r.status)).toEqual([429, 200]);
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(3000);
  });

  it('429 with Retry-After: 0 retries at once', async () => {
    const { reg, seeded, client, hits } = await setup();
    fault(reg, 429, 1, { 'Retry-After': '0' });
    expect((await client.getManifest('v1')).descriptor.digest).toBe(seeded.digest);
    expect(hits().map((r) => r.status)).toEqual([429, 200]);
  });

  it('Retry-After beyond the cap (2 s) → no wait, E_RATE_LIMITED naming the wait', async () => {
    const { reg, client, hits } = await setup();
    fault(reg, 429, undefined, { 'Retry-After': '30' });
    const t0 = performance.now();
    const e = await rejection(client.getManifest('v1'));
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(e.code).toBe('E_RATE_LIMITED');
    expect(e.message).toContain('the limit resets in 30 s'); // a manifest's 429 says when the limit resets (registry/rate-limit.ts)
    expect(e.message).toContain(`${reg.host}/app:v1`);
    expect(hits()).toHaveLength(1);
  });

  it('503 with a Retry-After beyond the cap → surfaced at once as E_REGISTRY (1 request)', async () => {
    const { reg, client, hits } = await setup();
    fault(reg, 503, undefined, { 'Retry-After': '3600' });
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain('HTTP 503');
    expect(hits()).toHaveLength(1);
  });

  it.each([
    [404, 'E_NOT_FOUND'],
    [401, 'E_UNAUTHORIZED'],
    [403, 'E_DENIED'],
  ])('HTTP %i is never retried (1 request) → %s', async (status, code) => {
    const { reg, client, hits, lines } = await setup();
    fault(reg, status);
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe(code);
    expect(e.message).toContain(`${reg.host}/app`);
    expect(hits()).toHaveLength(1);
    expect(lines.some((l) => l.startsWith('retry '))).toBe(false);
  });

  it('a connection reset on a GET is retried and the request then succeeds', async () => {
    const { reg, seeded, client, hits } = await setup();
    reg.faults.push({ match: { method: 'GET', path: MANIFEST }, times: 1, action: { kind: 'reset' } });
    const got = await client.getManifest('v1');
    expect(got.descriptor.digest).toBe(seeded.digest);
    expect(hits().map((r) => r.status)).toEqual([0, 200]);
  });

  it('retries exhausted on 5xx → E_REGISTRY naming the registry host, after exactly `attempts` requests', async () => {
    const { reg, client, hits } = await setup();
    fault(reg, 503);
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.status).toBe(503);
    expect(e.message).toContain(reg.host);
    expect(e.message).toContain('HTTP 503');
    expect(hits()).toHaveLength(4);
  });

  it('retries exhausted on resets → E_NETWORK naming the registry host, after exactly `attempts` requests', async () => {
    const { reg, client, hits } = await setup();
    reg.faults.push({ match: { method: 'GET', path: MANIFEST }, action: { kind: 'reset' } });
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(reg.host);
    expect(hits()).toHaveLength(4);
  });

  it('a refused connection fails fast as E_NETWORK (not retried)', async () => {
    const reg = await startReg();
    const host = reg.host;
    await reg.stop();
    const { session, lines } = newSession();
    const { client } = repoOf(session, host, 'app', 'v1');
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`connection refused by http://${host}`);
    expect(lines.filter((l) => l.startsWith('→ GET'))).toHaveLength(1);
  });
});
