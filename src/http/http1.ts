/**
 * The HTTP/1.1 text that bulk-get.ts writes and reads, as pure functions: which requests it can
 * write exactly, a response head's status and headers, and how its body is framed (RFC 9112 §6.3).
 * Failures are errors with llhttp's codes (HPE_*), as undici reports them.
 */

/** An error with one of undici's (or llhttp's) codes, as network-errors.ts expects them. */
export function netError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\r\n\0]|[^\u0000-\u00ff]/;
/** Headers bulk-get.ts writes itself: a request that sets them goes to undici. */
const OWN = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'expect', 'upgrade', 'keep-alive']);

/** Whether bulkGet carries this GET exactly as undici would (createSend checks proxy and --resolve). */
export function bulkEligible(url: URL, headers: Record<string, string>): boolean {
  if (url.protocol !== 'http:' || url.username || url.password) return false;
  if (/[^\x21-\x7e]/.test(url.pathname + url.search)) return false;
  for (const [k, v] of Object.entries(headers)) {
    if (!TOKEN.test(k) || OWN.has(k.toLowerCase()) || typeof v !== 'string' || BAD_VALUE.test(v)) return false;
  }
  return true;
}

export type Headers = Record<string, string | string[]>;

/** A response head (without its final CRLF CRLF): status and headers (lower-case names; a header
 * sent more than once is an array, as undici gives it), or the parse error. */
export function parseResponseHead(text: string): { status: number; headers: Headers } | Error {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(lines[0]!);
  if (!m) return netError(`invalid HTTP status line ${JSON.stringify(lines[0]!.slice(0, 40))}`, 'HPE_INVALID_CONSTANT');
  const headers: Headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const name = i > 0 ? l.slice(0, i) : '';
    if (!TOKEN.test(name)) return netError('invalid header line', 'HPE_INVALID_HEADER_TOKEN');
    const k = name.toLowerCase();
    const v = l.slice(i + 1).trim();
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return { status: Number(m[1]), headers };
}

export type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/** How the body of a (final, non-1xx) response to a GET is delimited. */
export function framingOf(status: number, h: Headers): Framing | Error {
  const te = h['transfer-encoding'];
  const cl = h['content-length'];
  if (status === 204 || status === 304) return { kind: 'none' };
  if (te !== undefined) return /(?:^|,)\s*chunked\s*$/i.test(Array.isArray(te) ? te.join(',') : te) ? { kind: 'chunked' } : { kind: 'close' };
  if (cl === undefined) return { kind: 'close' };
  const values = (Array.isArray(cl) ? cl : [cl]).flatMap((v) => v.split(',').map((s) => s.trim()));
  if (!values.every((v) => /^\d{1,15}$/.test(v)) || new Set(values).size !== 1) {
    return netError(`invalid Content-Length ${JSON.stringify(String(cl))}`, 'HPE_INVALID_CONTENT_LENGTH');
  }
  return { kind: 'length', left: Number(values[0]) };
}
