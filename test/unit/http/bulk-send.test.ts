/**
 * Which requests createSend gives to ferry's own body path (http/bulk-get.ts) and which to
 * undici: a `bulk` GET over plain http on a direct connection takes it (the server sees its
 * `connection: close`); through a proxy, with --resolve, without `bulk`, or to a dispatcher that
 * is not ferry's (a test's MockAgent), undici does (`connection: keep-alive`). Redirects keep
 * their rules on either path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createDispatchers, createSend, type Dispatchers } from '../../../src/http/send.js';
import type { HttpRequest } from '../../../src/http/types.js';
import { startRawServer, type RawReply, type RawRequest, type RawServer } from '../../helpers/raw-http.js';

let servers: RawServer[] = [];
let dispatchers: Dispatchers[] = [];
afterEach(async () => {
  for (const d of dispatchers.splice(0)) await d.close();
  for (const s of servers.splice(0)) await s.stop();
});

async function server(handle: (req: RawRequest) => RawReply = () => ({ body: 'blob-bytes' })): Promise<RawServer> {
  const s = await startRawServer(handle);
  servers.push(s);
  return s;
}

function sendWith(env: NodeJS.ProcessEnv = {}, opts: Parameters<typeof createDispatchers>[1] = {}) {
  const d = createDispatchers(env, opts);
  dispatchers.push(d);
  return createSend(() => d.verify);
}

const get = (url: string, extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'GET', url: new URL(url), headers: { authorization: 'Bearer secret-token' }, bulk: true, ...extra,
});
const text = async (r: { body: NodeJS.ReadableStream }) => {
  let s = '';
  for await (const c of r.body) s += c.toString();
  return s;
};

describe('createSend: the bulk path', () => {
  it('a bulk GET over plain http, direct: ferry\'s own exchange (connection: close), the body and headers as undici would give them', async () => {
    const s = await server(() => ({ body: 'blob-bytes', headers: { 'Docker-Content-Digest': 'sha256:1' } }));
    const res = await sendWith()(get(`http://${s.host}/v2/a/blobs/sha256:1`));
    expect([res.status, res.header('docker-content-digest'), res.header('content-length')]).toEqual([200, 'sha256:1', '10']);
    expect(await text(res)).toBe('blob-bytes');
    expect(s.requests.map((r) => [r.path, r.headers['connection'], r.headers['authorization']])).toEqual([['/v2/a/blobs/sha256:1', 'close', 'Bearer secret-token']]);
  });

  it('without bulk, undici carries it (keep-alive)', async () => {
    const s = await server();
    const res = await sendWith()(get(`http://${s.host}/v2/`, { bulk: false }));
    await text(res);
    expect(s.requests[0]!.headers['connection']).toBe('keep-alive');
  });

  it('through HTTP_PROXY, undici carries it to the proxy', async () => {
    // Loopback is never proxied: the registry has a name (which nothing resolves).
    const proxy = await server(() => ({ body: 'via-proxy' }));
    const res = await sendWith({ HTTP_PROXY: `http://${proxy.host}` })(get('http://registry.test:5000/v2/a/blobs/sha256:1'));
    expect(await text(res)).toBe('via-proxy');
    expect(proxy.requests.map((r) => [r.path, r.headers['connection']])).toEqual([['http://registry.test:5000/v2/a/blobs/sha256:1', 'keep-alive']]);
  });

  it('with --resolve for the host, undici carries it to the resolved address', async () => {
    const s = await server();
    const port = Number(s.host.split(':')[1]);
    const send = sendWith({}, { resolve: [{ host: 'registry.test', port, address: '127.0.0.1', spec: `registry.test:${port}:127.0.0.1` }] });
    const res = await send(get(`http://registry.test:${port}/v2/a/blobs/sha256:1`));
    expect(await text(res)).toBe('blob-bytes');
    expect([s.requests[0]!.headers['host'], s.requests[0]!.headers['connection']]).toEqual([`registry.test:${port}`, 'keep-alive']);
  });

  it('a redirect to another host: the next hop drops Authorization (and is a bulk exchange too)', async () => {
    const storage = await server(() => ({ body: 'from-storage' }));
    const reg = await server(() => ({ status: 307, headers: { Location: `http://${storage.host}/b/1?sig=s` } }));
    const res = await sendWith()(get(`http://${reg.host}/v2/a/blobs/sha256:1`));
    expect(await text(res)).toBe('from-storage');
    expect(res.url.toString()).toBe(`http://${storage.host}/b/1?sig=s`);
    expect(reg.requests[0]!.headers['authorization']).toBe('Bearer secret-token');
    expect(storage.requests.map((r) => [r.headers['authorization'], r.headers['connection']])).toEqual([[undefined, 'close']]);
  });

  it('a refused connection maps to E_NETWORK as on undici\'s path', async () => {
    const s = await server();
    const host = s.host;
    await servers.pop()!.stop();
    const e = await sendWith()(get(`http://${host}/v2/a/blobs/sha256:1`)).then(() => undefined, (x: unknown) => x as { code?: string; message?: string });
    expect(e?.code).toBe('E_NETWORK');
    expect(e?.message).toBe(`connection refused by http://${host}`);
  });
});
