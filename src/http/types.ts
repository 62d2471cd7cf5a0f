import type { Readable } from 'node:stream';

/**
 * A request body. Byte arrays are replayable; a factory is called once per attempt (retry,
 * re-auth, redirect) and must return a fresh stream each time: ferry never buffers a blob to
 * make a request retryable.
 */
export type RequestBody = Uint8Array | string | (() => Readable | Promise<Readable>);

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /** Token scopes this request needs, e.g. `repository:library/ubuntu:pull` (auth middleware). */
  scopes?: string[];
  /** Follow 3xx redirects (default true for GET/HEAD). */
  followRedirects?: boolean;
  /** Per-request retry override: false disables the retry middleware for this request. */
  retry?: boolean;
  /**
   * A small answer (manifest, token, tag page): the retry layer reads a 2xx body whole, at most
   * `max` bytes, into `HttpResponse.bytes`, and a network failure while reading it re-issues the
   * request like a failure before the headers. `what` names it in errors.
   */
  small?: { max: number; what: string };
  /** A blob body (RegistryClient.getBlob): a GET that may take ferry's own body path
   * (bulk-get.ts), whose body can feed a synchronous sink (util/verified-write.ts). */
  bulk?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Final URL after redirects. */
  url: URL;
  /** The proxy the final hop went through (`http://***@host:port`, never credentials); unset = direct. */
  proxy?: string;
  /** The response body stream; callers must consume it or call dump(). */
  body: Readable;
  /** First value of a header (lowercase name). */
  header(name: string): string | undefined;
  /** Discards the body so the connection can be reused. */
  dump(): Promise<void>;
  /** The whole body of a 2xx answer to a request with `small` (then `body` is already consumed). */
  bytes?: Buffer;
}

export type Send = (req: HttpRequest) => Promise<HttpResponse>;
export type Middleware = (next: Send) => Send;

/** Logger for --debug output: receives already-redacted lines. */
export type DebugLog = (line: string) => void;

/** Per-registry transport settings: data, not behaviour (architecture.md "host settings"). */
export interface HostSettings {
  /** 'https' (default), 'http' (--plain-http), or 'auto' (loopback: https, then http, as docker). */
  scheme: 'https' | 'http' | 'auto';
  tlsVerify: boolean;
  /** "insecure" as podman/docker mean it (registries.conf, daemon.json): https without
   * verification (tlsVerify false), then plain http (scheme 'auto'). Set by the session. */
  insecure?: boolean;
}

export function headerValue(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
