/**
 * WWW-Authenticate parsing (RFC 7235 §4.1 / RFC 6750 §3) for registry 401 responses.
 *
 * Contract:
 * - Accepts one header value, several header lines (string[]), or undefined (→ []).
 * - A line may carry several challenges separated by commas (`Basic realm="x", Bearer realm="y"`),
 *   as regclient's `parseAuthHeader` handles; distribution's `authchallenge.go` only handles one per
 *   line, so this is a superset.
 * - Scheme and parameter names are lowercased; values are kept verbatim (so a `scope` holding
 *   several space-separated scopes, as Harbor sends, survives intact).
 * - Values may be quoted strings with backslash escapes or bare tokens (`service=gcr.io`), like
 *   distribution's `expectTokenOrQuoted`. Bare values run to the next comma or whitespace.
 * - token68 credentials (`Negotiate abc==`) are skipped: registries never use them.
 * - Never throws on malformed input; it returns what it could make sense of.
 */
import { FerryError } from '../errors.js';

export interface Challenge {
  /** Lowercased: 'bearer' | 'basic' | … */
  scheme: string;
  /** Lowercased keys; values verbatim (unescaped). */
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const WS = /[ \t\r\n]/;

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipWs(): void {
    while (!this.done && WS.test(this.peek())) this.pos++;
  }
  skipWsAndCommas(): void {
    while (!this.done && (WS.test(this.peek()) || this.peek() === ',')) this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TOKEN_CHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted string (opening quote at pos) with backslash escapes; tolerates a missing end quote. */
  quoted(): string {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const c = this.s[this.pos++]!;
      if (c === '"') return out;
      if (c === '\\' && !this.done) out += this.s[this.pos++];
      else out += c;
    }
    return out;
  }
  /** A bare value: everything up to the next comma or whitespace. */
  bare(): string {
    const start = this.pos;
    while (!this.done && this.peek() !== ',' && !WS.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }
}

/** True if at pos there is `token *WS "="` (an auth-param), leaving pos unchanged. */
function atParam(sc: Scanner): boolean {
  const save = sc.pos;
  const name = sc.token();
  sc.skipWs();
  const isParam = name !== '' && sc.peek() === '=';
  sc.pos = save;
  return isParam;
}

/** True if at pos there is a token68 (`abc==`) running to a comma or the end, leaving pos unchanged. */
function atToken68(sc: Scanner): boolean {
  const m = /^[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)/.exec(sc.s.slice(sc.pos));
  return m !== null;
}

function parseLine(line: string, out: Challenge[]): void {
  const sc = new Scanner(line);
  for (;;) {
    sc.skipWsAndCommas();
    if (sc.done) return;
    const scheme = sc.token();
    if (scheme === '') {
      // Garbage where a scheme should be: skip to the next comma and try again.
      while (!sc.done && sc.peek() !== ',') sc.pos++;
      continue;
    }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    sc.skipWs();
    // token68 form: skip it (not used by registries).
    if (!sc.done && sc.peek() !== ',' && (atToken68(sc) || !atParam(sc))) {
      sc.bare();
      continue;
    }
    // auth-param list; a comma followed by something that is not `name=` starts a new challenge.
    for (;;) {
      sc.skipWs();
      if (!atParam(sc)) break;
      const name = sc.token().toLowerCase();
      sc.skipWs();
      sc.pos++; // '='
      sc.skipWs();
      const value = sc.peek() === '"' ? sc.quoted() : sc.bare();
      if (!(name in ch.params)) ch.params[name] = value; // RFC 7235: names must not repeat; keep the first
      sc.skipWs();
      if (sc.peek() !== ',') break;
      const save = sc.pos;
      sc.skipWsAndCommas();
      if (!atParam(sc)) {
        sc.pos = save;
        break;
      }
    }
  }
}

/** Parses every challenge in one or more WWW-Authenticate header values, in order. */
export function parseWwwAuthenticate(headers: string | string[] | undefined): Challenge[] {
  if (headers === undefined) return [];
  const lines = Array.isArray(headers) ? headers : [headers];
  const out: Challenge[] = [];
  for (const line of lines) if (typeof line === 'string') parseLine(line, out);
  return out;
}

/**
 * The challenge to answer: the first Bearer that names a realm, else the first Basic, else a
 * realm-less Bearer (which the caller will fail on with a clear message). Docker/distribution and
 * containers/image try challenges in server order; go-containerregistry picks the first
 * basic/bearer. Preferring Bearer matters when Quay-style lines offer `Basic …, Bearer …`.
 */
export function pickChallenge(cs: Challenge[]): Challenge | undefined {
  return (
    cs.find((c) => c.scheme === 'bearer' && (c.params['realm'] ?? '') !== '') ??
    cs.find((c) => c.scheme === 'basic') ??
    cs.find((c) => c.scheme === 'bearer')
  );
}

/** The scopes a challenge asks for (its `scope` param split on whitespace); [] when absent. */
export function challengeScopes(c: Challenge): string[] {
  return (c.params['scope'] ?? '').split(/\s+/).filter((s) => s !== '');
}

/**
 * Resolves a possibly relative realm against the URL of the request that was challenged
 * (regclient `UpdateRequest`). Only http(s) realms are accepted; anything else is a registry
 * misbehaving and yields E_REGISTRY. (Whether plain http is acceptable is the caller's policy.)
 */
export function resolveRealm(realm: string, requestUrl: string): string {
  let u: URL;
  try {
    u = new URL(realm, requestUrl);
  } catch (cause) {
    throw new FerryError('E_REGISTRY', `registry sent an unusable token realm ${JSON.stringify(realm)}`, { cause });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new FerryError('E_REGISTRY', `registry sent a token realm with unsupported scheme ${u.protocol} (${JSON.stringify(realm)})`);
  }
  return u.toString();
}
