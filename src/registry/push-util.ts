/**
 * Small pieces shared by the push side (upload.ts, manifest-put.ts): scopes, subjects, error
 * mapping for writes, and upload-session URL handling (protocol.md §1.4, §2.5).
 */
import { FerryError } from '../errors.js';
import { parseWwwAuthenticate } from '../auth/challenge.js';
import type { ErrorContext } from '../http/registry-errors.js';
import type { HttpResponse } from '../http/types.js';
import type { RepositoryClient } from './client.js';

/** Push needs `pull,push` on the target (docker asks for both; the token is shared with HEADs). */
export function pushScopes(repo: RepositoryClient): string[] {
  return [`repository:${repo.name}:pull,push`];
}

/** `<registry>/<repository>`: how push errors name the repository. */
export function repoSubject(repo: RepositoryClient): string {
  return `${repo.registry.opts.registry}/${repo.name}`;
}

/**
 * registry.fail for write requests, with one refinement: a 401 whose challenge says
 * `error="insufficient_scope"` while credentials were sent means "valid login, no push right"
 * (distribution's token auth answers a read-only user that way), so it becomes E_DENIED rather
 * than "credentials rejected".
 */
export async function failWrite(repo: RepositoryClient, res: HttpResponse, ctx: Omit<ErrorContext, 'hadCredentials' | 'secrets'>): Promise<FerryError> {
  const err = await repo.registry.fail(res, ctx);
  if (res.status !== 401 || !(repo.registry.opts.hasCredentials?.() ?? false)) return err;
  const insufficient = parseWwwAuthenticate(res.headers['www-authenticate']).some((c) => c.params['error'] === 'insufficient_scope');
  if (!insufficient) return err;
  return new FerryError('E_DENIED', `${ctx.subject}: access denied while ${ctx.action} (insufficient_scope: the credentials lack this permission on the repository)`, {
    status: err.status, registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}),
    hint: 'the credentials are valid but lack permission for this repository',
  });
}

/**
 * The `Location` of an upload response, resolved against the request URL (it may be relative,
 * absolute, on another host, and carry required query parameters: never assembled by ferry).
 * Falls back to `previous` when a registry omits it on an intermediate step.
 */
export function uploadLocation(res: HttpResponse, previous?: URL): URL {
  const loc = res.header('location');
  if (loc) return new URL(loc, res.url);
  if (previous) return previous;
  throw new FerryError('E_REGISTRY', `upload answer ${res.status} from ${res.url.host} carries no Location header`);
}

/** `<location>` with `digest=<d>` appended, keeping the existing query verbatim (`?_state=…&digest=…`). */
export function withDigest(location: URL, digest: string): URL {
  const u = new URL(location);
  const param = `digest=${encodeURIComponent(digest)}`;
  u.search = u.search && u.search !== '?' ? `${u.search}&${param}` : `?${param}`;
  return u;
}

/**
 * Parses an upload `Range` header (`0-<end>`, or the old API text's `bytes=0-<end>`) into the end
 * offset, inclusive. distribution answers `0-0` both for 0 and 1 byte received, so callers track
 * the offset themselves and use this only as a cross-check (and for 416 recovery).
 */
export function parseUploadRange(h: string | undefined): number | undefined {
  if (!h) return undefined;
  const m = /^\s*(?:bytes=)?(\d+)-(\d+)\s*$/.exec(h);
  if (!m || Number(m[1]) !== 0) return undefined;
  const end = Number(m[2]);
  return Number.isSafeInteger(end) ? end : undefined;
}

/** Registry error codes saying an upload session is gone or its Location is stale. */
export function isStaleSession(status: number, codes: readonly string[]): boolean {
  if (status === 404) return true;
  return status === 400 && codes.some((c) => c === 'BLOB_UPLOAD_INVALID' || c === 'BLOB_UPLOAD_UNKNOWN');
}
