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
  ...['TLSV13_ALERT_CERTIFICATE_REQUIRED', 'SSLV3_ALERT_BAD_CERTIFICATE', 'TLSV1_ALERT_UNKNOWN_CA', 'SSLV3_ALERT_CERTIFICATE_UNKNOWN',
    'SSLV3_ALERT_CERTIFICATE_EXPIRED', 'SSLV3_ALERT_CERTIFICATE_REVOKED', 'SSLV3_ALERT_UNSUPPORTED_CERTIFICATE', 'TLSV1_ALERT_ACCESS_DENIED',
    'SSLV3_ALERT_HANDSHAKE_FAILURE', 'TLSV1_ALERT_DECRYPT_ERROR'].map((a) => `ERR_SSL_${a}`),
]);

const UNKNOWN_AUTHORITY = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED',
]);

/** The server's alerts that mean it did not accept (or did not get) a client certificate. */
const CLIENT_CERT_ALERTS = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED', 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR',
]);

/** What mapNetworkError knows about the connection beyond the error. */
export interface TlsContext {
  /** The client certificate file the connection presented, if any (several: each was offered). */
  clientCert?: string | readonly string[];
}

/** `host` for 443, else `host:port`: the certs.d directory name for the URL's host. */
function certsDName(url: URL): string {
  return url.port && url.port !== '443' ? url.host : url.hostname;
}

/**
 * A certificate failure in words (unknown authority, expired, not yet valid, wrong name, client
 * certificate required or rejected) and the flag or directory that would fix it. Pure: the
 * table test/unit/http/tls-errors.test.ts checks.
 */
export function describeTlsFailure(code: string, e: unknown, url: URL, ctx: TlsContext = {}): { reason: string; hint: string } {
  const dir = `~/.config/containers/certs.d/${certsDName(url)}/`;
  const trust = '--tls-verify=false for a registry you trust';
  const clientHint = `pass --client-cert FILE --client-key FILE, or put client.cert + client.key in ${dir}`;
  if (UNKNOWN_AUTHORITY.has(code)) {
    const why = code === 'DEPTH_ZERO_SELF_SIGNED_CERT' ? 'self-signed certificate' : code === 'SELF_SIGNED_CERT_IN_CHAIN' ? 'self-signed certificate in the chain' : 'unable to verify the first certificate';
    return { reason: `certificate signed by unknown authority (${why})`, hint: `put the CA in ${dir}ca.crt or pass --ca-cert FILE, or ${trust}` };
  }
  const cert = (e as { cert?: { valid_to?: string; valid_from?: string; subjectaltname?: string } } | undefined)?.cert;
  if (code === 'CERT_HAS_EXPIRED') {
    return { reason: `certificate has expired${cert?.valid_to ? ` (valid until ${cert.valid_to})` : ''}`, hint: `renew the registry's certificate or check this machine's clock, or ${trust}` };
  }
  if (code === 'CERT_NOT_YET_VALID') {
    return { reason: `certificate is not yet valid${cert?.valid_from ? ` (valid from ${cert.valid_from})` : ''}`, hint: `check this machine's clock (or the registry's certificate), or ${trust}` };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const reason = String((e as { reason?: unknown })?.reason ?? '');
    const names = cert?.subjectaltname ?? /altnames: (.*)$/.exec(reason)?.[1] ?? (/cert's CN: (.*)$/.exec(reason)?.[1] ? `CN ${/cert's CN: (.*)$/.exec(reason)![1]}` : undefined);
    return {
      reason: `certificate is for a different name${names ? ` (it names ${names})` : ''}, not ${url.hostname}`,
      hint: `use a name the certificate has (with --resolve NAME:PORT:ADDRESS if DNS does not know it), or ${trust}`,
    };
  }
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || (!ctx.clientCert && (CLIENT_CERT_ALERTS.has(code) || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE'))) {
    return { reason: 'the registry requires a client certificate', hint: clientHint };
  }
  if (CLIENT_CERT_ALERTS.has(code) || code === 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE') {
    const certs = typeof ctx.clientCert === 'string' ? [ctx.clientCert] : [...(ctx.clientCert ?? [])];
    return {
      reason: `${certs.length > 1 ? `the registry rejected each client certificate offered (${certs.join(', ')})` : `the registry rejected the client certificate ${certs[0]}`} (${alertWords(code)})`,
      hint: `use a client certificate issued by a CA the registry trusts: ${clientHint}`,
    };
  }
  return { reason: code, hint: `put the CA in ${dir}ca.crt or pass --ca-cert FILE, or ${trust}` };
}

function alertWords(code: string): string {
  return code.replace(/^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/, '').toLowerCase().replace(/_/g, ' ');
}

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
export function mapNetworkError(e: unknown, url: URL, proxy?: URL, ctx: TlsContext = {}): unknown {
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
    const { reason, hint } = describeTlsFailure(code, e, url, ctx);
    // The server refusing our (missing) client certificate is not a verification failure on our side.
    const lead = reason.startsWith('the registry ') ? `TLS handshake with ${where} failed` : `TLS verification failed for ${where}`;
    return new FerryError('E_TLS', `${lead}: ${reason}${reason === code ? '' : ` (${code})`}`, { cause: e, url: redactUrl(url), hint });
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
