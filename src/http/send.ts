import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { certsDKey, type CertsD } from '../config/certs-d.js';
import { FerryError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import { headerValue, type HttpRequest, type HttpResponse, type Send } from './types.js';
import { isForwardedProxyRefusal, mapNetworkError, proxyRefused } from './network-errors.js';
import { describeProxy, proxyEnv, proxyFor, type ProxyEnv } from './proxy.js';
import { hostPort, matchResolve, type ResolveRule } from './resolve.js';
import { loadAgent, loadProxyAgent } from './undici-agent.js';
import { bulkGet } from './bulk-get.js';
import { bulkEligible } from './http1.js';
import { alertBehind, createConnector, offeredClientCerts, type Connector } from './connector.js';

const MAX_REDIRECTS = 10;

export interface Dispatchers {
  verify: Dispatcher;
  noVerify: Dispatcher;
  close(): Promise<void>;
}

/** A dispatcher that may send some requests through a proxy: which one, by request URL. */
interface ProxyAware {
  proxyFor(url: URL): URL | undefined;
}

/** A dispatcher with --resolve rules: where a direct connection for this URL goes, if mapped. */
interface ResolveAware {
  resolvedFor(url: URL): string | undefined;
}

/** How long a connection may send nothing (headers, or between body bytes) before it is given
 * up and retried (a broken body resumes with Range): `--idle-timeout`. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;
interface AgentTimings { keepAliveTimeout: number; keepAliveMaxTimeout: number; connections: number; headersTimeout: number; bodyTimeout: number }
const headersTimeout = (idleMs: number): number => Math.min(60_000, idleMs);
const common = (idleMs: number): AgentTimings => ({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 32, headersTimeout: headersTimeout(idleMs), bodyTimeout: idleMs });

export interface DispatcherOptions {
  /** --resolve rules: connections to HOST:PORT go to ADDRESS[:ADDRESS_PORT] (direct ones only). */
  resolve?: readonly ResolveRule[];
  /** --debug: told once per rule used. */
  debug?: (line: string) => void;
  /** Per-host CAs and client certificates (flags + certs.d); unset or inactive = the defaults. */
  tls?: CertsD;
  /** Idle timeout for headers and body (DEFAULT_IDLE_TIMEOUT_MS; headers wait at most 60 s). */
  idleTimeoutMs?: number;
}

/** ferry's own dispatchers: whether a request to this URL connects directly (no proxy, no
 * --resolve), so a bulk GET may use bulk-get.ts. Any other dispatcher (a test's MockAgent) gets
 * every request. */
interface BulkAware {
  bulkFor(url: URL): boolean;
}

/** A dispatcher with per-host TLS: the client certificate a connection to this URL presents. */
interface ClientCertAware {
  clientCertFor(url: URL): string | string[] | undefined;
}

/**
 * One keep-alive agent per TLS policy, shared by every registry in the process. With
 * HTTP(S)_PROXY in `env` (http/proxy.ts has the rules), each of the two is a router that picks,
 * per request URL (scheme, host, port: so also per redirect hop and token realm), the direct
 * agent or a ProxyAgent for that proxy, made (and undici's ProxyAgent loaded) on first use.
 * `--resolve` rules apply to the direct agents only: a proxied request is resolved by the proxy.
 */
export function createDispatchers(env: NodeJS.ProcessEnv = process.env, opts: DispatcherOptions = {}): Dispatchers {
  const Agent = loadAgent();
  const rules = opts.resolve ?? [];
  const used = new Set<string>();
  const tls = opts.tls?.active ? opts.tls : undefined;
  // Always ferry's connector (undici's own, built as undici would, plus the alert watch): the
  // per-host TLS and --resolve parts cost nothing when there are none.
  const connectors = [createConnector(rules, tls, env, true, used, opts.debug), createConnector(rules, tls, env, false, used, opts.debug)] as const;
  const COMMON = common(opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  const verify = new Agent({ ...COMMON, connect: connectors[0].connect });
  const noVerify = new Agent({ ...COMMON, connect: connectors[1].connect });
  if (tls) {
    // For error messages: whether a TLS failure happened with a client certificate, and which.
    const clientCertFor = (url: URL): string | string[] | undefined => {
      if (url.protocol !== 'https:') return undefined;
      try {
        return offeredClientCerts(tls, certsDKey(url.hostname, Number(url.port) || 443));
      } catch {
        return undefined;
      }
    };
    for (const a of [verify, noVerify]) Object.defineProperty(a, 'clientCertFor', { value: clientCertFor });
  }
  if (rules.length) {
    // For error messages: a failure to connect names the address --resolve sent it to.
    const resolvedFor = (url: URL): string | undefined => {
      const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
      const r = matchResolve(rules, url.hostname, port);
      return r ? hostPort(r.address, r.addressPort ?? port) : undefined;
    };
    for (const a of [verify, noVerify]) Object.defineProperty(a, 'resolvedFor', { value: resolvedFor });
  }
  for (const a of [verify, noVerify]) Object.defineProperty(a, 'bulkFor', { value: (url: URL): boolean => resolvedOf(a, url) === undefined });
  const proxies = proxyEnv(env);
  if (!proxies) return { verify, noVerify, close: async () => void (await Promise.all([verify.close(), noVerify.close()])) };
  const routers = [new ProxyRouter(proxies, verify, true, connectors[0], COMMON), new ProxyRouter(proxies, noVerify, false, connectors[1], COMMON)] as const;
  return {
    verify: routers[0] as unknown as Dispatcher,
    noVerify: routers[1] as unknown as Dispatcher,
    close: async () => void (await Promise.all(routers.map((r) => r.close()))),
  };
}

class ProxyRouter implements ProxyAware, ResolveAware, ClientCertAware, BulkAware {
  private readonly viaProxy = new Map<string, Dispatcher>();

  constructor(
    private readonly cfg: ProxyEnv, private readonly direct: Dispatcher, private readonly tlsVerify: boolean,
    private readonly connector: Connector, private readonly common: AgentTimings,
  ) {}

  proxyFor(url: URL): URL | undefined {
    return proxyFor(this.cfg, url);
  }

  resolvedFor(url: URL): string | undefined {
    return this.proxyFor(url) ? undefined : resolvedOf(this.direct, url);
  }

  clientCertFor(url: URL): string | string[] | undefined {
    return clientCertOf(this.direct, url);
  }

  bulkFor(url: URL): boolean {
    return !this.proxyFor(url) && bulkOf(this.direct, url);
  }

  request(opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    const proxy = this.proxyFor(new URL(String(opts.origin)));
    return (proxy ? this.agentFor(proxy) : this.direct).request(opts);
  }

  /** One ProxyAgent per proxy; the TLS inside its tunnels is the connector's (the registry's own). */
  private agentFor(proxy: URL): Dispatcher {
    const key = proxy.href;
    let agent = this.viaProxy.get(key);
    if (!agent) {
      const ProxyAgent = loadProxyAgent();
      const uri = new URL(proxy.href);
      uri.username = '';
      uri.password = '';
      const user = decode(proxy.username);
      const token = user || proxy.password ? `Basic ${Buffer.from(`${user}:${decode(proxy.password)}`).toString('base64')}` : undefined;
      const tls = { rejectUnauthorized: this.tlsVerify };
      // http registries are forwarded (GET http://host/…), as Go does: many proxies allow
      // CONNECT to port 443 only. https registries are tunnelled with CONNECT, and the TLS to
      // the registry inside the tunnel is the connector's (connector.ts tunnelFactory: --tls-verify,
      // the registry's certs.d CAs and client pairs, the alert watch); TLS to an https proxy
      // (proxyTls) follows --tls-verify.
      agent = new ProxyAgent({ ...this.common, uri: uri.href, proxyTunnel: false, proxyTls: tls, factory: this.connector.tunnelFactory(uri), ...(token ? { token } : {}) });
      this.viaProxy.set(key, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all([this.direct.close(), ...[...this.viaProxy.values()].map((a) => a.close())]);
  }
}

/** Percent-decoded userinfo; a malformed escape is kept as written. */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function resolvedOf(d: Dispatcher, url: URL): string | undefined {
  const rf = (d as unknown as Partial<ResolveAware>).resolvedFor;
  return typeof rf === 'function' ? rf.call(d, url) : undefined;
}

/** A network failure on a --resolve'd connection says where the socket really went. */
function withResolved(e: unknown, d: Dispatcher | undefined, url: URL): unknown {
  const to = d && e instanceof FerryError && e.code === 'E_NETWORK' ? resolvedOf(d, url) : undefined;
  if (!to || !(e instanceof FerryError)) return e;
  return new FerryError(e.code, `${e.message} (connecting to ${to} by --resolve)`, {
    ...(e.hint !== undefined ? { hint: e.hint } : {}), ...(e.status !== undefined ? { status: e.status } : {}),
    ...(e.url !== undefined ? { url: e.url } : {}), registryCodes: e.registryCodes, cause: e.cause ?? e,
  });
}

function bulkOf(d: Dispatcher, url: URL): boolean {
  const bf = (d as unknown as Partial<BulkAware>).bulkFor;
  return typeof bf === 'function' && bf.call(d, url) === true;
}

function clientCertOf(d: Dispatcher | undefined, url: URL): string | string[] | undefined {
  const cf = d ? (d as unknown as Partial<ClientCertAware>).clientCertFor : undefined;
  return typeof cf === 'function' ? cf.call(d, url) : undefined;
}

function proxyOf(d: Dispatcher, url: URL): URL | undefined {
  const pf = (d as unknown as Partial<ProxyAware>).proxyFor;
  return typeof pf === 'function' ? pf.call(d, url) : undefined;
}

export function wrapResponse(url: URL, status: number, headers: Record<string, string | string[] | undefined>, body: Readable, proxy?: URL): HttpResponse {
  return {
    ...(proxy ? { proxy: describeProxy(proxy) } : {}),
    status,
    headers,
    url,
    body,
    header: (n) => headerValue(headers, n),
    dump: async () => {
      body.resume();
      await new Promise<void>((resolve) => {
        if (body.readableEnded || body.destroyed) return resolve();
        body.once('end', resolve).once('error', () => resolve()).once('close', resolve);
      });
    },
  };
}

export interface SendOptions {
  /** `--idle-timeout` (DEFAULT_IDLE_TIMEOUT_MS): the same limits as the agents', for bulk GETs. */
  idleTimeoutMs?: number;
}

/**
 * The innermost layer: one HTTP exchange through undici, following redirects itself so that the
 * `Authorization` header is dropped whenever a redirect leaves the original host (ECR/S3,
 * Quay/Ceph pre-signed URLs reject it, and it must never leak). No cookies are kept or sent.
 * A `bulk` GET (a blob) over plain http on a direct connection (no proxy, no --resolve) goes
 * through ferry's own body path instead (bulk-get.ts), with the same timeouts and error codes.
 */
export function createSend(dispatcherFor: (req: HttpRequest) => Dispatcher, opts: SendOptions = {}): Send {
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const bulkTimeouts = { headersTimeoutMs: headersTimeout(idleMs), bodyTimeoutMs: idleMs };
  return async (req) => {
    let current: HttpRequest = req;
    const origin = req.url.origin;
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const body = await materialize(current.body);
      let res: { statusCode: number; headers: Dispatcher.ResponseData['headers']; body: Readable };
      let proxy: URL | undefined;
      let dispatcher: Dispatcher | undefined;
      try {
        dispatcher = dispatcherFor(current);
        proxy = proxyOf(dispatcher, current.url);
        const bulk = current.bulk === true && current.method === 'GET' && body === undefined
          && bulkOf(dispatcher, current.url) && bulkEligible(current.url, current.headers);
        res = bulk ? await bulkGet(current.url, current.headers, { signal: current.signal, ...bulkTimeouts }) : await dispatcher.request({
          origin: current.url.origin,
          path: current.url.pathname + current.url.search,
          method: current.method,
          headers: current.headers,
          body,
          signal: current.signal ?? null,
        });
      } catch (e) {
        if (body instanceof Readable) body.destroy();
        const cc = clientCertOf(dispatcher, current.url);
        throw withResolved(mapNetworkError(alertBehind(e), current.url, proxy, cc !== undefined ? { clientCert: cc } : {}), dispatcher, current.url);
      }
      const headers = res.headers as Record<string, string | string[] | undefined>;
      if (proxy && current.url.protocol === 'http:' && proxy.protocol === 'http:' && isForwardedProxyRefusal(res.statusCode, headers)) {
        res.body.on('error', () => {}).destroy();
        throw proxyRefused(res.statusCode, current.url, proxy);
      }
      const location = headerValue(headers, 'location');
      // 307/308 keep method and body (bodies are bytes or re-openable factories), so uploads
      // may follow them too; 301/302/303 only for the reads that asked to follow.
      const keepsMethod = res.statusCode === 307 || res.statusCode === 308;
      if (location && req.followRedirects !== false && (keepsMethod || (follow && [301, 302, 303].includes(res.statusCode)))) {
        res.body.resume();
        if (hop >= MAX_REDIRECTS) {
          throw new FerryError('E_REGISTRY', `too many redirects fetching ${redactUrl(req.url)}`);
        }
        const next = new URL(location, current.url);
        const headersNext = { ...current.headers };
        // Any change of origin (scheme, host or port) drops credentials: a same-host https → http
        // redirect must not send them in clear text.
        if (next.origin !== origin) {
          delete headersNext['authorization'];
          delete headersNext['Authorization'];
        }
        delete headersNext['cookie'];
        const method = res.statusCode === 303 ? 'GET' : current.method;
        current = { ...current, method, url: next, headers: headersNext, ...(method === 'GET' && current.method !== 'GET' ? { body: undefined } : {}) };
        continue;
      }
      delete headers['set-cookie'];
      return wrapResponse(current.url, res.statusCode, headers, res.body, proxy);
    }
  };
}

async function materialize(body: HttpRequest['body']): Promise<string | Uint8Array | Readable | undefined> {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) return body;
  return await body();
}
