/** HTTP(S) server wiring: request log, fault injection, token endpoint, storage route, /v2 API. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Auth } from './auth.js';
import { Handlers, parseRoute, preflight } from './handlers.js';
import { Store } from './store.js';
import type { Fault, MemRegistry, MemRegistryOptions, MemRequestRecord } from './types.js';
import { defaultErrorCode, empty, errorResp, header, readBody, sleep, type Resp } from './util.js';

type FaultAction = Fault['action'];

function pickFault(faults: Fault[], method: string, url: URL): FaultAction | undefined {
  for (const f of faults) {
    if (f.times !== undefined && f.times <= 0) continue;
    if (f.match.method && f.match.method.toUpperCase() !== method) continue;
    if (f.match.path) {
      f.match.path.lastIndex = 0;
      const hit = f.match.path.test(url.pathname) || ((f.match.path.lastIndex = 0), f.match.path.test(url.pathname + url.search));
      if (!hit) continue;
    }
    if (f.times !== undefined) f.times--;
    return f.action;
  }
  return undefined;
}

function redirectTarget(to: string, url: URL): string {
  const digests = url.pathname.match(/[a-z0-9]+:[a-f0-9]{32,}/g);
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/?$/i.test(to)) return to.replace(/\/$/, '') + url.pathname + url.search;
  return to.replaceAll('{path}', url.pathname + url.search).replaceAll('{digest}', digests?.at(-1) ?? '');
}

function statusFault(a: Extract<FaultAction, { kind: 'status' }>): Resp {
  if (a.body !== undefined) {
    return { status: a.status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...a.headers }, body: Buffer.from(a.body) };
  }
  const r = errorResp(a.status, defaultErrorCode(a.status), `injected fault: HTTP ${a.status}`);
  return { ...r, headers: { ...r.headers, ...a.headers } };
}

/** Fake object storage (S3-like): serves any stored blob without auth, refuses an Authorization header. */
function storage(store: Store, method: string, headers: IncomingMessage['headers'], digest: string): Resp {
  if (method !== 'GET' && method !== 'HEAD') return empty(405);
  if (header(headers, 'authorization')) {
    return {
      status: 400,
      headers: { 'Content-Type': 'application/xml' },
      body: Buffer.from('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>'),
    };
  }
  for (const r of store.repos.values()) {
    const b = r.blobs.get(digest);
    if (b) return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: b };
  }
  return { status: 404, headers: { 'Content-Type': 'application/xml' }, body: Buffer.from('<Error><Code>NoSuchKey</Code></Error>') };
}

function send(res: ServerResponse, method: string, resp: Resp, entry: MemRequestRecord, fault: FaultAction | undefined): void {
  const headers: Record<string, string | string[]> = { 'Docker-Distribution-API-Version': 'registry/2.0', ...resp.headers };
  let body = resp.body ?? Buffer.alloc(0);
  const noBody = resp.status === 204 || resp.status === 304;
  if (!noBody) headers['Content-Length'] = String(body.length);
  if (fault?.kind === 'corrupt' && body.length > 0) {
    body = Buffer.from(body);
    const i = Math.floor(body.length / 2);
    body[i] = body[i]! ^ 0xff;
  }
  entry.status = resp.status;
  res.writeHead(resp.status, headers);
  if (method === 'HEAD' || noBody) {
    res.end();
    return;
  }
  if (fault?.kind === 'truncate') {
    const n = Math.max(0, Math.min(fault.afterBytes, body.length));
    entry.bytesOut = n;
    const kill = () => res.socket?.destroy();
    if (n > 0) res.write(body.subarray(0, n), kill);
    else {
      res.flushHeaders();
      setTimeout(kill, 10);
    }
    return;
  }
  entry.bytesOut = body.length;
  res.end(body);
}

export async function startMemRegistry(opts: MemRegistryOptions = {}): Promise<MemRegistry> {
  const store = new Store();
  const handlers = new Handlers(store, opts);
  const mode = opts.auth ?? 'open';
  let base = '';
  const auth = new Auth(mode, opts.users ?? {}, opts.anonymousPull ?? [], () => `${base}/token`);


  const route = (method: string, url: URL, req: IncomingMessage, body: Buffer): Resp => {
    if (url.pathname === '/token') return auth.handleToken(method, req.headers, url.searchParams, body);
    const st = /^\/_storage\/([^/]+)$/.exec(url.pathname);
    if (st) return storage(store, method, req.headers, decodeURIComponent(st[1]!));
    if (url.pathname !== '/v2' && !url.pathname.startsWith('/v2/')) return errorResp(404, 'UNSUPPORTED', 'not found');
    const r = parseRoute(url.pathname);
    const access = preflight(r, method);
    if ('status' in access) return access;
    const a = auth.authorize(req.headers, access);
    if (!a.ok) return a.resp;
    return handlers.handle(r, { method, url, headers: req.headers, body, principal: a.principal });
  };

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', base);
    const authz = header(req.headers, 'authorization');
    const entry: MemRequestRecord = {
      method, path: url.pathname, query: url.search.slice(1), hasAuth: !!authz, status: 0, bytesIn: 0, bytesOut: 0,
    };
    if (authz) entry.authScheme = authz.trim().split(/\s+/)[0];
    // `requests` / `faults` may be replaced wholesale by a test; always go through the object.
    reg.requests.push(entry);
    const fault = pickFault(reg.faults, method, url);
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    entry.bytesIn = body.length;
    let resp: Resp;
    if (fault?.kind === 'status') resp = statusFault(fault);
    else if (fault?.kind === 'redirect') resp = empty(fault.status ?? 307, { Location: redirectTarget(fault.to, url) });
    else {
      if (fault?.kind === 'delay') await sleep(fault.ms);
      resp = route(method, url, req, body);
    }
    send(res, method, resp, entry, fault);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    onRequest(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const r = errorResp(500, 'UNKNOWN', 'internal error in mem-registry', { error: String(err) });
      res.writeHead(r.status, r.headers).end(r.body);
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, listener) : http.createServer(listener);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  base = `${opts.tls ? 'https' : 'http'}://${hostPort}`;

  const reg: MemRegistry = {
    host: hostPort,
    url: base,
    requests: [],
    faults: [],
    putBlob: (repo, bytes) => store.putBlob(repo, bytes),
    putManifest: (repo, ref, bytes, mediaType) => store.putManifest(repo, ref, bytes, mediaType),
    getBlob: (repo, digest) => store.getBlob(repo, digest),
    getManifest: (repo, ref) => store.getManifest(repo, ref),
    expireTokens: () => auth.expireAll(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  if (mode === 'token') reg.tokenRealm = `${base}/token`;
  return reg;
}
