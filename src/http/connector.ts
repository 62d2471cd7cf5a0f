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
import { errCode } from './network-errors.js';
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

type ConnectCb = Parameters<ConnectFn>[1];
/** Opens the raw socket a TLS connection goes over (a CONNECT tunnel); undefined = TCP directly. */
type Open = ((cb: ConnectCb) => void) | undefined;
type HostConnect = (opts: ConnectOpts, open: Open, cb: ConnectCb) => void;

function viaOpen(fn: ConnectFn, opts: ConnectOpts, open: Open, cb: ConnectCb): void {
  if (!open) return void fn(opts, cb);
  open((err, raw) => {
    if (err || !raw) return cb(err ?? new Error('no tunnel socket'), null);
    fn({ ...opts, httpSocket: raw } as ConnectOpts, cb);
  });
}

/** The alerts by which a server refuses the client certificate offered: try the next pair. */
const CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
]);

/** The client pair that worked, per host (certs.d key), shared by both TLS policies' connectors. */
const choices = new WeakMap<CertsD, Map<string, number>>();
function choicesOf(tls: CertsD): Map<string, number> {
  let m = choices.get(tls);
  if (!m) choices.set(tls, (m = new Map()));
  return m;
}

/**
 * For error messages: the client certificate(s) a connection to `key` offers — the one accepted
 * earlier, else every pair in order (several: each was offered), else none.
 */
export function offeredClientCerts(tls: CertsD, key: string): string | string[] | undefined {
  const t = tls.forHost(key);
  if (!t?.pairs.length) return undefined;
  const known = choices.get(tls)?.get(key);
  if (known !== undefined || t.pairs.length === 1) return t.pairs[known ?? 0]!.certFile;
  return t.pairs.map((p) => p.certFile);
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
  const perHost = new Map<string, HostConnect>();
  const chosen = tls ? choicesOf(tls) : new Map<string, number>();
  /** The connect for one destination: its TLS settings, and with several client pairs the choice. */
  const hostFor = (hostname: string, port: number, protocol: string): HostConnect => {
    if (!tls || protocol !== 'https:') return direct(plain);
    const key = certsDKey(hostname, port);
    let c = perHost.get(key);
    if (!c) {
      const t = tls.forHost(key);
      if (t) debug?.(`tls ${key}: ${[...t.caFiles.map((f) => `CA ${f}`), ...t.pairs.map((p) => `client certificate ${p.certFile}`)].join(', ')}`);
      c = !t ? direct(plain) : t.pairs.length < 2 ? direct(build({ rejectUnauthorized, ...tlsConnectOptions(t, env) })) : offerPairs(key, t);
      perHost.set(key, c);
    }
    return c;
  };
  const direct = (fn: ConnectFn): HostConnect => (opts, open, cb) => viaOpen(fn, opts, open, cb);
  /**
   * Several client pairs (certs.d has every `*.cert`/`*.key`): node has no callback to pick one by
   * the server's CertificateRequest, as Go's containers/image does, so they are offered in order,
   * each on its own connection, until one is accepted. Until then the handshake is capped at TLS
   * 1.2, where the server's verdict on the certificate is part of the handshake (in TLS 1.3 it
   * comes after the client is done, as an alert on a connection undici already uses). The pair
   * accepted is remembered per host for the rest of the process and then offered alone, with TLS
   * 1.3. A server that will not speak TLS 1.2 gets the first pair, as before.
   */
  const offerPairs = (key: string, t: HostTls): HostConnect => {
    const settled = t.pairs.map((p) => build({ rejectUnauthorized, ...tlsConnectOptions({ ...t, cert: p.cert, key: p.key }, env) }));
    const probes = t.pairs.map((p) => build({ rejectUnauthorized, maxVersion: 'TLSv1.2', ...tlsConnectOptions({ ...t, cert: p.cert, key: p.key }, env) }));
    return (opts, open, cb) => {
      const known = chosen.get(key);
      if (known !== undefined) return viaOpen(settled[known]!, opts, open, cb);
      const offer = (i: number): void => viaOpen(probes[i]!, opts, open, (err, socket) => {
        if (!err) {
          if (!chosen.has(key)) debug?.(`tls ${key}: client certificate ${t.pairs[i]!.certFile} accepted`);
          chosen.set(key, i);
          return cb(null, socket);
        }
        const code = errCode(err) ?? '';
        if (CERT_REFUSED.has(code) && i + 1 < t.pairs.length) {
          debug?.(`tls ${key}: client certificate ${t.pairs[i]!.certFile} refused (${code}); offering ${t.pairs[i + 1]!.certFile}`);
          return offer(i + 1);
        }
        if (code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL') {
          debug?.(`tls ${key}: no TLS 1.2 to choose a client certificate by; offering ${t.pairs[0]!.certFile}`);
          chosen.set(key, 0);
          return viaOpen(settled[0]!, opts, open, cb);
        }
        cb(err, null);
      });
      offer(0);
    };
  };
  const watched = (protocol: string, cb: ConnectCb): ConnectCb => protocol === 'https:' ? (err, socket) => {
    if (socket) watchAlerts(socket);
    cb(err as Error, socket as never);
  } : cb;
  const connect: ConnectFn = (opts, cb) => {
    const port = Number(opts.port) || (opts.protocol === 'https:' ? 443 : 80);
    const callback = watched(opts.protocol, cb);
    let base: HostConnect;
    try {
      base = hostFor(opts.hostname, port, opts.protocol);
    } catch (e) {
      callback(e as Error, null);
      return;
    }
    const rule = rules.length ? matchResolve(rules, opts.hostname, port) : undefined;
    if (!rule) return base(opts, undefined, callback);
    const to = rule.addressPort ?? port;
    if (!used.has(rule.spec + opts.hostname)) {
      used.add(rule.spec + opts.hostname);
      debug?.(`connect ${hostPort(opts.hostname, port)} → ${hostPort(rule.address, to)} (--resolve)`);
    }
    const servername = opts.servername || (isIP(opts.hostname) ? '' : opts.hostname);
    return base({ ...opts, hostname: rule.address, port: String(to), servername }, undefined, callback);
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
        let base: HostConnect;
        try {
          base = hostFor(opts.hostname, port, 'https:');
        } catch (e) {
          callback(e as Error, null);
          return;
        }
        // Asked as plain http, undici's tunnel hands back the CONNECTed socket untouched (a
        // fresh tunnel for each client pair offered).
        base(opts, (done) => open({ ...opts, protocol: 'http:', port: String(port), host: opts.port ? opts.host : `${opts.host}:${port}` }, done), callback);
      };
      return new Pool(origin, { ...o, connect: tunnelled });
    };
  };
  return { connect, tunnelFactory };
}
