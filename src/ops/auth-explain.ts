/**
 * `ferry auth explain REF`: how ferry would authenticate to REF's registry, and what it would be
 * allowed to do there, found out the way a pull and a push would, without printing any secret.
 *
 * 1. Credentials: the choice a pull (source side) and a push (destination side) would make —
 *    bindings, --authfile, --keychain, DOCKER_AUTH_CONFIG, docker config (auths / credHelpers /
 *    credsStore), podman auth files, cloud CLIs, anonymous — as kind, user name and source.
 * 2. Pull: `HEAD /v2/<repo>/manifests/<tag|digest>` with scope `repository:<repo>:pull`. HEAD is
 *    what Docker Hub does not count against the pull limit. 200/404 = allowed (404: authorised,
 *    but nothing under that name), 401/403 = not.
 * 3. Push: `POST /v2/<repo>/blobs/uploads/` with scope `repository:<repo>:pull,push` — the first
 *    request of every push — and, when the registry opened a session, `DELETE` of it at once, so
 *    nothing is written. 202 = allowed, 401/403 = not.
 * The challenge (scheme, realm, service) and the token requests (scopes asked; scopes granted as
 * the token states them: distribution's JWT `access` claim, or OAuth2 `scope`) are observed from
 * the session's auth layer; tokens are decoded in memory and never shown.
 */
import type { AuthEvent } from '../http/auth.js';
import { FerryError, isAbortError, isFerryError } from '../errors.js';
import { parseReference, profileForChallenge, profileFor, profileValue, type ImageReference, type RegistryProfile } from '../ref/index.js';
import type { CredentialInfo, RegistryClient } from '../registry/client.js';
import type { RateLimit } from '../registry/rate-limit.js';
import { type OpContext, withSession } from './context.js';

export interface AccessCheck {
  /** null: the registry's answer did not say (e.g. a 5xx). */
  allowed: boolean | null;
  /** HTTP status of the check request. */
  status?: number;
  /** What was asked of the token server (empty for Basic or open registries). */
  scopesAsked: string[];
  /** As the token states them; null when the token does not say (opaque token, Basic). */
  scopesGranted: string[] | null;
  /** The request that decided `allowed`. */
  checkedBy: string;
  /** Why not, in one line (the registry's or token server's message). */
  reason?: string;
}

export interface AuthExplainResult {
  registry: string;
  repository: string;
  apiHost: string;
  /** The registry's row of ref/registry-profiles.ts, `{host}` filled in (minus the host pattern). */
  profile?: Omit<RegistryProfile, 'hosts'>;
  credentials: { pull: CredentialInfo; push: CredentialInfo };
  /** The registry's challenge; null when it asked for no authentication. */
  challenge: { scheme: string; realm?: string; service?: string } | null;
  pull: AccessCheck;
  push: AccessCheck;
  /** The pull budget the registry announced on the pull check (Docker Hub). */
  rateLimit?: RateLimit;
}

/** The `access` claim of a distribution JWT as scope strings, or null if the token is not one. */
export function grantedScopes(token: string, oauthScope?: string): string[] | null {
  const parts = token.split('.');
  if (parts.length === 3) {
    try {
      const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { access?: unknown };
      if (Array.isArray(claims.access)) {
        return claims.access
          .filter((a): a is { type: string; name: string; actions: unknown } => typeof a === 'object' && a !== null && typeof (a as { type?: unknown }).type === 'string' && typeof (a as { name?: unknown }).name === 'string')
          .map((a) => `${a.type}:${a.name}:${Array.isArray(a.actions) ? a.actions.filter((x) => typeof x === 'string').join(',') : ''}`);
      }
    } catch {
      // not a JWT after all
    }
  }
  if (oauthScope) return oauthScope.split(' ').filter(Boolean);
  return null;
}

interface SideLog {
  challenge?: Extract<AuthEvent, { kind: 'challenge' }>['challenge'];
  tokens: Array<Extract<AuthEvent, { kind: 'token' }>>;
}

async function check(
  client: RegistryClient, log: SideLog, scopes: string[], what: string,
  run: () => Promise<{ status: number; headers?: Record<string, string | string[] | undefined>; ok: boolean | null; reason?: string }>,
): Promise<{ access: AccessCheck; headers?: Record<string, string | string[] | undefined> }> {
  void client;
  const before = log.tokens.length;
  let status: number | undefined;
  let allowed: boolean | null = null;
  let reason: string | undefined;
  let headers: Record<string, string | string[] | undefined> | undefined;
  try {
    const r = await run();
    status = r.status;
    allowed = r.ok;
    headers = r.headers;
    if (r.reason) reason = r.reason;
  } catch (e) {
    if (isAbortError(e)) throw e;
    // A refused token exchange is the answer to "would this be allowed": no. Network trouble is not.
    if (!isFerryError(e) || !['E_UNAUTHORIZED', 'E_DENIED'].includes(e.code)) throw e;
    allowed = false;
    reason = e.message;
    if (typeof e.status === 'number') status = e.status;
  }
  const tok = log.tokens.slice(before).reverse().find((t) => t.scopes.some((s) => scopes.includes(s))) ?? log.tokens.slice(before).at(-1);
  const access: AccessCheck = {
    allowed,
    ...(status !== undefined ? { status } : {}),
    scopesAsked: tok ? tok.scopes : [],
    scopesGranted: tok ? grantedScopes(tok.grant.token, tok.grant.scope) : null,
    checkedBy: what,
    ...(reason ? { reason } : {}),
  };
  return { access, ...(headers ? { headers } : {}) };
}

function registryReason(status: number, body: string): string | undefined {
  if (status < 400) return undefined;
  try {
    const j = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    const e = j.errors?.[0];
    if (e) return `HTTP ${status} ${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`.trim();
  } catch {
    // not JSON
  }
  const t = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `HTTP ${status}${t ? `: ${t}` : ''}`;
}

async function bodyText(res: { body: NodeJS.ReadableStream; bytes?: Buffer }): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    if (n < 64 * 1024) chunks.push(c);
    n += c.length;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, 64 * 1024);
}

export async function authExplain(input: string, ctx: OpContext): Promise<AuthExplainResult> {
  const ref: ImageReference = parseReference(input.replace(/^docker:\/\//, ''));
  // One log: the checks run one after the other, and both sides may share one client.
  const log: SideLog = { tokens: [] };
  return withSession({
    ...ctx,
    observeAuth: (registry, _side, e) => {
      if (registry !== ref.registry) return;
      if (e.kind === 'challenge') log.challenge ??= e.challenge;
      else if (e.kind === 'token') log.tokens.push(e);
    },
  }, async (s) => {
    const puller = s.registry(ref, 'source');
    const pusher = s.registry(ref, 'destination');
    const repo = ref.repository;
    const target = ref.digest ?? ref.tag ?? 'latest';
    const pullScope = `repository:${repo}:pull`;
    const pushScope = `repository:${repo}:pull,push`;

    const pull = await check(puller, log, [pullScope], `HEAD /v2/${repo}/manifests/${target}`, async () => {
      const res = await puller.request({ method: 'HEAD', url: puller.url(`/v2/${repo}/manifests/${target}`), scopes: [pullScope], headers: { accept: '*/*' }, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      puller.noteRateLimit(res);
      await res.dump();
      const ok = res.status === 200 || res.status === 404 ? true : res.status === 401 || res.status === 403 ? false : null;
      return {
        status: res.status, headers: res.headers, ok,
        ...(res.status === 404 ? { reason: `no manifest ${target} in ${repo} (the request itself was authorised)` } : {}),
        ...(ok === false ? { reason: `the registry answered HEAD with ${res.status}` } : {}),
      };
    });

    const push = await check(pusher, log, [pushScope], `POST /v2/${repo}/blobs/uploads/ (then DELETE of the session)`, async () => {
      const res = await pusher.request({ method: 'POST', url: pusher.url(`/v2/${repo}/blobs/uploads/`), scopes: [pushScope], headers: { 'content-length': '0' }, body: '', followRedirects: false, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      const text = res.status >= 400 ? await bodyText(res) : (await res.dump(), '');
      if (res.status === 202) {
        const loc = res.header('location');
        if (loc) {
          const url = new URL(loc, res.url);
          const del = await pusher.request({ method: 'DELETE', url, scopes: [pushScope], ...(ctx.signal ? { signal: ctx.signal } : {}) }).catch(() => undefined);
          await del?.dump();
        }
        return { status: 202, ok: true };
      }
      const ok = res.status === 201 ? true : res.status === 401 || res.status === 403 ? false : null;
      const reason = registryReason(res.status, text);
      return { status: res.status, ok, ...(reason ? { reason } : {}) };
    });

    const ch = log.challenge;
    const profile = profileForChallenge(ref.registry, ch?.params['realm'], ch?.params['service']) ?? profileFor(ref.registry);
    const result: AuthExplainResult = {
      registry: ref.registry,
      repository: repo,
      apiHost: ref.apiHost(),
      ...(profile ? { profile: profileFacts(profile, ref.registry) } : {}),
      credentials: { pull: await infoOf(puller), push: await infoOf(pusher) },
      challenge: ch ? { scheme: ch.scheme, ...(ch.params['realm'] ? { realm: ch.params['realm'] } : {}), ...(ch.params['service'] ? { service: ch.params['service'] } : {}) } : null,
      pull: pull.access,
      push: push.access,
      ...(puller.rateLimit() ? { rateLimit: puller.rateLimit()! } : {}),
    };
    return result;
  });
}

async function infoOf(c: RegistryClient): Promise<CredentialInfo> {
  if (!c.opts.credentialInfo) throw new FerryError('E_INTERNAL', 'registry client without credential information');
  return c.opts.credentialInfo();
}

function profileFacts(p: RegistryProfile, registry: string): Omit<RegistryProfile, 'hosts'> {
  const { hosts: _h, realm, service, ...rest } = p;
  const r = profileValue(realm, registry);
  const sv = profileValue(service, registry);
  return { ...rest, ...(r ? { realm: r } : {}), ...(sv ? { service: sv } : {}) };
}
