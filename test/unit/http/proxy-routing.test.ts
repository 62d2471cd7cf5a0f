/**
 * Per-request proxy choice (src/http/send.ts createDispatchers with HTTP_PROXY): every hop is
 * routed by its own URL, so a redirect to another host and a token realm on another host each get
 * the proxy (or none) that their URL calls for. The "proxy" here is an in-process forward proxy
 * that answers for made-up `.test` hosts itself; loopback URLs are never proxied and reach a
 * direct server. (The real-proxy suite is test/integration/proxy.test.ts, with tinyproxy.)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDispatchers, createSend } from '../../../src/http/send.js';
import { Session } from '../../../src/registry/session.js';
import { repoOf, RETRY } from './support.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function serve(handler: Handler): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const srv = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.push({ close: () => srv.close() });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

describe('proxy routing per hop', () => {
  it('proxied registry → redirect to loopback storage: the second hop goes direct', async () => {
    const direct = await serve((_q, r) => r.end('blob-bytes'));
    const proxy = await serve((q, r) => {
      r.writeHead(307, { location: `${direct.url}/b/1` }).end();
      void q;
    });
    const d = createDispatchers({ HTTP_PROXY: proxy.url });
    try {
      const send = createSend(() => d.verify);
      const res = await send({ method: 'GET', url: new URL('http://registry.test/v2/a/blobs/sha256:1'), headers: {} });
      expect(res.status).toBe(200);
      expect(res.proxy).toBeUndefined();
      await res.dump();
      expect(proxy.seen).toEqual(['GET http://registry.test/v2/a/blobs/sha256:1']);
      expect(direct.seen).toEqual(['GET /b/1']);
    } finally {
      await d.close();
    }
  });

  it('direct (loopback) registry → redirect to another host: that hop goes through the proxy', async () => {
    const proxy = await serve((_q, r) => r.end('from-storage'));
    const direct = await serve((_q, r) => r.writeHead(302, { location: 'http://storage.test/b/2?sig=x' }).end());
    const d = createDispatchers({ HTTP_PROXY: `http://user:pw@${new URL(proxy.url).host}` });
    try {
      const send = createSend(() => d.verify);
      const res = await send({ method: 'GET', url: new URL(`${direct.url}/v2/a/blobs/sha256:2`), headers: {} });
      expect(res.status).toBe(200);
      expect(res.proxy).toBe(`http://***@${new URL(proxy.url).host}`);
      await res.dump();
      expect(direct.seen).toEqual(['GET /v2/a/blobs/sha256:2']);
      expect(proxy.seen).toEqual(['GET http://storage.test/b/2?sig=x']);
    } finally {
      await d.close();
    }
  });

  it('the proxy gets its credentials as Proxy-Authorization, and the registry never sees them', async () => {
    let proxyAuth: string | undefined;
    const proxy = await serve((q, r) => {
      proxyAuth = q.headers['proxy-authorization'];
      r.end('ok');
    });
    const d = createDispatchers({ HTTP_PROXY: `http://us%40er:p%3Aw@${new URL(proxy.url).host}` });
    try {
      const res = await createSend(() => d.verify)({ method: 'GET', url: new URL('http://registry.test/v2/'), headers: {} });
      await res.dump();
      expect(proxyAuth).toBe(`Basic ${Buffer.from('us@er:p:w').toString('base64')}`);
    } finally {
      await d.close();
    }
  });

  it('token realms are routed by their own URL: a loopback realm goes direct, another host through the proxy', async () => {
    const realm = await serve((_q, r) => r.setHeader('content-type', 'application/json').end('{"token":"tok-direct"}'));
    const proxy = await serve((q, r) => {
      const u = new URL(q.url!);
      if (u.hostname === 'auth.test') return void r.setHeader('content-type', 'application/json').end('{"token":"tok-proxied"}');
      const want = u.hostname === 'reg1.test' ? 'Bearer tok-direct' : 'Bearer tok-proxied';
      if (q.headers.authorization !== want) {
        const at = u.hostname === 'reg1.test' ? `${realm.url}/token` : 'http://auth.test/token';
        return void r.writeHead(401, { 'www-authenticate': `Bearer realm="${at}",service="svc"`, 'content-type': 'application/json' }).end('{"errors":[]}');
      }
      r.setHeader('content-type', 'application/json').end(JSON.stringify({ name: 'repo', tags: ['v1'] }));
    });
    // Session reads the proxy variables from the process environment (its `env` is for credentials).
    const lines: string[] = [];
    const saved = process.env['HTTP_PROXY'];
    process.env['HTTP_PROXY'] = proxy.url;
    let session: Session;
    try {
      session = new Session({ userAgent: 'ferry-test', plainHttp: true, retry: RETRY, debug: (l) => lines.push(l), env: { HOME: '/nonexistent', DOCKER_CONFIG: '/nonexistent', PATH: '' }, warn: () => {} });
    } finally {
      if (saved === undefined) delete process.env['HTTP_PROXY'];
      else process.env['HTTP_PROXY'] = saved;
    }
    try {
      expect(await repoOf(session, 'reg1.test', 'repo').client.listTags()).toEqual(['v1']);
      expect(await repoOf(session, 'reg2.test', 'repo').client.listTags()).toEqual(['v1']);
    } finally {
      await session.close();
    }
    expect(realm.seen).toHaveLength(1);
    expect(realm.seen[0]).toMatch(/^GET \/token\?/);
    expect(proxy.seen.filter((l) => l.includes('auth.test'))).toHaveLength(1);
    expect(proxy.seen.some((l) => l.includes('127.0.0.1'))).toBe(false);
    expect(lines.some((l) => /^← 200 GET http:\/\/auth\.test\/token\S* via proxy http:\/\/127\.0\.0\.1:\d+ /.test(l))).toBe(true);
    expect(lines.some((l) => /^← 200 GET http:\/\/127\.0\.0\.1:\d+\/token\S* \(/.test(l))).toBe(true);
  });

  it('a forwarded 403: a registry JSON error stays the registry\'s answer, an HTML page is the proxy\'s refusal', async () => {
    const proxy = await serve((q, r) => {
      if (q.url!.includes('json')) r.writeHead(403, { 'content-type': 'application/json' }).end('{"errors":[{"code":"DENIED"}]}');
      else r.writeHead(403, { 'content-type': 'text/html' }).end('<html>Filtered</html>');
    });
    const d = createDispatchers({ HTTP_PROXY: proxy.url });
    try {
      const send = createSend(() => d.verify);
      const res = await send({ method: 'GET', url: new URL('http://registry.test/v2/json'), headers: {} });
      expect(res.status).toBe(403);
      await res.dump();
      await expect(send({ method: 'GET', url: new URL('http://registry.test:5000/v2/html'), headers: {} })).rejects.toMatchObject({
        code: 'E_NETWORK', message: `proxy ${proxy.url} refused the connection to registry.test:5000: 403 Forbidden`,
      });
    } finally {
      await d.close();
    }
  });
});
