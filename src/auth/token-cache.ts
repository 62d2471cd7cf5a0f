/**
 * In-process cache of registry bearer tokens.
 *
 * Contracts:
 * - Key: (realm, service, sorted unique scopes) — DD-SCOPE / regclient; scope order and duplicates
 *   never cause a second token request.
 * - Expiry (regclient `validateResponse`, all reference clients' 60 s floor):
 *     base    = issued_at, if it parses and is neither in the future nor already expired (clock
 *               skew), else the time the response was received;
 *     expires = base + max(expires_in ?? 60, 60) s;
 *   an entry is served only until 5 s before `expires` (regclient `tokenBuffer`).
 * - `getOrFetch` is single-flight: concurrent misses for one key share one fetch; a failed fetch
 *   is not cached.
 * - The clock is injectable (`now()` in ms) for tests.
 */

export interface TokenKeyParts {
  realm: string;
  service?: string;
  scopes: readonly string[];
}

export interface TokenGrant {
  token: string;
  expiresInSec?: number;
  issuedAt?: string;
  refreshToken?: string;
}

export interface CachedToken {
  token: string;
  /** Epoch ms after which the server considers the token expired. */
  expiresAt: number;
  refreshToken?: string;
}

export const MIN_TOKEN_LIFETIME_SEC = 60;
export const RENEW_EARLY_MS = 5_000;

/** Cache key for (realm, service, scopes); scopes are de-duplicated and sorted. */
export function tokenCacheKey(p: TokenKeyParts): string {
  const scopes = [...new Set(p.scopes.filter((s) => s !== ''))].sort();
  return JSON.stringify([p.realm, p.service ?? '', scopes]);
}

/** Absolute expiry (epoch ms) of a grant received at `receivedAt`. */
export function tokenExpiry(g: Pick<TokenGrant, 'expiresInSec' | 'issuedAt'>, receivedAt: number): number {
  const given = g.expiresInSec;
  const lifetimeMs = Math.max(given !== undefined && Number.isFinite(given) ? given : MIN_TOKEN_LIFETIME_SEC, MIN_TOKEN_LIFETIME_SEC) * 1000;
  let base = receivedAt;
  if (g.issuedAt) {
    const issued = Date.parse(g.issuedAt);
    if (Number.isFinite(issued) && issued <= receivedAt && issued + lifetimeMs > receivedAt) base = issued;
  }
  return base + lifetimeMs;
}

export class TokenCache {
  private readonly entries = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** The cached token if it is still good for at least RENEW_EARLY_MS; expired entries are dropped. */
  get(p: TokenKeyParts): CachedToken | undefined {
    const k = tokenCacheKey(p);
    const e = this.entries.get(k);
    if (!e) return undefined;
    if (this.now() >= e.expiresAt - RENEW_EARLY_MS) {
      this.entries.delete(k);
      return undefined;
    }
    return e;
  }

  /** Stores a grant received now; returns the cached form. */
  set(p: TokenKeyParts, g: TokenGrant): CachedToken {
    const e: CachedToken = { token: g.token, expiresAt: tokenExpiry(g, this.now()) };
    if (g.refreshToken) e.refreshToken = g.refreshToken;
    this.entries.set(tokenCacheKey(p), e);
    return e;
  }

  /** Forgets a token (e.g. the registry answered `error="invalid_token"`). */
  delete(p: TokenKeyParts): void {
    this.entries.delete(tokenCacheKey(p));
  }

  clear(): void {
    this.entries.clear();
  }

  /** Cached token, or one fetched by `fetch` (single-flight per key) and cached. */
  async getOrFetch(p: TokenKeyParts, fetch: () => Promise<TokenGrant>): Promise<CachedToken> {
    const hit = this.get(p);
    if (hit) return hit;
    const k = tokenCacheKey(p);
    let pending = this.inflight.get(k);
    if (!pending) {
      pending = (async () => {
        try {
          return this.set(p, await fetch());
        } finally {
          this.inflight.delete(k);
        }
      })();
      this.inflight.set(k, pending);
    }
    return pending;
  }
}
