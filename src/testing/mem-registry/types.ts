/** Public types of the in-process test registry (see ../mem-registry.ts). */

export type MemAuthMode = 'open' | 'basic' | 'token';

/**
 * A rule matched against each incoming request before normal handling. The first rule that
 * matches (and still has `times` left) wins; `times` counts down and defaults to Infinity.
 *
 * `match.method` is compared case-insensitively. `match.path` is tested against the request
 * path without its query string first, then against path + `?` + query, so both anchored path
 * patterns (`/\/blobs\/sha256:[0-9a-f]+$/`) and query-aware ones (`/[?&]digest=/`) work.
 */
export interface Fault {
  match: { method?: string; path?: RegExp };
  times?: number;
  action:
    | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
    | { kind: 'reset' }
    | { kind: 'truncate'; afterBytes: number }
    | { kind: 'corrupt' }
    | { kind: 'delay'; ms: number }
    /**
     * `to` may contain `{path}` (original path + query) and `{digest}` (the last digest in the
     * path). A `to` that is a bare origin (`http://h:p` or `http://h:p/`) gets the original path
     * and query appended. Status defaults to 307.
     */
    | { kind: 'redirect'; to: string; status?: number };
}

export interface MemUser {
  password: string;
  /** Repository globs this user may pull (`*` matches any run of characters, `/` included). */
  pull?: string[];
  /** Repository globs this user may push (and delete) to; push implies pull. */
  push?: string[];
}

export interface MemRegistryOptions {
  auth?: MemAuthMode;
  users?: Record<string, MemUser>;
  /** Globs anonymous users may pull (token mode; also honoured in basic mode). */
  anonymousPull?: string[];
  tls?: { cert: string; key: string };
  host?: '127.0.0.1' | '::1';
  chunkMinLength?: number;
  maxManifestBytes?: number;
  tagPageSize?: number;
  noHeadDigest?: boolean;
  deleteDisabled?: boolean;
  /**
   * Docker Hub's pull limit: every manifest GET/HEAD answer carries `ratelimit-limit`,
   * `ratelimit-remaining` (`;w=` when `windowSeconds` is set) and `docker-ratelimit-source`
   * (when `source` is set); a successful GET spends one (HEAD is free), and a GET with nothing
   * left is 429 TOOMANYREQUESTS. The object is live: tests may set `remaining` between requests.
   */
  rateLimit?: MemRateLimit;
}

export interface MemRateLimit {
  limit: number;
  remaining: number;
  windowSeconds?: number;
  source?: string;
  /** Extra headers on the 429 (e.g. `Retry-After`). */
  exhaustedHeaders?: Record<string, string>;
}

export interface MemRequestRecord {
  method: string;
  /** Path without query string. */
  path: string;
  /** Query string without the leading `?` ('' when none). */
  query: string;
  hasAuth: boolean;
  authScheme?: string;
  /** 0 while in flight and for `reset` faults. */
  status: number;
  bytesIn: number;
  bytesOut: number;
}

export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface MemRegistry {
  host: string;
  url: string;
  tokenRealm?: string;
  requests: MemRequestRecord[];
  faults: Fault[];
  putBlob(repo: string, bytes: Uint8Array): string;
  putManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): string;
  getBlob(repo: string, digest: string): Buffer | undefined;
  getManifest(repo: string, ref: string): StoredManifest | undefined;
  /** Makes every access token issued so far expired (next use → 401 `error="invalid_token"`). */
  expireTokens(): void;
  stop(): Promise<void>;
}
