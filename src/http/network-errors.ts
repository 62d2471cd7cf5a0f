import { STATUS_CODES } from 'node:http';
import type { Readable } from 'node:stream';
import { FerryError, isAbortError, isFerryError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import { describeProxy } from './proxy.js';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_NOT_YET_VALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO', 'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'ERR_SSL_HTTP_REQUEST',
]);

/** True when the server answered TLS with plain HTTP (the classic "http vs https" mistake). */
export function isPlainHttpAnswer(e: unknown): boolean {
  const code = errCode(e);
  const msg = String((e as Error)?.message ?? '');
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || /wrong version number|packet length too long|http request/i.test(msg);
}

export function errCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 4 && cur; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string' && c !== 'UND_ERR_SOCKET' && c !== 'UND_ERR_CONNECT') return c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return (e as { code?: string } | null)?.code;
}

/** Network-level failures that are worth retrying (the request may not have reached the server or
 * the connection died mid-way). */
export function isRetryableNetworkError(e: unknown): boolean {
  if (isAbortError(e)) return false;
  const code = (e as { code?: string }).code;
  if (code === 'E_TLS') return false;
  const inner = code === 'E_NETWORK' ? (e as { cause?: unknown }).cause : e;
  const c = errCode(inner);
  // ECONNREFUSED is not retried: a registry that is down should fail fast, not after backoff.
  return c !== undefined && [
    'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
    'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
    'UND_ERR_CLOSED', 'ECONNABORTED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE',
  ].includes(c);
}

/** The status a proxy refused with: undici reports a CONNECT answer other than 200, and a 407 to
 * a forwarded request, as errors carrying only the number in their message. */
function proxyRefusal(e: unknown): number | undefined {
  const msg = String((e as Error)?.message ?? '');
  // undici 7: "Proxy response (403) !== 200 when HTTP Tunneling", "Proxy Authentication Required (407)"
  const m = /\bproxy\b.*\((\d{3})\)/i.exec(msg);
  return m ? Number(m[1]) : undefined;
}

/** Maps a thrown transport error to a FerryError (E_TLS / E_NETWORK), naming the host, and the
 * proxy when the request went through one (`proxy`: credentials are never shown). */
export function mapNetworkError(e: unknown, url: URL, proxy?: URL): unknown {
  if ((e as { name?: string }).name === 'FerryError') return e;
  if (proxy) {
    const mapped = mapProxyError(e, url, proxy);
    if (mapped) return mapped;
  }
  if (isAbortError(e)) return e;
  const code = errCode(e);
  const where = `${url.protocol}//${url.host}${proxy ? ` via proxy ${describeProxy(proxy)}` : ''}`;
  if (code && TLS_CODES.has(code)) {
    if (isPlainHttpAnswer(e)) {
      return new FerryError('E_TLS', `${url.host} answered HTTPS with plain HTTP`, {
        cause: e, url: redactUrl(url), hint: 'the registry speaks plain http: pass --plain-http',
      });
    }
    return new FerryError('E_TLS', `TLS verification failed for ${where}: ${code}`, {
      cause: e, url: redactUrl(url),
      hint: 'trust its CA with NODE_EXTRA_CA_CERTS=/path/ca.pem, or pass --tls-verify=false for a registry you trust',
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new FerryError('E_NETWORK', `cannot resolve host ${url.hostname}`, { cause: e, url: redactUrl(url), hint: 'check the registry name and your DNS/proxy settings' });
  }
  if (code === 'ECONNREFUSED') {
    return new FerryError('E_NETWORK', `connection refused by ${where}`, { cause: e, url: redactUrl(url), hint: 'is the registry running, and is the port right?' });
  }
  const msg = (e as Error)?.message ?? String(e);
  return new FerryError('E_NETWORK', `network error talking to ${where}: ${code ?? msg}`, { cause: e, url: redactUrl(url) });
}

/** A proxy's refusal (its status) of a request to `url`, as one line with a hint. */
export function proxyRefused(status: number, url: URL, proxy: URL, cause?: unknown): FerryError {
  const p = describeProxy(proxy);
  const variable = url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
  const target = `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  const reason = STATUS_CODES[status] ?? 'unexpected answer';
  // 401: what some proxies (tinyproxy) answer to wrong credentials.
  const hint = status === 407 || status === 401
    ? `the proxy wants credentials: put them in ${variable} (http://user:password@proxy:port), or list the registry in NO_PROXY if it is reachable directly`
    : status === 403
      ? `the proxy does not allow ${target}: ask its administrator, or list the registry in NO_PROXY if it is reachable directly`
      : `the proxy could not reach ${target}; check ${variable} and NO_PROXY`;
  const verb = [401, 403, 407].includes(status) ? 'refused the connection to' : 'could not connect to';
  return new FerryError('E_NETWORK', `proxy ${p} ${verb} ${target}: ${status} ${reason}`, { ...(cause !== undefined ? { cause } : {}), url: redactUrl(url), hint });
}

/**
 * A forwarded (plain-http) request comes back with the proxy's own refusal as an ordinary
 * response. A 403 that is not a registry's JSON error (no JSON, no Docker-Distribution-Api-Version)
 * is taken as the proxy's; https requests never need this (a refused CONNECT is an error).
 */
export function isForwardedProxyRefusal(status: number, headers: Record<string, string | string[] | undefined>): boolean {
  if (status !== 403) return false;
  const type = String(headers['content-type'] ?? '');
  return !/json/i.test(type) && headers['docker-distribution-api-version'] === undefined;
}

/** Failures that are the proxy's: it refused (CONNECT ≠ 200, 407), or cannot be reached. Once a
 * proxy is used, every TCP-level failure is about the proxy: ferry never connects to the registry. */
function mapProxyError(e: unknown, url: URL, proxy: URL): FerryError | undefined {
  const p = describeProxy(proxy);
  const variable = url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
  const target = `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
  const status = proxyRefusal(e);
  if (status !== undefined) return proxyRefused(status, url, proxy, e);
  const code = errCode(e);
  const hint = `check ${variable} (and NO_PROXY for registries that need no proxy)`;
  if ((e as { code?: unknown })?.code === 'UND_ERR_PRX_TLS') {
    return new FerryError('E_TLS', `TLS verification failed for proxy ${p} (${variable}): ${errCode((e as { cause?: unknown }).cause) ?? 'certificate error'}`, {
      cause: e, url: redactUrl(url), hint: 'trust its CA with NODE_EXTRA_CA_CERTS=/path/ca.pem, or check the proxy name',
    });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new FerryError('E_NETWORK', `cannot resolve proxy host ${proxy.hostname} (${variable}, for ${target})`, { cause: e, url: redactUrl(url), hint });
  }
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect timeout' : code;
    return new FerryError('E_NETWORK', `cannot connect to proxy ${p} (${variable}, for ${target}): ${what}`, { cause: e, url: redactUrl(url), hint });
  }
  return undefined;
}

/**
 * A failure while reading a response body, after the headers arrived (undici's SocketError "other
 * side closed", ECONNRESET, UND_ERR_BODY_TIMEOUT, a Content-Length the body fell short of…) →
 * E_NETWORK naming what was read and from where (redacted). Aborts and FerryErrors (size caps)
 * pass through. The original error stays the `cause`, so isRetryableNetworkError still sees it.
 */
export function bodyReadError(e: unknown, url: URL, what?: string): unknown {
  if (isAbortError(e) || isFerryError(e)) return e;
  const code = errCode(e);
  const msg = (e as Error)?.message ?? String(e);
  const reason = code && !msg.includes(code) ? `${msg} (${code})` : msg;
  const subject = what ?? `the response of ${url.protocol}//${url.host}${url.pathname}`;
  return new FerryError('E_NETWORK', `network error reading ${subject} from ${url.protocol}//${url.host}: ${reason}`, {
    cause: e, url: redactUrl(url), hint: 'the connection broke mid-answer; check the network (or proxy) between ferry and the registry',
  });
}

/**
 * Makes every error `body` is destroyed with a FerryError (bodyReadError), so no consumer of a
 * response body (blob streams, error bodies, inspect's config read) can surface undici's raw
 * errors as "unexpected error". Hooks the stream's own `_destroy` (the Readable implementer
 * hook every destroy(err) goes through): no extra stream, no per-chunk cost on blob downloads.
 */
export function mapBodyErrors(body: Readable, url: URL, what?: string): Readable {
  const inner = body._destroy.bind(body);
  body._destroy = (err, cb) => inner(err, (e?: Error | null) => cb(e ? (bodyReadError(e, url, what) as Error) : e));
  return body;
}
