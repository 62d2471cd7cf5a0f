import { domainToASCII } from 'node:url';
import { FerryError } from '../errors.js';

/**
 * Proxy choice from the environment with the rules of Go's `golang.org/x/net/http/httpproxy`
 * (docker, skopeo, crane), not undici's `EnvHttpProxyAgent` (which differs on precedence,
 * https→http fallback, loopback, CIDRs and `.domain`):
 * - `HTTPS_PROXY`/`https_proxy` for https URLs only, `HTTP_PROXY`/`http_proxy` for http URLs;
 *   the upper-case name first, and the first NON-EMPTY value wins (an empty one counts as unset).
 * - A value is a URL or `host[:port]` (`http://` assumed); its userinfo is the proxy's credentials.
 * - `localhost` and loopback IPs are never proxied, whatever NO_PROXY says.
 * - `NO_PROXY` (then `no_proxy`), comma-separated: `*` (everything); `foo.com` (itself and every
 *   subdomain); `.foo.com` and `*.foo.com` (subdomains only); `ip`, `ip:port`, `[v6]:port` and CIDRs
 *   (match IP-literal hosts only, names are never resolved); `:port` limits a name or an IP to
 *   that port. Malformed entries are skipped.
 * Pure: reads only the env object it is given, loads nothing.
 */

export interface ProxyEnv {
  /** Proxy for http:// URLs, or an error to throw when one needs it (unparsable value). */
  http?: URL | FerryError;
  /** Proxy for https:// URLs. */
  https?: URL | FerryError;
  noProxy: NoProxy;
}

interface Ip {
  v: 4 | 6;
  n: bigint;
}

interface NoProxy {
  all: boolean;
  ips: Array<{ ip: Ip; port: string }>;
  cidrs: Array<{ net: Ip; bits: number }>;
  domains: Array<{ suffix: string; matchHost: boolean; port: string }>;
}

function getEnvAny(env: NodeJS.ProcessEnv, ...names: string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value) return { name, value };
  }
  return undefined;
}

/** The proxy settings in `env`, or undefined when neither HTTP(S)_PROXY is set (the fast path). */
export function proxyEnv(env: NodeJS.ProcessEnv): ProxyEnv | undefined {
  const http = getEnvAny(env, 'HTTP_PROXY', 'http_proxy');
  const https = getEnvAny(env, 'HTTPS_PROXY', 'https_proxy');
  if (!http && !https) return undefined;
  const out: ProxyEnv = { noProxy: parseNoProxy(getEnvAny(env, 'NO_PROXY', 'no_proxy')?.value ?? '') };
  if (http) out.http = parseProxyUrl(http.name, http.value);
  if (https) out.https = parseProxyUrl(https.name, https.value);
  return out;
}

/** A proxy value: a URL, or `host[:port]` / `user:pw@host:port` with `http://` assumed. */
export function parseProxyUrl(name: string, value: string): URL | FerryError {
  // `scheme://…` is taken as a URL; anything else (host:port, user:pw@host:port) gets http://.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || !url.hostname) {
    return new FerryError('E_USAGE', `${name} is not a proxy URL: ${JSON.stringify(redactProxyText(value))}`, {
      hint: `set ${name}=http://proxy.example:3128 (credentials as http://user:password@proxy.example:3128)`,
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return new FerryError('E_UNSUPPORTED', `${name}: ${url.protocol.slice(0, -1)} proxies are not supported (${describeProxy(url)})`, {
      hint: 'use an http:// or https:// proxy',
    });
  }
  return url;
}

function redactProxyText(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/)?[^/@\s]*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

/** `http://***@proxy:3128` — the proxy as it may appear in logs and errors (never credentials). */
export function describeProxy(url: URL): string {
  return `${url.protocol}//${url.username || url.password ? '***@' : ''}${url.host}`;
}

/** The proxy for a request URL, undefined for a direct connection. Throws a bad proxy value. */
export function proxyFor(cfg: ProxyEnv, url: URL): URL | undefined {
  const proxy = url.protocol === 'https:' ? cfg.https : url.protocol === 'http:' ? cfg.http : undefined;
  if (proxy === undefined) return undefined;
  if (!useProxy(cfg.noProxy, url)) return undefined;
  if (proxy instanceof FerryError) throw proxy;
  return proxy;
}

function defaultPort(url: URL): string {
  return url.port || (url.protocol === 'https:' ? '443' : '80');
}

/** Go's `useProxy`: false for localhost, loopback and NO_PROXY matches. */
export function useProxy(np: NoProxy, url: URL): boolean {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  const port = defaultPort(url);
  if (host === '' || host === 'localhost') return false;
  const ip = parseIp(host);
  if (ip && isLoopback(ip)) return false;
  if (np.all) return false;
  if (ip) {
    for (const c of np.cidrs) if (inCidr(ip, c.net, c.bits)) return false;
    for (const m of np.ips) if (ipEqual(m.ip, ip) && (m.port === '' || m.port === port)) return false;
  }
  for (const d of np.domains) {
    if ((host.endsWith(d.suffix) || (d.matchHost && host === d.suffix.slice(1))) && (d.port === '' || d.port === port)) return false;
  }
  return true;
}

/** Go's `config.init` NO_PROXY parsing. */
export function parseNoProxy(value: string): NoProxy {
  const np: NoProxy = { all: false, ips: [], cidrs: [], domains: [] };
  for (const raw of value.split(',')) {
    const p = raw.trim().toLowerCase();
    if (!p) continue;
    if (p === '*') return { all: true, ips: [], cidrs: [], domains: [] };
    const cidr = parseCidr(p);
    if (cidr) {
      np.cidrs.push(cidr);
      continue;
    }
    let [phost, pport] = splitHostPort(p) ?? [p, ''];
    if (!phost) continue;
    phost = phost.replace(/^\[(.*)\]$/, '$1');
    const ip = parseIp(phost);
    if (ip) {
      np.ips.push({ ip, port: pport });
      continue;
    }
    if (phost.startsWith('*.')) phost = phost.slice(1);
    const matchHost = !phost.startsWith('.');
    const bare = matchHost ? phost : phost.slice(1);
    if (!bare) continue;
    const ascii = domainToASCII(bare) || bare;
    np.domains.push({ suffix: `.${ascii}`, matchHost, port: pport });
  }
  return np;
}

/** Go's net.SplitHostPort, loosely: `host:port`, `[v6]:port`; undefined when there is no port. */
function splitHostPort(s: string): [string, string] | undefined {
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\]:([^:]*)$/.exec(s);
    return m ? [m[1]!, m[2]!] : undefined;
  }
  const i = s.lastIndexOf(':');
  if (i < 0 || s.indexOf(':') !== i) return undefined; // none, or a bare IPv6 address
  return [s.slice(0, i), s.slice(i + 1)];
}

// --- IP literals -------------------------------------------------------------------------------

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = (n << 8n) | BigInt(Number(p));
  }
  return n;
}

function parseIpv6(s: string): bigint | undefined {
  if (!/^[0-9a-f:.]+$/.test(s) || !s.includes(':')) return undefined;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  let body = s;
  if (v4) {
    const n = parseIpv4(v4[1]!);
    if (n === undefined) return undefined;
    tail = [Number(n >> 16n), Number(n & 0xffffn)];
    body = s.slice(0, -v4[1]!.length);
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0]!);
  const rest = halves.length === 2 ? group(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

const V4_MAPPED = 0xffffn << 32n;

/** An IPv4 or IPv6 literal; IPv4-mapped IPv6 counts as IPv4 (as Go's To4). */
export function parseIp(s: string): Ip | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { v: 4, n: v4 };
  const v6 = parseIpv6(s);
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { v: 4, n: v6 - V4_MAPPED };
  return { v: 6, n: v6 };
}

function parseCidr(s: string): { net: Ip; bits: number } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const ip = parseIp(m[1]!);
  const bits = Number(m[2]);
  if (!ip || bits > (ip.v === 4 ? 32 : 128)) return undefined;
  return { net: ip, bits };
}

function inCidr(ip: Ip, net: Ip, bits: number): boolean {
  if (ip.v !== net.v) return false;
  const width = BigInt(ip.v === 4 ? 32 : 128);
  const shift = width - BigInt(bits);
  return ip.n >> shift === net.n >> shift;
}

function ipEqual(a: Ip, b: Ip): boolean {
  return a.v === b.v && a.n === b.n;
}

function isLoopback(ip: Ip): boolean {
  return ip.v === 4 ? ip.n >> 24n === 127n : ip.n === 1n;
}
