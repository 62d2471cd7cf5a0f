/**
 * Authentication and authorisation for the in-process registry:
 * - 'open': everything allowed;
 * - 'basic': `WWW-Authenticate: Basic realm="mem-registry"`, credentials checked on every request;
 * - 'token': Docker token auth (distribution docs/spec/auth/token.md, oauth.md) with the token
 *   endpoint served by the same server at `/token`; tokens are opaque and mapped server-side to
 *   the granted scopes (intersection of asked and allowed).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { bareType, errorResp, header, json, matchesAny, type Resp } from './util.js';
import type { MemAuthMode, MemUser } from './types.js';

export const SERVICE = 'mem-registry';
const TOKEN_TTL_S = 300;

export type Action = 'pull' | 'push' | 'delete';

/** What a request needs. */
export type Access =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'repo'; repo: string; actions: Action[] };

/** Who is asking, as far as handlers care (mount needs "can pull `from`"). */
export interface Principal {
  canPull(repo: string): boolean;
}

interface TokenGrant {
  user?: string;
  repos: Map<string, Set<string>>;
  catalog: boolean;
  expiresAt: number;
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; resp: Resp };

const OPEN: Principal = { canPull: () => true };

export class Auth {
  private readonly tokens = new Map<string, TokenGrant>();
  private readonly refreshTokens = new Map<string, string>(); // refresh token → user

  constructor(
    readonly mode: MemAuthMode,
    private readonly users: Record<string, MemUser>,
    private readonly anonymousPull: string[],
    private readonly realm: () => string,
  ) {}

  expireAll(): void {
    for (const t of this.tokens.values()) t.expiresAt = 0;
  }

  // ---- permissions (from options) -------------------------------------------------------------

  private allowed(user: string | undefined, repo: string): Set<string> {
    const out = new Set<string>();
    if (matchesAny(this.anonymousPull, repo)) out.add('pull');
    const u = user === undefined ? undefined : this.users[user];
    if (u) {
      if (matchesAny(u.pull, repo)) out.add('pull');
      if (matchesAny(u.push, repo)) {
        for (const a of ['pull', 'push', 'delete', '*']) out.add(a);
      }
    }
    return out;
  }

  private checkPassword(user: string, password: string): boolean {
    const u = this.users[user];
    return !!u && u.password === password;
  }

  /** Parses `Authorization: Basic …`: undefined = absent/other scheme, null = malformed/wrong. */
  private basicUser(headers: IncomingHttpHeaders): string | null | undefined {
    const h = header(headers, 'authorization');
    if (!h || !/^basic\s/i.test(h)) return undefined;
    const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) return null;
    const user = decoded.slice(0, i);
    return this.checkPassword(user, decoded.slice(i + 1)) ? user : null;
  }

  // ---- registry requests ----------------------------------------------------------------------

  authorize(headers: IncomingHttpHeaders, access: Access): AuthResult {
    if (this.mode === 'open') return { ok: true, principal: OPEN };
    return this.mode === 'basic' ? this.authorizeBasic(headers, access) : this.authorizeToken(headers, access);
  }

  private authorizeBasic(headers: IncomingHttpHeaders, access: Access): AuthResult {
    const user = this.basicUser(headers);
    const challenge = { 'WWW-Authenticate': `Basic realm="${SERVICE}"` };
    const unauthorized = (): AuthResult => ({
      ok: false,
      resp: errorResp(401, 'UNAUTHORIZED', 'authentication required', {}, challenge),
    });
    if (user === null) return unauthorized();
    const principal: Principal = { canPull: (r) => this.allowed(user, r).has('pull') };
    if (access.kind !== 'repo') return user === undefined ? unauthorized() : { ok: true, principal };
    const allowed = this.allowed(user, access.repo);
    if (access.actions.every((a) => allowed.has(a))) return { ok: true, principal };
    if (user === undefined) return unauthorized();
    return {
      ok: false,
      resp: errorResp(403, 'DENIED', 'requested access to the resource is denied', {
        name: access.repo,
        actions: access.actions,
      }),
    };
  }

  private scopeOf(access: Access): string | undefined {
    if (access.kind === 'catalog') return 'registry:catalog:*';
    if (access.kind === 'repo') return `repository:${access.repo}:${access.actions.join(',')}`;
    return undefined;
  }

  private authorizeToken(headers: IncomingHttpHeaders, access: Access): AuthResult {
    const h = header(headers, 'authorization');
    const scope = this.scopeOf(access);
    const challenge = (error?: string): AuthResult => {
      let c = `Bearer realm="${this.realm()}",service="${SERVICE}"`;
      if (scope) c += `,scope="${scope}"`;
      if (error) c += `,error="${error}"`;
      const message = error === 'insufficient_scope' ? 'insufficient scope' : 'authentication required';
      return {
        ok: false,
        resp: errorResp(401, 'UNAUTHORIZED', message, scope ? [{ scope }] : {}, { 'WWW-Authenticate': c }),
      };
    };
    if (!h || !/^bearer\s/i.test(h)) return challenge();
    const grant = this.tokens.get(h.slice(7).trim());
    if (!grant || grant.expiresAt <= Date.now()) return challenge('invalid_token');
    const has = (repo: string, a: string) => {
      const s = grant.repos.get(repo);
      return !!s && (s.has(a) || s.has('*'));
    };
    const principal: Principal = { canPull: (r) => has(r, 'pull') };
    if (access.kind === 'ping') return { ok: true, principal };
    if (access.kind === 'catalog') return grant.catalog ? { ok: true, principal } : challenge('insufficient_scope');
    return access.actions.every((a) => has(access.repo, a))
      ? { ok: true, principal }
      : challenge('insufficient_scope');
  }

  // ---- token endpoint -------------------------------------------------------------------------

  /** Parses scope strings `type:name:actions` (name may contain ':'), grants the intersection. */
  private grant(user: string | undefined, scopes: string[]): { id: string; granted: string[] } {
    const g: TokenGrant = { user, repos: new Map(), catalog: false, expiresAt: Date.now() + TOKEN_TTL_S * 1000 };
    const granted: string[] = [];
    for (const s of scopes) {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first < 0 || last <= first) continue;
      const type = s.slice(0, first);
      const name = s.slice(first + 1, last);
      const asked = s.slice(last + 1).split(',').filter(Boolean);
      if (type === 'registry' && name === 'catalog') {
        if (user !== undefined) {
          g.catalog = true;
          granted.push('registry:catalog:*');
        }
        continue;
      }
      if (type !== 'repository') continue;
      const allowed = this.allowed(user, name);
      const ok = asked.filter((a) => allowed.has(a));
      if (ok.length === 0) continue;
      const set = g.repos.get(name) ?? new Set<string>();
      ok.forEach((a) => set.add(a));
      g.repos.set(name, set);
      granted.push(`repository:${name}:${[...set].join(',')}`);
    }
    const id = randomBytes(24).toString('base64url');
    this.tokens.set(id, g);
    return { id, granted };
  }

  private newRefreshToken(user: string): string {
    const rt = randomBytes(24).toString('base64url');
    this.refreshTokens.set(rt, user);
    return rt;
  }

  handleToken(method: string, headers: IncomingHttpHeaders, query: URLSearchParams, body: Buffer): Resp {
    if (this.mode !== 'token') return errorResp(404, 'UNSUPPORTED', 'no token endpoint');
    const issuedAt = new Date().toISOString();
    const splitScopes = (vals: string[]) => vals.flatMap((v) => v.split(' ')).filter(Boolean);
    if (method === 'GET') {
      const service = query.get('service');
      if (service !== null && service !== SERVICE) return json(400, { error: 'invalid_request', error_description: 'unknown service' });
      const h = header(headers, 'authorization');
      const user = this.basicUser(headers);
      if (user === null || (h && user === undefined)) {
        return json(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials', detail: {} }] });
      }
      const { id } = this.grant(user, splitScopes(query.getAll('scope')));
      const out: Record<string, unknown> = { token: id, access_token: id, expires_in: TOKEN_TTL_S, issued_at: issuedAt };
      if (user !== undefined && query.get('offline_token') === 'true') out['refresh_token'] = this.newRefreshToken(user);
      return json(200, out);
    }
    if (method === 'POST') {
      if (bareType(header(headers, 'content-type')) !== 'application/x-www-form-urlencoded') {
        return json(400, { error: 'invalid_request', error_description: 'expected a form body' });
      }
      const form = new URLSearchParams(body.toString('utf8'));
      if (form.get('service') !== SERVICE) return json(400, { error: 'invalid_request', error_description: 'missing or unknown service' });
      if (!form.get('client_id')) return json(400, { error: 'invalid_request', error_description: 'missing client_id' });
      let user: string;
      let refresh: string | undefined;
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        const u = form.get('username') ?? '';
        if (!this.checkPassword(u, form.get('password') ?? '')) return json(400, { error: 'invalid_grant' });
        user = u;
        if (form.get('access_type') === 'offline') refresh = this.newRefreshToken(u);
      } else if (grantType === 'refresh_token') {
        const rt = form.get('refresh_token') ?? '';
        const u = this.refreshTokens.get(rt);
        if (u === undefined) return json(400, { error: 'invalid_grant' });
        user = u;
        refresh = rt;
      } else {
        return json(400, { error: 'unsupported_grant_type' });
      }
      const { id, granted } = this.grant(user, splitScopes(form.getAll('scope')));
      const out: Record<string, unknown> = { access_token: id, scope: granted.join(' '), expires_in: TOKEN_TTL_S, issued_at: issuedAt };
      if (refresh) out['refresh_token'] = refresh;
      return json(200, out);
    }
    return errorResp(405, 'UNSUPPORTED', 'method not allowed', {}, { Allow: 'GET, POST' });
  }
}
