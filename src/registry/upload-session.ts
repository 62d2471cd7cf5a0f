/**
 * Upload sessions (protocol.md §1.4): opening, closing, status and cancelling, and how a failed
 * step is classified (a stale session is started again; DIGEST_INVALID / SIZE_INVALID are
 * verification failures). Every request asks for `repository:<repo>:pull,push`.
 */
import { FerryError } from '../errors.js';
import type { HttpResponse } from '../http/types.js';
import type { RepositoryClient } from './client.js';
import { failWrite, isStaleSession, parseUploadRange, pushScopes, repoSubject, uploadLocation, withDigest } from './push-util.js';

/** Cleanup requests must not inherit an aborted signal, but must not hang either. */
const CLEANUP_TIMEOUT_MS = 10_000;
export const OCTET = 'application/octet-stream';

/** An open upload session. `location` is updated after every step (always the latest). */
export interface UploadSession {
  location: URL;
  /** `OCI-Chunk-Min-Length` from the answer that opened the session: every chunk but the last is at least this big. */
  chunkMinLength?: number;
}

/** Open sessions, so an owner (RegistryDestination.close) can DELETE whatever is left. */
export type SessionTracker = Set<UploadSession>;

/** How an upload step ended: done, refused as too large (413: go chunked), or the session went stale. */
export type Outcome = { kind: 'done' } | { kind: 'too-large' } | { kind: 'stale'; err: FerryError };

export function sessionFrom(res: HttpResponse): UploadSession {
  const session: UploadSession = { location: uploadLocation(res) };
  const min = Number(res.header('oci-chunk-min-length'));
  if (Number.isSafeInteger(min) && min > 0) session.chunkMinLength = min;
  return session;
}

/** `POST /v2/<repo>/blobs/uploads/` → 202 + Location: a new, tracked session. */
export async function openUpload(repo: RepositoryClient, opts: { signal?: AbortSignal; tracker?: SessionTracker } = {}): Promise<UploadSession> {
  const res = await repo.registry.request({
    method: 'POST', url: repo.registry.url(`/v2/${repo.name}/blobs/uploads/`), signal: opts.signal,
    headers: { 'content-length': '0' }, body: new Uint8Array(0), scopes: pushScopes(repo),
  });
  if (res.status !== 202) {
    throw await failWrite(repo, res, { action: 'starting a blob upload', subject: repoSubject(repo) });
  }
  await res.dump();
  const session = sessionFrom(res);
  opts.tracker?.add(session);
  return session;
}

/** DELETE an upload session (distribution-spec end-14); failures are ignored. Never uses the caller's (maybe aborted) signal. */
export async function cancelUpload(repo: RepositoryClient, session: UploadSession, tracker?: SessionTracker): Promise<void> {
  tracker?.delete(session);
  try {
    const res = await repo.registry.request({
      method: 'DELETE', url: session.location, signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS), scopes: pushScopes(repo), retry: false,
    });
    await res.dump();
  } catch {
    /* the registry garbage-collects abandoned sessions */
  }
}

export /** `PUT <location>&digest=<d>` with an empty body: closes a chunked/streamed session. */
async function closeUpload(
  repo: RepositoryClient, session: UploadSession, digest: string, o: { subject: string; signal: AbortSignal | undefined },
): Promise<Outcome> {
  const res = await repo.registry.request({
    method: 'PUT', url: withDigest(session.location, digest), signal: o.signal, scopes: pushScopes(repo),
    headers: { 'content-type': OCTET, 'content-length': '0' }, body: new Uint8Array(0),
  });
  if (res.status === 201 || res.status === 204) {
    await res.dump();
    return { kind: 'done' };
  }
  return staleOrThrow(await failWrite(repo, res, { action: 'uploading blob', subject: o.subject }));
}

export /**
 * `GET <location>` → 204 + `Range: 0-<end>` (+ Location): the registry's offset, or undefined.
 * `0-0` is ambiguous (0 or 1 byte); it is read as 1 only when ferry had sent at least 1 byte.
 */
async function uploadStatus(repo: RepositoryClient, session: UploadSession, sent: number, signal: AbortSignal | undefined): Promise<number | undefined> {
  const res = await repo.registry.request({ method: 'GET', url: session.location, signal, scopes: pushScopes(repo) });
  await res.dump();
  if (res.status !== 204 && res.status !== 200) return undefined;
  session.location = uploadLocation(res, session.location);
  const h = res.header('range');
  if (h === undefined) return 0;
  const end = parseUploadRange(h);
  if (end === undefined) return undefined;
  return end === 0 ? Math.min(1, sent) : end + 1;
}

export function staleOrThrow(err: FerryError): Outcome {
  if (isStaleSession(err.status ?? 0, err.registryCodes)) return { kind: 'stale', err };
  throw mapUploadError(err);
}

/** DIGEST_INVALID / SIZE_INVALID from the registry are verification failures, not registry trouble. */
export function mapUploadError(err: FerryError): FerryError {
  const code = err.registryCodes.includes('DIGEST_INVALID') ? 'E_DIGEST_MISMATCH' : err.registryCodes.includes('SIZE_INVALID') ? 'E_SIZE_MISMATCH' : undefined;
  if (!code || err.status !== 400) return err;
  return new FerryError(code, err.message, { ...(err.status ? { status: err.status } : {}), registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}) });
}
