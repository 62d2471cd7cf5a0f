/**
 * A small Docker-registry token server (docker "token" auth spec) that the
 * real distribution registry trusts. Listens on 127.0.0.1:<ephemeral>.
 *
 * Contracts:
 * - Tokens are RS256 JWTs signed with node:crypto. Header
 *   `{alg:'RS256', typ:'JWT', x5c:[<base64 DER of the signing cert>]}`; the
 *   signing cert is issued by a throwaway CA whose PEM is `rootCertBundle`
 *   (distribution 2.8 verifies the x5c leaf against `rootcertbundle`).
 * - Claims: iss=issuer, sub=user ('' for anonymous), aud=service (a string:
 *   2.8 does not accept an array), exp=now+expiresIn, nbf=now-5, iat=now,
 *   jti=random, access=[{type, name, actions}] (possibly empty).
 * - GET  /token?service=…&scope=…&scope=…[&offline_token=true]  with optional
 *   Basic auth. POST /token (OAuth2 form): grant_type=password
 *   (username, password) or grant_type=refresh_token (refresh_token);
 *   `access_type=offline` (POST) / `offline_token=true` (GET, with creds)
 *   also returns a refresh_token.
 * - Response 200: `{token, access_token, expires_in, issued_at[, refresh_token]}`.
 *   Bad credentials / unknown refresh token → 401 JSON
 *   `{errors:[{code:'UNAUTHORIZED', message}]}`; wrong `service` → 400.
 * - Policy (DEFAULT_USERS): alice → pull,push,delete,* on every repository and
 *   * on registry:catalog:*; bob → pull on every repository; anonymous → pull
 *   on `public/*` only. Grant = intersection of requested and allowed.
 * - `requests` records every request (method, path, query, hasAuth, user,
 *   attemptedUser — the name presented, even if rejected —, grantType, status,
 *   granted) — never passwords or refresh tokens.
 * - stop() closes the server and removes the temp dir it created.
 * - createTokenIssuer(opts) is the same logic without a server (`handle(req, res)`, mounted by
 *   emulated-registry.ts at a registry's real realm path). Options per emulation: users, policy,
 *   pre-seeded and expired refresh tokens (an expired one is a 401), `realmPath`,
 *   `omitExpiresIn` (GHCR), `rejectPost` (405, Harbor), `badCredentialsStatus` (400: IBM) and
 *   `refreshTokenUser` (a Basic user whose password is a refresh token: ACR's null GUID).
 */
import { createHash, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { makeTempDir } from './binaries.js';
import { certFileToDerBase64, issueCert, makeTestCa } from './tls.js';

export const TOKEN_SERVICE = 'ferry-test-registry';
export const TOKEN_ISSUER = 'ferry-test-issuer';

/** user → password. alice is read-write, bob read-only. */
export const DEFAULT_USERS: Readonly<Record<string, string>> = Object.freeze({
  alice: 'alice-secret-pw',
  bob: 'bob-secret-pw',
});

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequestRecord {
  method: string;
  path: string;
  query: Record<string, string[]>;
  /** An Authorization header was present (its value is never recorded). */
  hasAuth: boolean;
  /** Authenticated principal, undefined for anonymous or failed auth. */
  user?: string;
  /** The user name the client presented (Basic or password grant), even when it was rejected:
   * proves which credentials reached this server. */
  attemptedUser?: string;
  grantType?: string;
  status: number;
  /** Scopes requested (query `scope` params or the POST form `scope`). */
  scopes: string[];
  granted: AccessEntry[];
}

/** Allowed actions for `user` (undefined = anonymous) on a resource of `type` named `name`. */
export type TokenPolicy = (user: string | undefined, type: string, name: string) => string[];

/** The token logic without a server: mount `handle` at `realmPath` in any HTTP(S) server. */
export interface TokenIssuer {
  realmPath: string;
  service: string;
  issuer: string;
  rootCertBundle: string; // PEM path for the registry's auth.token.rootcertbundle
  users: Record<string, string>;
  /** Issued and pre-seeded refresh tokens → user (mutable). */
  refreshTokens: Map<string, string>;
  requests: TokenRequestRecord[];
  /** Token lifetime in seconds for subsequently issued tokens (mutable). */
  expiresIn: number;
  /** Answers one request (any path: the caller routes `realmPath` here). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Removes the signing CA's temp dir. */
  remove(): void;
}

export interface TokenServer extends TokenIssuer {
  url: string; // http(s)://127.0.0.1:PORT
  realm: string; // `${url}${realmPath}`
  stop(): Promise<void>;
}

export interface TokenIssuerOptions {
  service?: string;
  issuer?: string;
  expiresIn?: number;
  /** user → password (default DEFAULT_USERS). */
  users?: Record<string, string>;
  /** Who may do what (default `allowedActions`). */
  policy?: TokenPolicy;
  /** Pre-seeded refresh tokens (token → user), as a registry's login would have issued. */
  refreshTokens?: Record<string, string>;
  /** Refresh tokens that have expired: using one is a 401 (ACR). */
  expiredRefreshTokens?: readonly string[];
  /** Path of the realm (default `/token`). */
  realmPath?: string;
  /** Leave `expires_in` out of token responses (GHCR). */
  omitExpiresIn?: boolean;
  /** Answer POST with 405 (Harbor: GET-only token endpoint). Default false. */
  rejectPost?: boolean;
  /** Status for bad credentials (default 401; IBM Cloud Registry answers 400). */
  badCredentialsStatus?: number;
  /** A Basic user whose password is a refresh token (ACR's null GUID). */
  refreshTokenUser?: string;
  /** false: never issue refresh tokens, whatever `offline_token` / `access_type` ask (GHCR, Hub,
   * Quay, Harbor, … — docker login stores their passwords). Default true. */
  issueRefreshTokens?: boolean;
}

export interface TokenServerOptions extends TokenIssuerOptions {
  /** Serve over https with this cert/key (e.g. the registry's TLS files). */
  tls?: { cert: string; key: string };
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Allowed actions for `user` (undefined = anonymous) on a resource. */
export const allowedActions: TokenPolicy = (user, type, name) => {
  if (type === 'repository') {
    if (user === 'alice') return ['pull', 'push', 'delete', '*'];
    if (user === 'bob') return ['pull'];
    if (user === undefined && name.startsWith('public/')) return ['pull'];
    return [];
  }
  if (type === 'registry' && name === 'catalog' && user === 'alice') return ['*'];
  return [];
};

/** Parse `type:name:actions` (name may itself contain ':'). */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  const actions = scope.slice(last + 1).split(',').filter(Boolean);
  return { type, name: scope.slice(first + 1, last), actions };
}

export async function createTokenIssuer(opts: TokenIssuerOptions = {}): Promise<TokenIssuer> {
  const temp = makeTempDir('token');
  try {
    const ca = await makeTestCa(temp.path, 'token-ca');
    const signer = await issueCert(ca, { name: 'token-signer', usage: 'signing' });
    const key: KeyObject = createPrivateKey(await readFile(signer.key));
    const x5c = [await certFileToDerBase64(signer.cert)];

    const users: Record<string, string> = { ...(opts.users ?? DEFAULT_USERS) };
    const policy = opts.policy ?? allowedActions;
    const refreshTokens = new Map<string, string>(Object.entries(opts.refreshTokens ?? {})); // refresh token → user
    const expired = new Set(opts.expiredRefreshTokens ?? []);
    const requests: TokenRequestRecord[] = [];
    const service = opts.service ?? TOKEN_SERVICE;
    const issuer = opts.issuer ?? TOKEN_ISSUER;
    const realmPath = opts.realmPath ?? '/token';
    const badStatus = opts.badCredentialsStatus ?? 401;

    const mint = (user: string | undefined, access: AccessEntry[], expiresIn: number): string => {
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: 'RS256', typ: 'JWT', x5c };
      const claims = {
        iss: issuer, sub: user ?? '', aud: service, exp: now + expiresIn, nbf: now - 5, iat: now,
        jti: randomBytes(12).toString('hex'), access,
      };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
      return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
    };

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      const u = new URL(req.url ?? '/', 'http://127.0.0.1');
      const query: Record<string, string[]> = {};
      for (const [k, v] of u.searchParams) (query[k] ??= []).push(v);
      const rec: TokenRequestRecord = {
        method: req.method ?? '', path: u.pathname, query,
        hasAuth: req.headers.authorization !== undefined, status: 0, scopes: [], granted: [],
      };
      requests.push(rec);
      const reply = (status: number, body: unknown): void => {
        rec.status = status;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const deny = (message: string, status = 401): void => {
        if (status === 401) res.setHeader('www-authenticate', `Basic realm="${issuer}"`);
        reply(status, { errors: [{ code: status === 401 ? 'UNAUTHORIZED' : 'BAD_REQUEST', message }] });
      };
      const refreshUser = (token: string): string | undefined => (expired.has(token) ? undefined : refreshTokens.get(token));
      if (u.pathname !== realmPath) return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });

      let params: URLSearchParams = u.searchParams;
      let user: string | undefined;
      let wantRefresh = false;
      if (req.method === 'POST' && opts.rejectPost) {
        req.resume();
        return reply(405, { errors: [{ code: 'METHOD_NOT_ALLOWED', message: 'method not allowed' }] });
      }
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        rec.grantType = params.get('grant_type') ?? '';
        if (rec.grantType === 'password') {
          const name = params.get('username') ?? '';
          rec.attemptedUser = name;
          if (users[name] === undefined || users[name] !== params.get('password')) return deny('invalid username or password', badStatus);
          user = name;
        } else if (rec.grantType === 'refresh_token') {
          user = refreshUser(params.get('refresh_token') ?? '');
          if (user === undefined) return deny('invalid refresh token');
        } else {
          return reply(400, { errors: [{ code: 'UNSUPPORTED', message: `unsupported grant_type ${rec.grantType}` }] });
        }
        wantRefresh = (params.get('access_type') === 'offline' || rec.grantType === 'refresh_token') && opts.issueRefreshTokens !== false;
      } else if (req.method === 'GET') {
        const auth = req.headers.authorization;
        if (auth !== undefined) {
          const m = /^Basic\s+(\S+)$/i.exec(auth);
          const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
          const colon = decoded.indexOf(':');
          const name = decoded.slice(0, Math.max(colon, 0));
          const secret = decoded.slice(colon + 1);
          rec.attemptedUser = name;
          if (colon >= 0 && opts.refreshTokenUser !== undefined && name === opts.refreshTokenUser) {
            user = refreshUser(secret);
            if (user === undefined) return deny('invalid refresh token');
          } else {
            if (colon < 0 || users[name] === undefined || users[name] !== secret) return deny('invalid username or password', badStatus);
            user = name;
          }
        }
        wantRefresh = user !== undefined && params.get('offline_token') === 'true' && opts.issueRefreshTokens !== false;
      } else {
        return reply(405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
      }
      rec.user = user;
      const svc = params.get('service');
      if (svc !== null && svc !== service) {
        return reply(400, { errors: [{ code: 'INVALID_SERVICE', message: `unknown service ${svc}` }] });
      }
      rec.scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      for (const scope of rec.scopes) {
        const want = parseScope(scope);
        if (!want) continue;
        const allowed = policy(user, want.type, want.name);
        const actions = [...new Set(want.actions.filter((a) => allowed.includes(a)))];
        if (actions.length > 0) rec.granted.push({ type: want.type, name: want.name, actions });
      }
      const expiresIn = self.expiresIn;
      const token = mint(user, rec.granted, expiresIn);
      const body: Record<string, unknown> = { token, access_token: token };
      if (!opts.omitExpiresIn) body.expires_in = expiresIn;
      body.issued_at = new Date().toISOString();
      if (wantRefresh && user !== undefined) {
        const refresh = createHash('sha256').update(randomBytes(32)).digest('hex');
        refreshTokens.set(refresh, user);
        body.refresh_token = refresh;
      }
      if (req.method === 'POST') body.scope = rec.scopes.join(' ');
      reply(200, body);
    };

    const self: TokenIssuer = {
      realmPath, service, issuer, rootCertBundle: ca.caCert, users, refreshTokens, requests,
      expiresIn: opts.expiresIn ?? 300,
      handle(req, res) {
        handle(req, res).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(String(err));
        });
      },
      remove: () => temp.remove(),
    };
    return self;
  } catch (err) {
    temp.remove();
    throw err;
  }
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const issuer = await createTokenIssuer(opts);
  try {
    const tlsOpts = opts.tls
      ? { cert: await readFile(opts.tls.cert), key: await readFile(opts.tls.key) }
      : undefined;
    const listener = (req: IncomingMessage, res: ServerResponse): void => issuer.handle(req, res);
    const http = tlsOpts ? createHttpsServer(tlsOpts, listener) : createHttpServer(listener);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (http.address() as AddressInfo).port;
    const url = `${tlsOpts ? 'https' : 'http'}://127.0.0.1:${port}`;
    let stopped = false;
    // The issuer's fields stay live (expiresIn is read at each request), so the server is the
    // issuer object itself with the address added.
    return Object.assign(issuer, {
      url, realm: `${url}${issuer.realmPath}`,
      async stop() {
        if (stopped) return;
        stopped = true;
        await new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeAllConnections();
        });
        issuer.remove();
      },
    });
  } catch (err) {
    issuer.remove();
    throw err;
  }
}
