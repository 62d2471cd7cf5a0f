import { challengeScopes, parseWwwAuthenticate, pickChallenge, resolveRealm, type Challenge } from '../auth/challenge.js';
import type { Credential } from '../auth/credential.js';
import { fetchToken, type TokenResult, type TokenTransport } from '../auth/token.js';
import { profileForChallenge } from '../ref/registry-profiles.js';
import { TokenCache } from '../auth/token-cache.js';
import { FerryError } from '../errors.js';
import type { DebugLog, HttpRequest, Middleware } from './types.js';

export interface AuthOptions {
  /** `host[:port]` the registry API is served from: the only host that ever gets credentials. */
  apiHost: string;
  /** Lazily resolved (config files and helpers are only read when a registry asks). */
  credential: () => Promise<Credential>;
  tokenTransport: TokenTransport;
  cache: TokenCache;
  /** Accept an http:// token realm (only for loopback / --plain-http registries). */
  allowHttpRealm: boolean;
  log?: DebugLog;
  /** Ask token servers for a refresh token too (ferry login stores it as the identity token). */
  offline?: boolean;
  /** Told every challenge learned and every token used (ferry auth explain, ferry login). The
   * token is the secret itself: observers must never print it. */
  observe?: (e: AuthEvent) => void;
}

export type AuthEvent =
  | { kind: 'challenge'; challenge: Challenge; url: string }
  | { kind: 'token'; realm: string; service?: string; scopes: string[]; grant: TokenResult; fresh: boolean }
  | { kind: 'basic'; username: string };

/**
 * Registry authentication (protocol.md §2). The challenge is learned from the first 401 and
 * reused, so later requests authenticate up front (gcr.io once sent 401s without a challenge).
 * Bearer tokens are cached per (realm, service, scopes); concurrent requests for the same token
 * share one exchange (TokenCache.getOrFetch). A 401 is answered once: with a token for the challenged scopes
 * (merging `insufficient_scope`), or refreshed after `invalid_token`; never in a loop. Requests
 * to any other host (redirect targets, storage) get no credentials here.
 */
export function authMiddleware(o: AuthOptions): Middleware {
  let challenge: Challenge | undefined;

  const authorization = async (req: HttpRequest, scopes: string[], fresh: boolean): Promise<string | undefined> => {
    const c = challenge;
    if (!c) return undefined;
    const cred = await o.credential();
    if (cred.kind === 'registry-token') return `Bearer ${cred.token}`;
    if (c.scheme === 'basic') {
      if (cred.kind !== 'basic') return undefined;
      o.observe?.({ kind: 'basic', username: cred.username });
      return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString('base64')}`;
    }
    if (c.scheme !== 'bearer' || !c.params['realm']) return undefined;
    const realm = resolveRealm(c.params['realm'], req.url.toString());
    if (realm.startsWith('http:') && !o.allowHttpRealm) {
      throw new FerryError('E_REGISTRY', `registry ${o.apiHost} sent a plain-http token realm (${new URL(realm).host}); refusing to send credentials over http`);
    }
    const service = c.params['service'] || undefined;
    const parts = { realm, scopes, ...(service ? { service } : {}) };
    if (fresh) o.cache.delete(parts);
    const profile = profileForChallenge(o.apiHost, realm, service);
    let grant: TokenResult | undefined;
    const t = await o.cache.getOrFetch(parts, async () => {
      o.log?.(`token: requesting ${scopes.join(' ') || '(no scope)'} from ${new URL(realm).host} as ${cred.kind === 'basic' ? cred.username : cred.kind}`);
      grant = await fetchToken(o.tokenTransport, {
        realm, ...(service ? { service } : {}), scopes, credential: cred, ...(req.signal ? { signal: req.signal } : {}),
        ...(o.offline ? { offline: true } : {}),
        ...(profile?.tokenPost === false ? { noPost: true } : {}),
        ...(profile?.badCredentialsStatus !== undefined ? { badCredentialsStatus: profile.badCredentialsStatus } : {}),
        ...(profile?.loginHint ? { loginHint: profile.loginHint } : {}),
      });
      return grant;
    });
    o.observe?.({ kind: 'token', realm, ...(service ? { service } : {}), scopes, grant: grant ?? { token: t.token, expiresInSec: 0, ...(t.refreshToken ? { refreshToken: t.refreshToken } : {}) }, fresh: grant !== undefined });
    return `Bearer ${t.token}`;
  };

  return (next) => async (req) => {
    if (req.url.host !== o.apiHost) return next(req);
    const scopes = mergeScopes(req.scopes ?? []);
    const first = await authorization(req, scopes, false);
    const res = await next(withAuth(req, first));
    if (res.status !== 401) return res;
    const c = pickChallenge(parseWwwAuthenticate(res.headers['www-authenticate']));
    if (!c) return res;
    const changed = !challenge || challenge.scheme !== c.scheme || challenge.params['realm'] !== c.params['realm'];
    const error = c.params['error'];
    // Worth one more try only when something would differ: first contact, a new challenge, a
    // scope the token lacked, or an expired/invalid token. Otherwise the 401 is final.
    if (first !== undefined && !changed && error !== 'insufficient_scope' && error !== 'invalid_token') return res;
    challenge = c;
    o.observe?.({ kind: 'challenge', challenge: c, url: req.url.toString() });
    // The challenge's scope counts for requests about a resource, or when the registry says the
    // token lacked it; a scope-less request (the `/v2/` ping of login) asks for none: GHCR's
    // `/v2/` challenge names a placeholder `repository:user/image:pull` nobody means.
    const wanted = scopes.length > 0 || error === 'insufficient_scope' ? mergeScopes([...challengeScopes(c), ...scopes]) : [];
    const second = await authorization(req, wanted, true);
    if (second === undefined || second === first) return res;
    await res.dump();
    return next(withAuth(req, second));
  };
}

/**
 * Merges scopes on the same resource into one (`repository:x:pull` + `repository:x:pull,push` →
 * `repository:x:pull,push`), as regclient does: one token per operation, and a cache key that the
 * next request with the merged scope hits. Scope grammar: type:name:actions, where the name may
 * itself contain ':' (a host:port), so split on the first and last colon only.
 */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const sc of scopes) {
    const first = sc.indexOf(':');
    const last = sc.lastIndexOf(':');
    if (first < 0 || last === first) {
      byResource.set(sc, byResource.get(sc) ?? new Set());
      continue;
    }
    const key = sc.slice(0, last);
    const set = byResource.get(key) ?? new Set<string>();
    for (const a of sc.slice(last + 1).split(',')) if (a) set.add(a);
    byResource.set(key, set);
  }
  return [...byResource].map(([k, acts]) => (acts.size ? `${k}:${[...acts].sort().join(',')}` : k));
}

function withAuth(req: HttpRequest, header: string | undefined): HttpRequest {
  if (!header) return req;
  return { ...req, headers: { ...req.headers, authorization: header } };
}
