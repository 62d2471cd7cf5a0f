/**
 * A fault-injecting reverse proxy for integration tests: ferry talks to `127.0.0.1:<port>` as if
 * it were the registry, the proxy forwards every request to a real registry (real-registry.ts)
 * and breaks the answers the way networks and registries do.
 *
 * Contracts:
 * - startFaultProxy({upstream, tokenServer?}) listens on 127.0.0.1:<free port> (node:http, plain
 *   http: ferry reaches a loopback registry by its http fallback) and forwards method, path,
 *   query, headers (Host unchanged, so distribution's upload Locations name the proxy) and body to
 *   `upstream` (an http URL). With `tokenServer` (token mode), every `WWW-Authenticate` realm
 *   naming the token server is rewritten to the proxy, and requests for its realm path are
 *   forwarded to it: rules apply to the token endpoint too.
 * - A second listener, the redirect host, on 127.0.0.1:<port2>, addressed as `localhost:<port2>`
 *   (another host for ferry: credentials must not follow a redirect there). It serves what the
 *   upstream serves for the same path, as a pre-signed storage URL would: forwarded without the
 *   headers it got, with the Authorization the main listener received when it redirected that
 *   path (the URL's 'signature'). Every request is recorded in `log` with host 'redirect'.
 * - `rules` (mutable; `addRule` pushes and returns it): the first rule whose method (default any)
 *   and `path` regex match, whose `host` (default 'main') matches, and that has not used up its
 *   `times` (default 1; Infinity = always) after skipping `skip` matching requests (default 0),
 *   acts on that request. `rule.hits` counts the requests it acted on. Actions:
 *   - status: answer `status` itself (the upstream is not asked), with a registry-style JSON
 *     error body `{errors:[{code, message}]}` and an optional Retry-After.
 *   - reset: forward, then after `afterBytes` body bytes reset the client socket (RST).
 *   - truncate: forward the upstream's headers (its Content-Length) and only `afterBytes` bytes,
 *     then close the connection cleanly (FIN).
 *   - flip: the byte at `offset` of the body is XORed with 0xff (length unchanged).
 *   - stall: after `afterBytes`, send nothing for `ms` milliseconds (or never: 'forever') and
 *     then continue.
 *   - redirect: answer 307 with Location `http://localhost:<port2><same path and query>`.
 *   - replace: answer `body` (status default 200, Content-Length set, headers merged over the
 *     upstream's or, with `noUpstream`, over none); `headers` alone may also add headers (Link).
 * - Counters: `blobBytes` (GET bodies of /blobs/sha256:… sent to ferry by either listener, per
 *   path) and `blobBytesTotal`; `uploadBytesTotal` (request bodies received on /blobs/uploads/).
 *   `log` has every request (host, method, path, headers as received, status answered).
 * - holdAt(n, kind='download'|'upload'): when the downloaded (or uploaded) total would pass n
 *   bytes, exactly n are let through and every such body is paused (no more bytes either way);
 *   the returned promise resolves then. `release()` resumes them. So a test kills ferry at a
 *   byte-exact point without sleeping. A paused exchange whose client goes away is torn down.
 * - reset() clears rules, counters, log and any hold; an exchange begun before a reset (one
 *   whose client was killed while held, say) is never counted after it. stop() closes both listeners and every
 *   open socket (idempotent); call it in afterAll.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FaultAction =
  | { kind: 'status'; status: number; retryAfter?: string; code?: string }
  | { kind: 'reset'; afterBytes: number }
  | { kind: 'truncate'; afterBytes: number }
  | { kind: 'flip'; offset: number }
  | { kind: 'stall'; afterBytes: number; ms: number | 'forever' }
  | { kind: 'redirect' }
  | { kind: 'replace'; body?: Buffer | string; status?: number; headers?: Record<string, string>; noUpstream?: boolean };

export interface FaultRule {
  method?: string;
  path: RegExp;
  host?: 'main' | 'redirect';
  skip?: number;
  times?: number;
  action: FaultAction;
  /** Requests that matched (including skipped ones) and those acted on. */
  seen: number;
  hits: number;
}

export interface LoggedRequest {
  host: 'main' | 'redirect';
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  status?: number;
}

export interface FaultProxy {
  host: string; // '127.0.0.1:PORT'
  redirectHost: string; // 'localhost:PORT2'
  rules: FaultRule[];
  log: LoggedRequest[];
  blobBytes: Map<string, number>;
  readonly blobBytesTotal: number;
  readonly uploadBytesTotal: number;
  addRule(r: Omit<FaultRule, 'seen' | 'hits'>): FaultRule;
  holdAt(bytes: number, kind?: 'download' | 'upload'): Promise<void>;
  release(): void;
  reset(): void;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  upstream: string; // http://127.0.0.1:PORT
  tokenServer?: { url: string; realmPath: string };
}

const BLOB_GET = /\/blobs\/sha256:[0-9a-f]+$/;
const UPLOAD = /\/blobs\/uploads\//;

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(opts.upstream);
  const token = opts.tokenServer ? new URL(opts.tokenServer.url) : undefined;
  const sockets = new Set<Socket>();
  const rules: FaultRule[] = [];
  const log: LoggedRequest[] = [];
  const blobBytes = new Map<string, number>();
  let downloaded = 0;
  let uploaded = 0;
  /** Bumped by reset(): an exchange begun before it is never counted after it. */
  let generation = 0;
  type Hold = { kind: 'download' | 'upload'; at: number; reached: boolean; resolve: () => void; paused: Array<() => void> };
  let hold: Hold | undefined;
  /** Redirected path → the Authorization the main host got with it (the redirect host's grant). */
  const presigned = new Map<string, string | undefined>();
  let mainPort = 0;
  let redirectPort = 0;

  function pick(host: 'main' | 'redirect', method: string, path: string): FaultRule | undefined {
    for (const r of rules) {
      if ((r.host ?? 'main') !== host || (r.method && r.method !== method) || !r.path.test(path)) continue;
      r.seen++;
      if (r.seen <= (r.skip ?? 0) || r.hits >= (r.times ?? 1)) continue;
      r.hits++;
      return r;
    }
    return undefined;
  }

  /** How many of `n` bytes may pass now under the hold (and engages it when reached). */
  function allowance(kind: 'download' | 'upload', n: number): number {
    if (!hold || hold.kind !== kind) return n;
    const total = kind === 'download' ? downloaded : uploaded;
    const left = Math.max(0, hold.at - total);
    if (left < n || (left === 0 && n > 0)) {
      if (!hold.reached) {
        hold.reached = true;
        setImmediate(hold.resolve);
      }
      return left;
    }
    return n;
  }

  function handle(host: 'main' | 'redirect', req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    const born = generation;
    const pathname = path.split('?')[0]!;
    const entry: LoggedRequest = { host, method: req.method ?? 'GET', path, headers: { ...req.headers } };
    log.push(entry);
    const rule = pick(host, entry.method, pathname);
    const action = rule?.action;
    if (action?.kind === 'status') {
      req.resume();
      const body = JSON.stringify({ errors: [{ code: action.code ?? 'UNKNOWN', message: `injected ${action.status}` }] });
      res.writeHead(action.status, {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
        ...(action.retryAfter !== undefined ? { 'retry-after': action.retryAfter } : {}),
      });
      entry.status = action.status;
      res.end(body);
      return;
    }
    if (action?.kind === 'redirect') {
      req.resume();
      presigned.set(path, req.headers['authorization']);
      entry.status = 307;
      res.writeHead(307, { location: `http://localhost:${redirectPort}${path}`, 'content-length': 0 });
      res.end();
      return;
    }
    if (action?.kind === 'replace' && action.noUpstream) {
      req.resume();
      const body = Buffer.from(action.body ?? '');
      entry.status = action.status ?? 200;
      res.writeHead(entry.status, { 'content-length': body.length, ...action.headers });
      res.end(body);
      return;
    }
    const toToken = token && host === 'main' && pathname === opts.tokenServer!.realmPath;
    const target = toToken ? token : upstream;
    const headers = host === 'redirect' ? {} : { ...req.headers };
    const grant = host === 'redirect' ? presigned.get(path) : undefined;
    if (grant) headers['authorization'] = grant; // the 'signature' of this pre-signed URL
    if (toToken) headers['host'] = target.host;
    const up = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path, headers }, (ur) => {
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ur.headers)) if (v !== undefined) outHeaders[k] = v;
      const auth = ur.headers['www-authenticate'];
      if (token && typeof auth === 'string') outHeaders['www-authenticate'] = auth.split(token.origin).join(`http://127.0.0.1:${mainPort}`);
      let replaced: Buffer | undefined;
      let status = ur.statusCode ?? 502;
      if (action?.kind === 'replace') {
        Object.assign(outHeaders, action.headers ?? {});
        if (action.body !== undefined) {
          replaced = Buffer.from(action.body);
          outHeaders['content-length'] = String(replaced.length);
          delete outHeaders['transfer-encoding'];
        }
        status = action.status ?? status;
      }
      entry.status = status;
      res.writeHead(status, outHeaders);
      if (replaced) {
        ur.resume();
        res.end(req.method === 'HEAD' ? undefined : replaced);
        return;
      }
      const isBlob = req.method === 'GET' && BLOB_GET.test(pathname) && status >= 200 && status < 300;
      const counted = (): boolean => isBlob && born === generation;
      let offset = 0;
      let stopped = false;
      let stalled = false; // a stall happens once per request
      const send = (chunk: Buffer): void => {
        // A client gone (killed while held) is sent and counted nothing: its bytes must not be
        // billed to the next run.
        if (chunk.length === 0 || res.destroyed || res.writableEnded) return;
        res.write(chunk);
        offset += chunk.length;
        if (counted()) {
          downloaded += chunk.length;
          blobBytes.set(pathname, (blobBytes.get(pathname) ?? 0) + chunk.length);
        }
      };
      const onChunk = (chunk: Buffer): void => {
        if (stopped || res.destroyed) return;
        if (action?.kind === 'flip' && action.offset >= offset && action.offset < offset + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[action.offset - offset] = chunk[action.offset - offset]! ^ 0xff;
        }
        if ((action?.kind === 'reset' || action?.kind === 'truncate' || action?.kind === 'stall') && !stalled && offset + chunk.length > action.afterBytes && offset <= action.afterBytes) {
          const head = chunk.subarray(0, action.afterBytes - offset);
          const rest = chunk.subarray(action.afterBytes - offset);
          if (action.kind === 'stall') {
            send(head);
            stalled = true;
            ur.pause();
            if (action.ms !== 'forever') setTimeout(() => { onChunk(rest); ur.resume(); }, action.ms);
            return;
          }
          stopped = true;
          ur.destroy();
          const sock = res.socket;
          res.flushHeaders(); // the cut is after the headers, as a broken body is
          if (head.length) res.write(head, () => finish());
          else finish();
          function finish(): void {
            offset += head.length;
            if (counted()) { downloaded += head.length; blobBytes.set(pathname, (blobBytes.get(pathname) ?? 0) + head.length); }
            if (action!.kind === 'reset') sock?.resetAndDestroy();
            else sock?.end();
          }
          return;
        }
        if (counted() && hold?.kind === 'download') {
          const n = allowance('download', chunk.length);
          send(chunk.subarray(0, n));
          if (n < chunk.length) {
            ur.pause();
            hold.paused.push(() => { ur.resume(); onChunk(chunk.subarray(n)); });
          }
          return;
        }
        send(chunk);
      };
      ur.on('data', onChunk);
      ur.on('end', () => { if (!stopped) res.end(); });
      ur.on('error', () => res.destroy());
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    const isUpload = UPLOAD.test(pathname) && (req.method === 'PATCH' || req.method === 'PUT');
    req.on('data', (chunk: Buffer) => {
      if (up.destroyed) return;
      if (isUpload && hold?.kind === 'upload') {
        const n = allowance('upload', chunk.length);
        if (born === generation) uploaded += n;
        up.write(chunk.subarray(0, n));
        if (n < chunk.length) {
          req.pause();
          hold.paused.push(() => {
            if (up.destroyed) return;
            if (born === generation) uploaded += chunk.length - n;
            up.write(chunk.subarray(n));
            req.resume();
          });
        }
        return;
      }
      if (isUpload && born === generation) uploaded += chunk.length;
      up.write(chunk);
    });
    req.on('end', () => up.end());
  }

  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const main = createServer((req, res) => handle('main', req, res));
  const redirect = createServer((req, res) => handle('redirect', req, res));
  main.on('connection', track);
  redirect.on('connection', track);
  mainPort = await listen(main);
  redirectPort = await listen(redirect);

  function release(): void {
    const h = hold;
    hold = undefined;
    for (const p of h?.paused ?? []) p();
  }

  let stopped: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${mainPort}`,
    redirectHost: `localhost:${redirectPort}`,
    rules,
    log,
    blobBytes,
    get blobBytesTotal() { return downloaded; },
    get uploadBytesTotal() { return uploaded; },
    addRule(r) {
      const rule: FaultRule = { ...r, action: { ...r.action }, seen: 0, hits: 0 };
      rules.push(rule);
      return rule;
    },
    holdAt(bytes, kind = 'download') {
      return new Promise<void>((resolve) => {
        hold = { kind, at: bytes, reached: false, resolve, paused: [] };
      });
    },
    release,
    reset() {
      generation++;
      rules.length = 0;
      log.length = 0;
      blobBytes.clear();
      presigned.clear();
      downloaded = 0;
      uploaded = 0;
      release();
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        hold = undefined;
        for (const s of sockets) s.destroy();
        let open = 2;
        const done = (): void => { if (--open === 0) resolve(); };
        main.close(done);
        redirect.close(done);
      });
      return stopped;
    },
  };
}
