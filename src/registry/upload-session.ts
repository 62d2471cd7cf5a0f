/**
 * Upload sessions (protocol.md §1.4): opening, closing, status and cancelling, and how a failed
 * step is classified (a stale session is started again; DIGEST_INVALID / SIZE_INVALID are
 * verification failures; a closing PUT that fails after the retries is `failed`, for a resume).
 * The status GET (`uploadStatus`) never throws for the registry's trouble: it answers a range, a
 * gone session, or an error the caller words. Every request asks for `repository:<repo>:pull,push`.
 */
import { FerryError, isFerryError } from '../errors.js';
import type { HttpResponse } from '../http/types.js';
import type { RepositoryClient } from './client.js';
import { isResumableStatus, resumableError } from './upload-resume.js';
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

/** A step that failed in a way the session may survive (upload-resume.ts): ask for the status, then resume. */
export type Failed = { kind: 'failed'; err: FerryError };

/**
 * `PUT <location>&digest=<d>` with an empty body: closes a chunked/streamed session. A network
 * error the retry middleware gave up on, a 408/429/5xx or a 416 is `failed` (resumable).
 */
export async function closeUpload(
  repo: RepositoryClient, session: UploadSession, digest: string, o: { subject: string; signal: AbortSignal | undefined },
): Promise<Outcome | Failed> {
  let res: HttpResponse;
  try {
    res = await repo.registry.request({
      method: 'PUT', url: withDigest(session.location, digest), signal: o.signal, scopes: pushScopes(repo),
      headers: { 'content-type': OCTET, 'content-length': '0' }, body: new Uint8Array(0),
    });
  } catch (e) {
    const err = resumableError(e, o.signal);
    if (!err) throw e;
    return { kind: 'failed', err };
  }
  if (res.status === 201 || res.status === 204) {
    await res.dump();
    return { kind: 'done' };
  }
  const err = await failWrite(repo, res, { action: 'uploading blob', subject: o.subject });
  if (isResumableStatus(res.status)) return { kind: 'failed', err };
  return staleOrThrow(err);
}

/** What `GET <location>` said: the registry's inclusive end (undefined: no Range), the session is gone, or no usable answer. */
export type UploadStatus =
  | { kind: 'range'; end: number | undefined }
  | { kind: 'gone'; err: FerryError }
  | { kind: 'error'; err: FerryError };

/**
 * `GET <location>` → 204 + `Range: 0-<end>` (+ `Location`, which becomes the session's): where the
 * registry stands. 404 / BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID: the session is gone. Any other
 * answer, an unreadable Range, or a network error (after the retry middleware's attempts) is
 * `error`. The caller interprets `0-0` (0 or 1 byte) and bounds the end by what it sent.
 */
export async function uploadStatus(repo: RepositoryClient, session: UploadSession, subject: string, signal: AbortSignal | undefined): Promise<UploadStatus> {
  let res: HttpResponse;
  try {
    res = await repo.registry.request({ method: 'GET', url: session.location, signal, scopes: pushScopes(repo) });
  } catch (e) {
    if (signal?.aborted || !isFerryError(e)) throw e;
    return { kind: 'error', err: e };
  }
  if (res.status !== 204 && res.status !== 200) {
    const err = await failWrite(repo, res, { action: 'asking for the upload status', subject });
    return isStaleSession(err.status ?? 0, err.registryCodes) ? { kind: 'gone', err } : { kind: 'error', err };
  }
  await res.dump();
  const h = res.header('range');
  const end = parseUploadRange(h);
  if (h !== undefined && end === undefined) {
    return { kind: 'error', err: new FerryError('E_REGISTRY', `${subject}: the upload status carries an unreadable Range ${JSON.stringify(h.slice(0, 40))}`) };
  }
  session.location = uploadLocation(res, session.location);
  return { kind: 'range', end };
}

export function staleOrThrow(err: FerryError): { kind: 'stale'; err: FerryError } {
  if (isStaleSession(err.status ?? 0, err.registryCodes)) return { kind: 'stale', err };
  throw mapUploadError(err);
}

/** DIGEST_INVALID / SIZE_INVALID from the registry are verification failures, not registry trouble. */
export function mapUploadError(err: FerryError): FerryError {
  const code = err.registryCodes.includes('DIGEST_INVALID') ? 'E_DIGEST_MISMATCH' : err.registryCodes.includes('SIZE_INVALID') ? 'E_SIZE_MISMATCH' : undefined;
  if (!code || err.status !== 400) return err;
  return new FerryError(code, err.message, { ...(err.status ? { status: err.status } : {}), registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}) });
}
