/**
 * The innermost layer (src/http/send.ts) against undici's MockAgent: redirects are followed by
 * ferry itself, so what each hop carries is decided here. Hosts that cannot exist on loopback
 * (https and http on default ports of one name) are only reachable this way.
 */
import { MockAgent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createSend } from '../../../src/http/send.js';
import type { HttpRequest } from '../../../src/http/types.js';

let agent: MockAgent;
afterEach(async () => {
  await agent?.close();
});

type Seen = Record<string, string | undefined>;
function setup() {
  agent = new MockAgent();
  agent.disableNetConnect();
  const seen: Array<{ origin: string; path: string; method: string; headers: Seen }> = [];
  const route = (origin: string, path: string, status: number, headers: Record<string, string | string[]> = {}, body = '', method = 'GET') => {
    agent.get(origin).intercept({ path, method }).reply((o) => {
      seen.push({ origin, path, method: o.method, headers: { ...(o.headers as Seen) } });
      return { statusCode: status, data: body, responseOptions: { headers } };
    });
  };
  const send = createSend(() => agent);
  return { seen, route, send };
}

const AUTH = 'Basic YWxpY2U6c2VjcmV0LXB3';
const req = (url: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'GET', url: new URL(url), headers: { authorization: AUTH, cookie: 'sid=abc', accept: '*/*' }, ...extra,
});
const text = async (r: { body: NodeJS.ReadableStream }) => {
  let s = '';
  for await (const c of r.body) s += c.toString();
  return s;
};

describe('send: redirects', () => {
  it('to another host: Authorization and Cookie dropped, other headers kept, final URL reported', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/a/blobs/sha256:1', 307, { location: 'https://storage.example.net/b/1?X-Amz-Signature=s' });
    route('https://storage.example.net', '/b/1?X-Amz-Signature=s', 200, {}, 'blob-bytes');
    const res = await send(req('https://registry.example.com/v2/a/blobs/sha256:1'));
    expect(res.status).toBe(200);
    expect(await text(res)).toBe('blob-bytes');
    expect(res.url.toString()).toBe('https://storage.example.net/b/1?X-Amz-Signature=s');
    expect(seen[0]!.headers.authorization).toBe(AUTH);
    expect(seen[1]!.headers.authorization).toBeUndefined();
    expect(seen[1]!.headers.cookie).toBeUndefined();
    expect(seen[1]!.headers.accept).toBe('*/*');
  });

  it('to another port of the same hostname: Authorization dropped (host includes the port)', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/x', 302, { location: 'https://registry.example.com:8443/v2/x' });
    route('https://registry.example.com:8443', '/v2/x', 200);
    await send(req('https://registry.example.com/v2/x'));
    expect(seen[1]!.headers.authorization).toBeUndefined();
  });

  it('same origin (relative Location): Authorization kept, Cookie still never forwarded', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/a/manifests/v1', 301, { location: '/v2/b/manifests/v1' });
    route('https://registry.example.com', '/v2/b/manifests/v1', 200, {}, '{}');
    const res = await send(req('https://registry.example.com/v2/a/manifests/v1'));
    expect(res.status).toBe(200);
    expect(seen[1]!.headers.authorization).toBe(AUTH);
    expect(seen[1]!.headers.cookie).toBeUndefined();
  });

  // A same-host redirect from https to plain http would send the credentials in clear text.
  // The fetch standard (and undici's own redirect handler) compare origins, i.e. scheme too.
  it('https → http on the same host name: Authorization must not be sent over plain http', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/a/blobs/sha256:1', 307, { location: 'http://registry.example.com/storage/1' });
    route('http://registry.example.com', '/storage/1', 200, {}, 'x');
    const res = await send(req('https://registry.example.com/v2/a/blobs/sha256:1'));
    expect(res.status).toBe(200);
    expect(seen[1]!.origin).toBe('http://registry.example.com');
    expect(seen[1]!.headers.authorization).toBeUndefined();
  });

  it('once dropped, Authorization is not restored when a later hop comes back to the original host', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/x', 307, { location: 'https://cdn.example.net/x' });
    route('https://cdn.example.net', '/x', 307, { location: 'https://registry.example.com/v2/y' });
    route('https://registry.example.com', '/v2/y', 200);
    await send(req('https://registry.example.com/v2/x'));
    expect(seen.map((s) => s.headers.authorization)).toEqual([AUTH, undefined, undefined]);
  });

  it('303 turns the next hop into a GET without a body', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/a/blobs/uploads/', 303, { location: '/v2/a/done' }, '', 'POST');
    route('https://registry.example.com', '/v2/a/done', 200);
    const res = await send({ ...req('https://registry.example.com/v2/a/blobs/uploads/'), method: 'POST', body: 'payload', followRedirects: true });
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.method)).toEqual(['POST', 'GET']);
  });

  it('POST: a 302 is returned to the caller (not followed)', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/a/blobs/uploads/', 302, { location: 'https://elsewhere.example.net/up' }, '', 'POST');
    const res = await send({ ...req('https://registry.example.com/v2/a/blobs/uploads/'), method: 'POST', body: 'x' });
    expect(res.status).toBe(302);
    expect(res.header('location')).toBe('https://elsewhere.example.net/up');
    expect(seen).toHaveLength(1);
  });

  it('PUT 307 to another host: followed with the same method and body, Authorization dropped', async () => {
    const { seen, route, send } = setup();
    const bodies: string[] = [];
    route('https://registry.example.com', '/v2/a/blobs/uploads/u1?_state=s', 307, { location: 'https://upload.example.net/u1' }, '', 'PUT');
    agent.get('https://upload.example.net').intercept({ path: '/u1', method: 'PUT' }).reply((o) => {
      seen.push({ origin: 'https://upload.example.net', path: '/u1', method: o.method, headers: { ...(o.headers as Seen) } });
      bodies.push(String(o.body));
      return { statusCode: 201, data: '' };
    });
    const res = await send({ ...req('https://registry.example.com/v2/a/blobs/uploads/u1?_state=s'), method: 'PUT', body: 'layer-bytes' });
    expect(res.status).toBe(201);
    expect(seen.map((s) => s.method)).toEqual(['PUT', 'PUT']);
    expect(bodies).toEqual(['layer-bytes']);
    expect(seen[1]!.headers.authorization).toBeUndefined();
  });

  it('followRedirects: false → never followed, even a 307', async () => {
    const { seen, route, send } = setup();
    route('https://registry.example.com', '/v2/x', 307, { location: '/v2/y' });
    const res = await send({ ...req('https://registry.example.com/v2/x'), followRedirects: false });
    expect(res.status).toBe(307);
    expect(seen).toHaveLength(1);
  });

  it('a redirect loop → E_REGISTRY "too many redirects" after 11 requests', async () => {
    const { seen, route, send } = setup();
    for (let i = 0; i < 12; i++) route('https://registry.example.com', '/v2/loop', 302, { location: '/v2/loop' });
    const e = await send(req('https://registry.example.com/v2/loop')).then(() => undefined, (x: unknown) => x as { code: string; message: string });
    expect(e?.code).toBe('E_REGISTRY');
    expect(e?.message).toContain('too many redirects');
    expect(seen).toHaveLength(11);
  });

  it('Set-Cookie is stripped from responses (nothing downstream can store it)', async () => {
    const { route, send } = setup();
    route('https://registry.example.com', '/v2/', 200, { 'set-cookie': 'sid=zzz; Path=/', 'docker-distribution-api-version': 'registry/2.0' });
    const res = await send(req('https://registry.example.com/v2/'));
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.header('docker-distribution-api-version')).toBe('registry/2.0');
  });
});
