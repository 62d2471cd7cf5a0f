/**
 * Bearer-token exchange with a registry token server (distribution `docs/spec/auth/token.md`,
 * `oauth.md`), independent of any HTTP library: the caller supplies a TokenTransport.
 *
 * Flows:
 * - anonymous / basic: `GET <realm>?service=S&scope=A&scope=B[&account=USER]` (one `scope` param
 *   per scope; `service` omitted when the challenge had none — Artifact Registry on `/v2/`;
 *   `account` only with basic, as distribution's `fetchTokenWithBasicAuth`), with
 *   `Authorization: Basic base64(user:pass)` for basic credentials.
 * - identity-token (docker `identitytoken`, helper `<token>` user): OAuth2 `POST <realm>` form
 *   `grant_type=refresh_token&refresh_token=…&service=…&client_id=…&scope=<ONE space-separated
 *   field>` (oauth.md). A server that does not take the POST (400 other than `invalid_grant`,
 *   404, 405: Harbor answers 405) gets a GET instead, with Basic when the entry also holds a
 *   username and password (go-containerregistry's rule; Harbor then issues a token for that user),
 *   else anonymous. A 401, or 400 `invalid_grant`, means the identity token itself was refused
 *   (expired, revoked: ACR's refresh tokens last hours): that is E_UNAUTHORIZED saying so, never a
 *   silent anonymous token whose later 401/403 would blame the user's permissions.
 *   An identity token is never sent as a Basic password.
 * - `offline` (ferry login): the GET also asks `client_id=…&offline_token=true`, as docker login
 *   does, so a registry that issues refresh tokens returns one (stored as `identitytoken`).
 * - Registry profile facts (ref/registry-profiles.ts) come in as `noPost` (Harbor: GET at once),
 *   `badCredentialsStatus` (IBM answers a wrong password with 400) and `loginHint`.
 * - registry-token (docker `registrytoken`): no exchange; returned as-is (moby
 *   `existingTokenHandler`, go-containerregistry `refresh`).
 *
 * Response: `access_token` preferred over `token`; `expires_in` defaults to / is clamped up to 60;
 * `issued_at` and `refresh_token` passed through. Bodies over 64 KiB are rejected (ggcr
 * `maxTokenBodySize`). Errors: 401 → E_UNAUTHORIZED, 403 → E_DENIED, other non-2xx / bad JSON / no
 * token → E_UNAUTHORIZED. No message ever contains the credential's secret.
 */
import type { Credential } from './credential.js';
import { credentialSecrets } from './credential.js';
import { FerryError, hasCode, isAbortError, isFerryError } from '../errors.js';
import { redactText, redactUrl } from '../util/redact.js';

export interface TokenRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export type TokenTransport = (
  req: TokenRequest,
  signal?: AbortSignal,
) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;

export interface FetchTokenArgs {
  realm: string;
  service?: string;
  scopes: string[];
  credential: Credential;
  /** OAuth2 client_id; default 'ferry'. */
  clientId?: string;
  signal?: AbortSignal;
  /** Ask for a refresh token as well (`docker login`'s `offline_token=true`): `ferry login`. */
  offline?: boolean;
  /** The token endpoint refuses the OAuth2 POST (registry profile: Harbor): GET at once. */
  noPost?: boolean;
  /** What the token endpoint answers a wrong user/password with when that is not 401 (IBM: 400). */
  badCredentialsStatus?: number;
  /** How people log in to this registry (registry profile), for the hint of a rejected login. */
  loginHint?: string;
}

export interface TokenResult {
  token: string;
  expiresInSec: number;
  issuedAt?: string;
  refreshToken?: string;
  /** OAuth2 `scope` of the answer (granted scopes), when the server states it. */
  scope?: string;
}

export const MAX_TOKEN_BODY_BYTES = 64 * 1024;
const FALLBACK_STATUSES = new Set([400, 404, 405]);

function realmHost(realm: string): string {
  try {
    return new URL(realm).host;
  } catch {
    return realm;
  }
}

/** A short, redacted description from a token-server error body (distribution errors, OAuth, Hub). */
function errorDetail(body: string, secrets: string[]): string {
  let detail = '';
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const first = Array.isArray(j['errors']) ? (j['errors'][0] as Record<string, unknown> | undefined) : undefined;
    const pick = [first?.['message'], j['error_description'], j['details'], j['message'], j['error']].find(
      (v) => typeof v === 'string' && v !== '',
    );
    if (typeof pick === 'string') detail = pick;
  } catch {
    detail = body.replace(/\s+/g, ' ');
  }
  detail = redactText(detail.trim(), secrets);
  return detail.length > 200 ? `${detail.slice(0, 200)}…` : detail;
}

/** Exchanges `credential` for a bearer token at `realm`. */
export async function fetchToken(transport: TokenTransport, args: FetchTokenArgs): Promise<TokenResult> {
  const { credential: cred } = args;
  if (cred.kind === 'registry-token') return { token: cred.token, expiresInSec: 60 };

  const secrets = credentialSecrets(cred);
  const host = realmHost(args.realm);
  let base: URL;
  try {
    base = new URL(args.realm);
  } catch (cause) {
    throw new FerryError('E_REGISTRY', `invalid token realm ${JSON.stringify(args.realm)}`, { cause });
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new FerryError('E_REGISTRY', `token realm ${redactUrl(base)} is not http(s)`);
  }
  const scopes = args.scopes.filter((s) => s !== '');

  const send = async (req: TokenRequest): ReturnType<TokenTransport> => {
    try {
      return await transport(req, args.signal);
    } catch (e) {
      if (hasCode(e, 'E_SIZE_MISMATCH')) {
        throw new FerryError('E_UNAUTHORIZED', `token request to ${host} returned a body larger than ${MAX_TOKEN_BODY_BYTES} bytes`, { cause: e });
      }
      if (isAbortError(e) || isFerryError(e)) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new FerryError('E_NETWORK', `token request to ${host} failed: ${redactText(msg, secrets)}`, { cause: e });
    }
  };

  const getRequest = (withBasic: boolean): TokenRequest => {
    const u = new URL(base);
    if (args.service) u.searchParams.append('service', args.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = cred.kind === 'basic' ? cred : cred.kind === 'identity-token' && cred.username && cred.password ? { username: cred.username, password: cred.password } : undefined;
    if (withBasic && basic) {
      u.searchParams.append('account', basic.username);
      headers['authorization'] = `Basic ${Buffer.from(`${basic.username}:${basic.password}`, 'utf8').toString('base64')}`;
      if (args.offline) {
        u.searchParams.append('client_id', args.clientId ?? 'ferry');
        u.searchParams.append('offline_token', 'true');
      }
    }
    return { method: 'GET', url: u.toString(), headers };
  };

  let res;
  let post = false;
  if (cred.kind === 'identity-token' && !args.noPost) {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', cred.token);
    if (args.service) form.set('service', args.service);
    form.set('client_id', args.clientId ?? 'ferry');
    if (scopes.length > 0) form.set('scope', scopes.join(' '));
    res = await send({
      method: 'POST',
      url: base.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
    });
    post = true;
    if (res.status === 401 || (res.status === 400 && /invalid_grant/.test(res.body))) {
      const d = errorDetail(res.body, secrets);
      throw new FerryError('E_UNAUTHORIZED', `the identity token${cred.source ? ` from ${cred.source}` : ''} was rejected by ${host} (HTTP ${res.status}${d ? `: ${d}` : ''}): it has expired or was revoked`, {
        status: res.status,
        hint: 'log in again for a fresh one (ferry login REGISTRY, docker login; for Azure: az acr login --name NAME)',
      });
    }
    if (FALLBACK_STATUSES.has(res.status)) {
      // The server does not take the OAuth2 POST (Harbor: 405): ask with GET, as the user when
      // the entry also holds a password.
      res = await send(getRequest(true));
      post = false;
    }
  } else {
    res = await send(getRequest(true));
  }

  const how = post ? 'OAuth2 token request' : 'token request';
  const status = res.status;
  if (Buffer.byteLength(res.body, 'utf8') > MAX_TOKEN_BODY_BYTES) {
    throw new FerryError('E_UNAUTHORIZED', `${how} to ${host} returned a body larger than ${MAX_TOKEN_BODY_BYTES} bytes (HTTP ${status})`, { status });
  }
  const from = cred.source ? ` (credentials from ${cred.source})` : '';
  const hasSecret = cred.kind === 'basic' || (cred.kind === 'identity-token' && !post);
  if (status === 401 || (hasSecret && args.badCredentialsStatus !== undefined && status === args.badCredentialsStatus)) {
    const d = errorDetail(res.body, secrets);
    throw new FerryError('E_UNAUTHORIZED', `authentication failed for ${host}: ${d || `HTTP ${status}`}`, {
      status,
      hint:
        cred.kind === 'anonymous'
          ? `the registry requires credentials: ${args.loginHint ?? 'ferry login REGISTRY'}, or pass --creds`
          : `check the credentials for this registry${from}; they were rejected by ${host}${status === 401 ? '' : ` (it answers a wrong user or password with HTTP ${status})`}${args.loginHint ? `; ${args.loginHint}` : ''}`,
    });
  }
  if (status === 403) {
    const d = errorDetail(res.body, secrets);
    throw new FerryError('E_DENIED', `access denied by ${host}${d ? `: ${d}` : ''} (scopes: ${scopes.join(' ') || 'none'})`, {
      status,
      hint: `the credentials${from} are valid but lack permission for the requested scopes`,
    });
  }
  if (status < 200 || status > 299) {
    const d = errorDetail(res.body, secrets);
    // A token service that is down or overloaded is a registry failure (exit 5), not an
    // authentication one (exit 3): the credentials were never judged.
    const code = status === 429 ? 'E_RATE_LIMITED' : status >= 500 ? 'E_REGISTRY' : 'E_UNAUTHORIZED';
    throw new FerryError(code, `${how} to ${host} failed with HTTP ${status}${d ? `: ${d}` : ''}`, {
      status, ...(code === 'E_UNAUTHORIZED' ? {} : { hint: `the registry's token service at ${host} is failing; try again later` }),
    });
  }

  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(res.body);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    doc = parsed as Record<string, unknown>;
  } catch {
    throw new FerryError('E_UNAUTHORIZED', `${how} to ${host} returned a response that is not a JSON object (HTTP ${status})`, { status });
  }
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const token = str(doc['access_token']) || str(doc['token']);
  if (!token) throw new FerryError('E_UNAUTHORIZED', `${how} to ${host} returned no token`, { status });
  const rawExp = typeof doc['expires_in'] === 'string' ? Number(doc['expires_in']) : doc['expires_in'];
  const expiresIn = typeof rawExp === 'number' && Number.isFinite(rawExp) ? rawExp : 60;
  const out: TokenResult = { token, expiresInSec: Math.max(expiresIn, 60) };
  if (str(doc['issued_at'])) out.issuedAt = str(doc['issued_at']);
  if (str(doc['refresh_token'])) out.refreshToken = str(doc['refresh_token']);
  if (str(doc['scope'])) out.scope = str(doc['scope']);
  return out;
}
