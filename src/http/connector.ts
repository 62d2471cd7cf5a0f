/**
 * The connection layer under ferry's undici agents: undici's own connector (built lean, as undici
 * would), plus per-host TLS (CAs and client certificates from certs.d and the flags, chosen by
 * each connection's HOST:PORT), --resolve (the socket goes to another address while SNI, the
 * certificate name and Host stay HOST) and the watch for TLS alerts a server sends after the
 * handshake (a refused client certificate), which createSend turns into E_TLS in words.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { certsDKey, type CertsD, type HostTls } from '../config/certs-d.js';
import { hostPort, matchResolve, type ResolveRule } from './resolve.js';
import { loadBuildConnector, loadPool } from './undici-agent.js';

type ConnectFn = ReturnType<ReturnType<typeof loadBuildConnector>>;
type ConnectOpts = Parameters<ConnectFn>[0];

/**
 * TLS alerts a server sent on an established connection, by local address:port. A TLS 1.3
 * server checks the client certificate after the client's handshake is done, so its refusal
 * ("bad certificate", "certificate required") arrives as a socket error that undici reports only
 * as "other side closed"; createSend looks the alert up by the SocketError's local port.
 */
const alerts = new Map<string, Error>();

function watchAlerts(socket: import('node:net').Socket): void {
  const key = `${socket.localAddress}:${socket.localPort}`;
  socket.on('error', (e: Error & { code?: string }) => {
    if (!e.code?.startsWith('ERR_SSL_')) return;
    if (alerts.size > 64) alerts.clear();
    alerts.set(key, e);
  });
}

/** The TLS alert behind an undici "other side closed", if the server sent one. */
export function alertBehind(e: unknown): unknown {
  const info = (e as { code?: string; socket?: { localAddress?: string; localPort?: number } } | null);
  if (info?.code !== 'UND_ERR_SOCKET' || !info.socket) return e;
  const key = `${info.socket.localAddress}:${info.socket.localPort}`;
  const alert = alerts.get(key);
  if (!alert) return e;
  alerts.delete(key);
  return alert;
}

let defaultCas: string[] | undefined;
/** The roots a connection with extra CAs must keep: node's bundle plus NODE_EXTRA_CA_CERTS (which
 * node adds only to the default store, and a `ca` option replaces that store). */
function defaultRoots(env: NodeJS.ProcessEnv): string[] {
  if (!defaultCas) {
    // node:tls is loaded here, not at start: every command (--version too) would pay for it.
    const { rootCertificates } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
    defaultCas = [...rootCertificates];
    const extra = env['NODE_EXTRA_CA_CERTS'];
    if (extra) {
      try {
        defaultCas.push(readFileSync(extra, 'utf8'));
      } catch {
        // node already warned at start
      }
    }
  }
  return defaultCas;
}

export function tlsConnectOptions(t: HostTls, env: NodeJS.ProcessEnv): { ca?: string[]; cert?: string; key?: string } {
  return {
    ...(t.ca.length ? { ca: [...defaultRoots(env), ...t.ca] } : {}),
    ...(t.cert !== undefined && t.key !== undefined ? { cert: t.cert, key: t.key } : {}),
  };
}

/** What the undici agents need from the connection layer (one per TLS policy). */
export interface Connector {
  /** The `connect` of the direct agent: --resolve, per-host TLS, the alert watch. */
  connect: ConnectFn;
  /**
   * A `factory` for an undici ProxyAgent to `proxy`: its pools to https registries open the
   * CONNECT tunnel through undici (the proxy's own TLS, credentials and refusals stay undici's)
   * and then do the registry's TLS here, inside the tunnel, exactly as a direct connection would
   * (per-host CAs and client pairs, the alert watch); --resolve does not apply (the proxy resolves).
   */
  tunnelFactory(proxy: URL): (origin: string | URL, opts: object) => import('undici').Dispatcher;
}

/**
 * undici's own connector with the --resolve rules and the per-host TLS settings applied. TLS
 * settings are chosen by the destination HOST:PORT (one undici connector per host that has any,
 * so its TLS session cache stays per host). A --resolve match connects to the rule's address
 * instead, with the TLS server name (SNI and the name the certificate is checked against) still
 * HOST; undici writes the Host header from the request origin, which is unchanged.
 */
export function createConnector(rules: readonly ResolveRule[], tls: CertsD | undefined, env: NodeJS.ProcessEnv, rejectUnauthorized: boolean, used: Set<string>, debug?: (line: string) => void): Connector {
  const build = loadBuildConnector();
  const plain = build({ rejectUnauthorized });
  const perHost = new Map<string, ConnectFn>();
  const baseFor = (hostname: string, port: number, protocol: string): ConnectFn => {
    if (!tls || protocol !== 'https:') return plain;
    const key = certsDKey(hostname, port);
    let c = perHost.get(key);
    if (!c) {
      const t = tls.forHost(key);
      if (t) debug?.(`tls ${key}: ${[...t.caFiles.map((f) => `CA ${f}`), ...(t.certFile ? [`client certificate ${t.certFile}`] : [])].join(', ')}`);
      c = t ? build({ rejectUnauthorized, ...tlsConnectOptions(t, env) }) : plain;
      perHost.set(key, c);
    }
    return c;
  };
  const watched = (protocol: string, cb: Parameters<ConnectFn>[1]): Parameters<ConnectFn>[1] => protocol === 'https:' ? (err, socket) => {
    if (socket) watchAlerts(socket);
    cb(err as Error, socket as never);
  } : cb;
  const connect: ConnectFn = (opts, cb) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const callback = watched(opts.protocol, cb);
    let base: ConnectFn;
    try {
      base = baseFor(opts.hostname, port, opts.protocol);
    } catch (e) {
      callback(e as Error, null);
      return;
    }
    const rule = rules.length ? matchResolve(rules, opts.hostname, port) : undefined;
    if (!rule) return base(opts, callback);
    const to = rule.addressPort ?? port;
    if (!used.has(rule.spec + opts.hostname)) {
      used.add(rule.spec + opts.hostname);
      debug?.(`connect ${hostPort(opts.hostname, port)} → ${hostPort(rule.address, to)} (--resolve)`);
    }
    const servername = opts.servername || (isIP(opts.hostname) ? '' : opts.hostname);
    return base({ ...opts, hostname: rule.address, port: String(to), servername }, callback);
  };
  const tunnelFactory = (proxy: URL) => {
    const Pool = loadPool();
    return (origin: string | URL, o: object): import('undici').Dispatcher => {
      const tunnel = (o as { connect?: unknown }).connect;
      const u = new URL(String(origin));
      // The proxy's own pool (forwarded plain-http requests) and http registries: as undici does.
      if (u.protocol !== 'https:' || u.origin === proxy.origin || typeof tunnel !== 'function') return new Pool(origin, o);
      const open = tunnel as ConnectFn;
      const tunnelled: ConnectFn = (opts, cb) => {
        const port = Number(opts.port) || 443;
        const callback = watched('https:', cb);
        let base: ConnectFn;
        try {
          base = baseFor(opts.hostname, port, 'https:');
        } catch (e) {
          callback(e as Error, null);
          return;
        }
        // Asked as plain http, undici's tunnel hands back the CONNECTed socket untouched.
        open({ ...opts, protocol: 'http:', port: String(port), host: opts.port ? opts.host : `${opts.host}:${port}` }, (err, raw) => {
          if (err || !raw) return callback(err ?? new Error('no tunnel socket'), null);
          base({ ...opts, httpSocket: raw } as ConnectOpts, callback);
        });
      };
      return new Pool(origin, { ...o, connect: tunnelled });
    };
  };
  return { connect, tunnelFactory };
}
