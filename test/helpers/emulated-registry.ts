/**
 * Honest emulations of the public registries ferry has conventions for, reached by their real
 * host names through ferry's `--resolve HOST:443:127.0.0.1:PORT` (nothing touches the internet).
 *
 * Each emulation = the REAL distribution registry (real-registry.ts, plain http on 127.0.0.1)
 * + a TLS front server on 127.0.0.1 (certificate for the real names from tls.ts realHostTls(),
 * trusted by ferry through NODE_EXTRA_CA_CERTS) that
 * - serves that registry's token endpoint at its real realm host and path (token-server.ts
 *   createTokenIssuer, configured with the registry's service, users, policy and quirks), and
 * - reverse-proxies everything else to distribution, streaming both ways (no buffering), with
 *   the Host header kept and `X-Forwarded-Proto: https`, so distribution's Location headers name
 *   the public host (any that still name the backend are rewritten), and rewrites the
 *   WWW-Authenticate challenge where the real registry's differs from distribution's.
 *
 * Quirks (protocol.md §3):
 * - dockerhub: API `registry-1.docker.io`, realm `https://auth.docker.io/token` on its own host
 *   (both names go to this front; routed by Host), service `registry.docker.io`; anonymous pull of
 *   `library/*`; rate-limit headers on manifest GET and HEAD (`ratelimit-limit: N;w=21600`,
 *   `ratelimit-remaining`, `docker-ratelimit-source`), only GETs count, 429 TOOMANYREQUESTS at 0.
 * - ghcr: realm `https://ghcr.io/token`, token responses without `expires_in`, the `/v2/`
 *   challenge carries the placeholder scope `repository:user/image:pull`; user + `ghp_` PAT.
 * - quay: realm `https://quay.io/v2/auth`; robot `myorg+ci`; anonymous pull of `myorg/public-*`.
 * - ecr: Basic only (distribution htpasswd), user `AWS`, challenge
 *   `Basic realm="https://<host>/",service="ecr.amazonaws.com"`, 401 body `Not Authorized`.
 *   bcrypt reads only 72 bytes and newer Go refuses longer passwords, so the front passes the
 *   password on to distribution as its sha256 (hex): distribution still checks every byte.
 * - acr: realm `https://myreg.azurecr.io/oauth2/token`; POST grant_type=refresh_token with
 *   ACR_REFRESH_TOKEN; ACR_EXPIRED_REFRESH_TOKEN → 401; GET with Basic null GUID + refresh token;
 *   Basic admin user. (`/oauth2/exchange` is not emulated.)
 * - gcr, artifact-registry: realm `https://<host>/v2/token`, service `<host>`, omitted from the
 *   `/v2/` challenge only; users `oauth2accesstoken` / `_dcgcloud_token` + GCP_ACCESS_TOKEN,
 *   `_json_key` + GCP_SERVICE_ACCOUNT_KEY_JSON (exact text).
 * - harbor: realm `https://harbor.example.com/service/token`, service `harbor-registry`, POST →
 *   405; robot `robot$proj+ci`; project = first path component, only `proj` exists (another → denied).
 * - ngc: realm `https://nvcr.io/proxy_auth`, no `service` in any challenge; `$oauthtoken` + API
 *   key; anonymous pull of `nvidia/*`.
 * - icr: realm `https://us.icr.io/oauth/token`, `service=registry`, challenge values unquoted
 *   with `, ` separators (quoted only when a value holds a comma: `pull,push`); `iamapikey` + API
 *   key; bad credentials → 400 from the token endpoint.
 *
 * Every server listens on 127.0.0.1 only; stop() closes the front, stops distribution and removes
 * the temp dirs; if the process exits first, real-registry.ts and binaries.ts clean up.
 * `frontLog` records each request the front saw (method, host, path, status, auth scheme and
 * Basic user — never a secret).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { startRegistry, type RealRegistry } from './real-registry.js';
import { realHostTls } from './tls.js';
import { createTokenIssuer, type TokenIssuer, type TokenIssuerOptions, type TokenPolicy } from './token-server.js';

export type EmulatedProfile = 'dockerhub' | 'ghcr' | 'quay' | 'ecr' | 'acr' | 'gcr' | 'artifact-registry' | 'harbor' | 'ngc' | 'icr';
export const EMULATED_PROFILES: readonly EmulatedProfile[] = ['dockerhub', 'ghcr', 'quay', 'ecr', 'acr', 'gcr', 'artifact-registry', 'harbor', 'ngc', 'icr'];

/** Whether an emulation lets anonymous clients pull (its `publicRepo`), without starting it. */
export const hasPublicPulls = (p: EmulatedProfile): boolean => profileDef(p).publicRepo !== undefined;

export interface Login {
  username: string;
  password: string;
}

// Fake secrets, shaped like the real ones.
export const DOCKERHUB_USER = 'ferryuser';
export const DOCKERHUB_PAT = 'dckr_pat_fErRyT3stT0k3nN0tR3aL0000';
export const GHCR_USER = 'octocat';
export const GHCR_PAT = 'ghp_FerryTestPat0123456789abcdefghijABCD';
export const QUAY_ROBOT = 'myorg+ci';
export const QUAY_ROBOT_TOKEN = 'QUAYROBOTTOKEN0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCD';
export const ECR_HOST = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
/** What `aws ecr get-login-password` prints: a long base64 token (user `AWS`). */
export const ECR_PASSWORD = `eyJwYXlsb2FkIjoi${Buffer.from(`ferry-test-ecr-payload:${'x'.repeat(900)}`).toString('base64')}IiwiZGF0YWtleSI6ImZlcnJ5In0=`;
export const ACR_HOST = 'myreg.azurecr.io';
export const ACR_NULL_GUID = '00000000-0000-0000-0000-000000000000';
export const ACR_ADMIN: Login = { username: 'myreg', password: 'AcrAdminPassw0rd+FerryTest/0123456789ab' };
/** An ACR refresh token (what `az acr login --expose-token` / acr-env give, used as identity token). */
export const ACR_REFRESH_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.ferry-acr-refresh-token.valid0123456789';
/** A refresh token ACR no longer accepts (expired): POST → 401. */
export const ACR_EXPIRED_REFRESH_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.ferry-acr-refresh-token.expired98765';
export const GCP_ACCESS_TOKEN = 'ya29.a0FerryTestAccessToken0123456789-abcdefghijklmnopqrstuvwxyz';
/** A fake service-account key file; `_json_key` takes its exact text as the password. */
export const GCP_SERVICE_ACCOUNT_KEY_JSON = `${JSON.stringify({
  type: 'service_account', project_id: 'my-project', private_key_id: '0123456789abcdef0123456789abcdef01234567',
  private_key: '-----BEGIN PRIVATE KEY-----\nMIIEferryTestNotARealKey\n-----END PRIVATE KEY-----\n',
  client_email: 'ferry-ci@my-project.iam.gserviceaccount.com', client_id: '123456789012345678901',
  auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: 'https://oauth2.googleapis.com/token',
}, null, 2)}\n`;
export const HARBOR_ROBOT = 'robot$proj+ci';
export const HARBOR_ROBOT_SECRET = 'HarborRobotSecret0123456789abcdefGHIJ';
export const NGC_USER = '$oauthtoken';
export const NGC_API_KEY = 'nvapi-FerryTestNgcKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH';
export const IBM_USER = 'iamapikey';
export const IBM_API_KEY = 'IbmCloudApiKeyFerryTest0123456789abcdefgh-ij';

export interface FrontRecord {
  method: string;
  /** Host header, without a port. */
  host: string;
  path: string;
  status: number;
  /** `basic:<user>`, `bearer`, another scheme's name, or undefined. */
  auth?: string;
  /** The WWW-Authenticate the front sent, if any. */
  challenge?: string;
}

/** Docker Hub's pull budget (dockerhub only). */
export interface RateLimit {
  limit: number;
  remaining: number;
  /** Manifest GETs and HEADs answered (a 429 counts as a GET). */
  gets: number;
  heads: number;
  /** Sets the budget (and remaining) and clears the counters. */
  reset(budget?: number): void;
}

export interface EmulatedRegistry {
  profile: EmulatedProfile;
  /** The registry API host (Hub: `registry-1.docker.io`). */
  host: string;
  /** The registry as written in references (Hub: `docker.io`). */
  registry: string;
  /** Every name the front answers for (Hub adds `auth.docker.io`). */
  hosts: string[];
  /** The front's port on 127.0.0.1. */
  port: number;
  /** What ferry needs: `--resolve NAME:443:127.0.0.1:PORT` for every name. */
  resolveArgs: string[];
  /** CA PEM for NODE_EXTRA_CA_CERTS (shared by all emulations of the process). */
  caFile: string;
  /** `{ NODE_EXTRA_CA_CERTS }`. */
  env: Record<string, string>;
  /** The read-write credential of the usual kind for this registry. */
  login: Login;
  /** Every credential it accepts, by name (e.g. gcr: oauth2accesstoken, dcgcloud, jsonKey). */
  logins: Record<string, Login>;
  /** A repository prefix `login` may push to (e.g. `octocat`, `my-project/my-repo`). */
  namespace: string;
  /** A repository anonymous clients may pull (once someone pushed it), where the registry has public pulls. */
  publicRepo?: string;
  /** Token realm URL and service (undefined for ECR). */
  realm?: string;
  service?: string;
  /** The token endpoint's state and request log (undefined for ECR). */
  tokens?: TokenIssuer;
  frontLog: FrontRecord[];
  rateLimit?: RateLimit;
  backend: RealRegistry;
  stop(): Promise<void>;
}

export interface EmulationOptions {
  /** dockerhub: the pull budget (default 1000). */
  rateLimit?: number;
}

interface Profile {
  host: string;
  registry?: string;
  /** Token realm host when not `host` (Hub). */
  realmHost?: string;
  token?: Omit<TokenIssuerOptions, 'policy' | 'users'> & { realmPath: string; service: string };
  /** Rewrite of distribution's challenge: what the real registry sends instead. */
  challenge?: (params: Map<string, string>, path: string) => string;
  users: Record<string, string>;
  logins: Record<string, Login>;
  login: Login;
  policy: TokenPolicy;
  namespace: string;
  publicRepo?: string;
  ecr?: boolean;
  rateLimited?: boolean;
}

const ALL = ['pull', 'push', 'delete', '*'];
const under = (name: string, ...prefixes: string[]): boolean => prefixes.some((p) => name.startsWith(`${p}/`));

function bearer(params: Map<string, string>, quote = true): string {
  const v = (s: string): string => (quote || /[,\s"]/.test(s) ? JSON.stringify(s) : s);
  return `Bearer ${[...params].map(([k, val]) => `${k}=${v(val)}`).join(quote ? ',' : ', ')}`;
}

const without = (params: Map<string, string>, key: string): Map<string, string> => new Map([...params].filter(([k]) => k !== key));

function profileDef(name: EmulatedProfile): Profile {
  switch (name) {
    case 'dockerhub': {
      const login = { username: DOCKERHUB_USER, password: DOCKERHUB_PAT };
      return {
        host: 'registry-1.docker.io', registry: 'docker.io', realmHost: 'auth.docker.io',
        token: { realmPath: '/token', service: 'registry.docker.io', issuer: 'auth.docker.io' },
        users: { [login.username]: login.password }, login, logins: { pat: login },
        // ratelimitpreview/test is Docker's probe image for the pull budget (public); the test user
        // may seed it here.
        policy: (u, type, n) => type !== 'repository' ? [] : u === DOCKERHUB_USER && under(n, 'library', DOCKERHUB_USER, 'ratelimitpreview') ? ALL : u === undefined && under(n, 'library', 'ratelimitpreview') ? ['pull'] : [],
        namespace: DOCKERHUB_USER, publicRepo: 'library/ferry-public', rateLimited: true,
      };
    }
    case 'ghcr': {
      const login = { username: GHCR_USER, password: GHCR_PAT };
      return {
        host: 'ghcr.io',
        token: { realmPath: '/token', service: 'ghcr.io', issuer: 'ghcr.io', omitExpiresIn: true },
        challenge: (p, path) => bearer(path === '/v2/' ? new Map([...p, ['scope', 'repository:user/image:pull']]) : p),
        users: { [login.username]: login.password }, login, logins: { pat: login },
        policy: (u, type, n) => (type === 'repository' && u === GHCR_USER && under(n, GHCR_USER) ? ALL : []),
        namespace: GHCR_USER,
      };
    }
    case 'quay': {
      const login = { username: QUAY_ROBOT, password: QUAY_ROBOT_TOKEN };
      return {
        host: 'quay.io',
        token: { realmPath: '/v2/auth', service: 'quay.io', issuer: 'quay' },
        users: { [login.username]: login.password }, login, logins: { robot: login },
        policy: (u, type, n) => type !== 'repository' ? [] : u === QUAY_ROBOT && under(n, 'myorg') ? ['pull', 'push'] : u === undefined && n.startsWith('myorg/public-') ? ['pull'] : [],
        namespace: 'myorg', publicRepo: 'myorg/public-app',
      };
    }
    case 'ecr': {
      const login = { username: 'AWS', password: ECR_PASSWORD };
      return {
        host: ECR_HOST, ecr: true,
        challenge: () => `Basic realm="https://${ECR_HOST}/",service="ecr.amazonaws.com"`,
        users: { AWS: ECR_PASSWORD }, login, logins: { aws: login },
        policy: () => [], namespace: 'team',
      };
    }
    case 'acr': {
      return {
        host: ACR_HOST,
        token: {
          realmPath: '/oauth2/token', service: ACR_HOST, issuer: 'Azure Container Registry',
          refreshTokens: { [ACR_REFRESH_TOKEN]: 'aad-user@example.com', [ACR_EXPIRED_REFRESH_TOKEN]: 'aad-user@example.com' },
          expiredRefreshTokens: [ACR_EXPIRED_REFRESH_TOKEN], refreshTokenUser: ACR_NULL_GUID,
        },
        users: { [ACR_ADMIN.username]: ACR_ADMIN.password }, login: ACR_ADMIN,
        logins: { admin: ACR_ADMIN, nullGuid: { username: ACR_NULL_GUID, password: ACR_REFRESH_TOKEN } },
        policy: (u, type) => (type === 'repository' && u !== undefined ? ALL : []),
        namespace: 'team',
      };
    }
    case 'gcr':
    case 'artifact-registry': {
      const host = name === 'gcr' ? 'gcr.io' : 'us-docker.pkg.dev';
      const logins = {
        oauth2accesstoken: { username: 'oauth2accesstoken', password: GCP_ACCESS_TOKEN },
        dcgcloud: { username: '_dcgcloud_token', password: GCP_ACCESS_TOKEN },
        jsonKey: { username: '_json_key', password: GCP_SERVICE_ACCOUNT_KEY_JSON },
      };
      return {
        host,
        token: { realmPath: '/v2/token', service: host, issuer: host },
        challenge: (p, path) => bearer(path === '/v2/' ? without(p, 'service') : p),
        users: Object.fromEntries(Object.values(logins).map((l) => [l.username, l.password])),
        login: logins.oauth2accesstoken, logins,
        policy: (u, type, n) => (type === 'repository' && u !== undefined && under(n, 'my-project') ? ALL : []),
        namespace: name === 'gcr' ? 'my-project' : 'my-project/my-repo',
      };
    }
    case 'harbor': {
      const login = { username: HARBOR_ROBOT, password: HARBOR_ROBOT_SECRET };
      return {
        host: 'harbor.example.com',
        token: { realmPath: '/service/token', service: 'harbor-registry', issuer: 'harbor-token-issuer', rejectPost: true },
        users: { [login.username]: login.password }, login, logins: { robot: login },
        // Only the project `proj` exists, and the robot belongs to it.
        policy: (u, type, n) => (type === 'repository' && u === HARBOR_ROBOT && under(n, 'proj') ? ['pull', 'push', 'delete', '*'] : []),
        namespace: 'proj',
      };
    }
    case 'ngc': {
      const login = { username: NGC_USER, password: NGC_API_KEY };
      return {
        host: 'nvcr.io',
        token: { realmPath: '/proxy_auth', service: 'registry', issuer: 'authn.nvidia.com', expiresIn: 600 },
        challenge: (p) => bearer(without(p, 'service')),
        users: { [login.username]: login.password }, login, logins: { apiKey: login },
        // The key's org is `myorg`; `nvidia/*` is public (the test user may publish there to seed it).
        policy: (u, type, n) => type !== 'repository' ? [] : u === NGC_USER && under(n, 'myorg', 'nvidia') ? ['pull', 'push'] : u === undefined && under(n, 'nvidia') ? ['pull'] : [],
        namespace: 'myorg', publicRepo: 'nvidia/ferry-public',
      };
    }
    case 'icr': {
      const login = { username: IBM_USER, password: IBM_API_KEY };
      return {
        host: 'us.icr.io',
        token: { realmPath: '/oauth/token', service: 'registry', issuer: 'icr', badCredentialsStatus: 400 },
        challenge: (p) => bearer(p, false),
        users: { [login.username]: login.password }, login, logins: { apiKey: login },
        policy: (u, type, n) => (type === 'repository' && u === IBM_USER && under(n, 'mynamespace') ? ALL : []),
        namespace: 'mynamespace',
      };
    }
  }
}

/** Parameters of one distribution challenge (`Bearer k="v",k2="v2"`). */
function challengeParams(h: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of h.matchAll(/([A-Za-z_]+)="([^"]*)"/g)) out.set(m[1]!.toLowerCase(), m[2]!);
  return out;
}

function authOf(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const [scheme, rest] = h.split(/\s+/, 2);
  if (/^basic$/i.test(scheme ?? '')) {
    const d = Buffer.from(rest ?? '', 'base64').toString('utf8');
    return `basic:${d.slice(0, Math.max(d.indexOf(':'), 0))}`;
  }
  return scheme?.toLowerCase();
}

const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');

const MANIFEST_PATH = /^\/v2\/.+\/manifests\/[^/]+$/;
const RATE_WINDOW = 21600;

/** Starts the emulation of `profile` (see the file comment). */
export async function startEmulatedRegistry(profile: EmulatedProfile, opts: EmulationOptions = {}): Promise<EmulatedRegistry> {
  const def = profileDef(profile);
  const tls = await realHostTls();
  const realmHost = def.realmHost ?? def.host;
  // Only ACR hands out refresh tokens (its identity tokens); the others answer docker login's
  // offline_token=true with an access token alone, so docker (and ferry) keep the password.
  const tokens = def.token ? await createTokenIssuer({ issueRefreshTokens: profile === 'acr', ...def.token, users: def.users, policy: def.policy }) : undefined;
  let backend: RealRegistry | undefined;
  try {
    backend = def.ecr
      ? await startRegistry('htpasswd', { htpasswdUsers: Object.fromEntries(Object.entries(def.users).map(([u, p]) => [u, sha256hex(p)])) })
      : await startRegistry('token', {
        tokenAuth: { realm: `https://${realmHost}${def.token!.realmPath}`, service: def.token!.service, issuer: tokens!.issuer, rootCertBundle: tokens!.rootCertBundle },
      });
  } catch (e) {
    tokens?.remove();
    throw e;
  }
  const be = backend;
  const backendPort = Number(new URL(be.url).port);
  const hosts = [def.host, ...(def.realmHost ? [def.realmHost] : [])];
  const frontLog: FrontRecord[] = [];
  const budget = opts.rateLimit ?? 1000;
  const rateLimit: RateLimit | undefined = def.rateLimited
    ? {
      limit: budget, remaining: budget, gets: 0, heads: 0,
      reset(n = budget) {
        this.limit = n;
        this.remaining = n;
        this.gets = 0;
        this.heads = 0;
      },
    }
    : undefined;
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 64 });

  const rateHeaders = (rl: RateLimit): Record<string, string> => ({
    'ratelimit-limit': `${rl.limit};w=${RATE_WINDOW}`,
    'ratelimit-remaining': `${Math.max(rl.remaining, 0)};w=${RATE_WINDOW}`,
    'docker-ratelimit-source': '127.0.0.1',
  });

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const url = new URL(req.url ?? '/', 'https://front.invalid');
    const rec: FrontRecord = { method: req.method ?? '', host, path: url.pathname, status: 0 };
    const auth = authOf(req.headers.authorization);
    if (auth) rec.auth = auth;
    frontLog.push(rec);
    res.on('finish', () => {
      rec.status = res.statusCode;
      const ch = res.getHeader('www-authenticate');
      if (ch !== undefined) rec.challenge = String(ch);
    });
    if (tokens && host === realmHost && url.pathname === def.token!.realmPath) return tokens.handle(req, res);
    if (host !== def.host) {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such endpoint on ${host}\n`);
      return;
    }
    const manifest = rateLimit && MANIFEST_PATH.test(url.pathname) && (req.method === 'GET' || req.method === 'HEAD');
    if (manifest && req.method === 'GET' && rateLimit!.remaining <= 0) {
      rateLimit!.gets++;
      req.resume();
      res.writeHead(429, { 'content-type': 'application/json', ...rateHeaders(rateLimit!) });
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit' }] }));
      return;
    }
    const headers: IncomingHttpHeaders = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': host };
    if (def.ecr && req.headers.authorization) {
      // distribution's htpasswd holds sha256(password): see the file comment.
      const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization);
      const d = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const c = d.indexOf(':');
      headers.authorization = c < 0 ? 'Basic invalid' : `Basic ${Buffer.from(`${d.slice(0, c)}:${sha256hex(d.slice(c + 1))}`).toString('base64')}`;
    }
    const up = httpRequest({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers, agent }, (br) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(br.headers)) if (v !== undefined) out[k] = v;
      const loc = br.headers.location;
      if (loc) out.location = loc.replace(/^https?:\/\/(127\.0\.0\.1|localhost):\d+/, `https://${def.host}`).replace(/^http:\/\//, 'https://');
      const ch = br.headers['www-authenticate'];
      if (ch && def.challenge) out['www-authenticate'] = def.challenge(challengeParams(ch), url.pathname);
      if (out['www-authenticate'] !== undefined) rec.challenge = String(out['www-authenticate']);
      if (manifest && rateLimit) {
        if (req.method === 'GET' && br.statusCode === 200) rateLimit.remaining--;
        if (req.method === 'GET') rateLimit.gets++;
        else rateLimit.heads++;
        Object.assign(out, rateHeaders(rateLimit));
      }
      if (def.ecr && br.statusCode === 401) {
        br.resume();
        delete out['content-length'];
        out['content-type'] = 'text/plain; charset=utf-8';
        res.writeHead(401, out).end('Not Authorized\n');
        return;
      }
      res.writeHead(br.statusCode ?? 502, out);
      br.pipe(res);
    });
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front: backend failed: ${e.message}\n`);
    });
    req.pipe(up);
  };

  let server: Server;
  try {
    server = createHttpsServer({ cert: readFileSync(tls.serverCert), key: readFileSync(tls.serverKey) }, handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
  } catch (e) {
    await be.stop();
    tokens?.remove();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    profile, host: def.host, registry: def.registry ?? def.host, hosts, port,
    resolveArgs: hosts.flatMap((h) => ['--resolve', `${h}:443:127.0.0.1:${port}`]),
    caFile: tls.caCert, env: { NODE_EXTRA_CA_CERTS: tls.caCert },
    login: def.login, logins: def.logins, namespace: def.namespace,
    ...(def.publicRepo ? { publicRepo: def.publicRepo } : {}),
    ...(def.token ? { realm: `https://${realmHost}${def.token.realmPath}`, service: def.token.service } : {}),
    ...(tokens ? { tokens } : {}),
    ...(rateLimit ? { rateLimit } : {}),
    frontLog, backend: be,
    stop() {
      stopped ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        agent.destroy();
        await be.stop();
        tokens?.remove();
      })();
      return stopped;
    },
  };
}
