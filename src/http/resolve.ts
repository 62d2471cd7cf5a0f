/**
 * `--resolve HOST:PORT:ADDRESS[:ADDRESS_PORT]` (curl's and oras's flag): connections to HOST:PORT
 * go to ADDRESS (and ADDRESS_PORT, else PORT) instead of what DNS says. Only the TCP destination
 * changes: TLS SNI, certificate verification and the Host header stay HOST. Pure; the connector
 * that applies the rules lives in send.ts.
 *
 * HOST: a DNS name, a bracketed IPv6 literal (`[::1]`), an IPv4 literal, or `*` (any host on
 * PORT; an exact HOST rule wins). ADDRESS: an IPv4 literal, a bracketed IPv6 literal or a name.
 */
import { isIP } from 'node:net';
import { FerryError } from '../errors.js';

export interface ResolveRule {
  /** Lower-cased host as it appears in URLs, IPv6 without brackets; `*` for any host. */
  host: string;
  port: number;
  /** Where to connect: IPv4/IPv6 literal (no brackets) or a name. */
  address: string;
  /** Port to connect to; the request's port when the value gave none. */
  addressPort?: number;
  /** The value as given (for --debug and messages). */
  spec: string;
}

const FORM = 'HOST:PORT:ADDRESS[:ADDRESS_PORT], e.g. registry-1.docker.io:443:127.0.0.1 or ghcr.io:443:[::1]:8443';
const NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

function bad(value: string, why: string): FerryError {
  return new FerryError('E_USAGE', `--resolve ${JSON.stringify(value)}: ${why}; expected ${FORM}`);
}

/** Splits one leading `[v6]` or colon-free field off `s`; returns [field, rest-after-colon | undefined]. */
function field(s: string): [string, string | undefined] | undefined {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) return undefined;
    const inner = s.slice(0, end + 1);
    const rest = s.slice(end + 1);
    if (rest === '') return [inner, undefined];
    if (!rest.startsWith(':')) return undefined;
    return [inner, rest.slice(1)];
  }
  const c = s.indexOf(':');
  return c < 0 ? [s, undefined] : [s.slice(0, c), s.slice(c + 1)];
}

function port(value: string, s: string, what: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw bad(value, `${what} ${JSON.stringify(s)} is not a port number (1-65535)`);
  return Number(s);
}

/** A host or address field: `[v6]` → v6, IPv4, or a DNS name. */
function hostField(value: string, s: string, what: string, allowStar: boolean): string {
  if (s === '') throw bad(value, `the ${what} is empty`);
  if (allowStar && s === '*') return '*';
  if (s.startsWith('[')) {
    const inner = s.slice(1, -1);
    if (isIP(inner) !== 6) throw bad(value, `${what} ${s} is not an IPv6 address`);
    return inner.toLowerCase();
  }
  if (isIP(s) === 4 || NAME.test(s)) return s.toLowerCase();
  throw bad(value, `${what} ${JSON.stringify(s)} is not a host name or IP address (IPv6 goes in brackets)`);
}

/** Parses one --resolve value. Throws E_USAGE (exit 2) naming the value and the expected form. */
export function parseResolve(value: string): ResolveRule {
  const v = value.trim();
  const f1 = field(v);
  if (!f1 || f1[1] === undefined) throw bad(value, 'HOST, PORT and ADDRESS are needed');
  const host = hostField(value, f1[0], 'host', true);
  const c = f1[1].indexOf(':');
  if (c < 0) throw bad(value, 'no ADDRESS after the port');
  const p = port(value, f1[1].slice(0, c), 'port');
  const f3 = field(f1[1].slice(c + 1));
  if (!f3) throw bad(value, 'unterminated [IPv6] address');
  const address = hostField(value, f3[0], 'address', false);
  if (f3[1] !== undefined && f3[1].includes(':')) throw bad(value, `too many fields (an IPv6 address goes in brackets)`);
  const rule: ResolveRule = { host, port: p, address, spec: v };
  if (f3[1] !== undefined) rule.addressPort = port(value, f3[1], 'address port');
  return rule;
}

/** The rule for a connection to hostname:port (hostname as in a URL; brackets allowed), if any:
 * an exact host wins over `*`; among equals, the last given wins (curl: a later entry replaces). */
export function matchResolve(rules: readonly ResolveRule[], hostname: string, port: number): ResolveRule | undefined {
  const h = hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  let star: ResolveRule | undefined;
  let exact: ResolveRule | undefined;
  for (const r of rules) {
    if (r.port !== port) continue;
    if (r.host === '*') star = r;
    else if (r.host.replace(/\.$/, '') === h) exact = r;
  }
  return exact ?? star;
}

/** `host:port` / `[v6]:port` for messages. */
export function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
