/**
 * Blob upload of known digest (protocol.md §1.4 upload flows, §2.5 scopes); sessions are in
 * upload-session.ts, existence checks and mounts in blob-mount.ts.
 *
 * Contracts:
 * - Every request asks for `repository:<repo>:pull,push` (a mount adds `repository:<from>:pull`),
 *   so one token serves the HEADs, the POST and every PATCH/PUT of a push.
 * - Blob bytes are never buffered: request bodies are factories that re-open the source at the
 *   offset they need (`open(offset)`), so a retry (the retry middleware re-invokes the factory on
 *   ECONNRESET & co.) re-reads the source instead of replaying memory.
 * - Each step uses the latest `Location` the registry returned (it may be relative, absolute, on
 *   another host, and carry `_state`); `digest=` is appended to its query, never assembled.
 * - A failed upload DELETEs its session (errors ignored). Sessions are also recorded in an optional
 *   tracker so a destination's close() can remove any that are still open.
 * - Bytes sent are counted against the descriptor: a source that is shorter or longer fails with
 *   E_SIZE_MISMATCH before the last bytes leave, so the registry never commits a wrong blob. The
 *   registry checks the digest on the closing PUT (400 DIGEST_INVALID → E_DIGEST_MISMATCH); the
 *   monolithic path also hashes locally and withholds the final bytes on a mismatch.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { profileFor } from '../ref/index.js';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, hashAlgorithmFor } from '../oci/digest.js';
import type { HttpResponse, RequestBody } from '../http/types.js';
import type { RepositoryClient } from './client.js';
import { blobExists } from './blob-mount.js';
import { progressReporter, slice } from './upload-body.js';
import { failWrite, isStaleSession, parseUploadRange, pushScopes, repoSubject, uploadLocation, withDigest } from './push-util.js';
import { isResumableStatus, MAX_STALLED_RESUMES, resumableError, ResumeState } from './upload-resume.js';
import {
  cancelUpload, closeUpload, OCTET, openUpload, staleOrThrow, uploadStatus, type Failed, type Outcome, type SessionTracker, type UploadSession,
} from './upload-session.js';

/** Chunk size when chunking is needed and nobody asked for a size (regclient's default). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Smallest chunk ferry shrinks to after a 413 on a PATCH (unless the registry's minimum is larger). */
const MIN_CHUNK_SIZE = 64 * 1024;
/** Upload sessions started for one blob before giving up (stale Location after a reset, etc.). */
const MAX_SESSIONS = 3;

type BlobRef = Pick<Descriptor, 'digest' | 'size'>;

export interface UploadBlobOptions {
  /** Forces chunked mode (PATCH … PUT) with chunks of this many bytes (raised to the registry's minimum). */
  chunkSize?: number;
  signal?: AbortSignal;
  /** New bytes handed to the network (retries and resumes are not counted twice). */
  onProgress?: (delta: number) => void;
  /** Upload into this already open session (a mount answered 202) instead of POSTing a new one. */
  session?: UploadSession;
  tracker?: SessionTracker;
}


/**
 * Uploads a blob whose digest is known.
 * - Monolithic (default): POST → `PUT <location>&digest=<d>` with the whole body, Content-Length,
 *   no Content-Range (openai/tart#179) → 201 (or 204, regclient accepts it). The empty blob is
 *   sent with no body.
 * - Chunked when `chunkSize` is given, when the session advertises `OCI-Chunk-Min-Length`, or after
 *   a 413 on the monolithic PUT: PATCHes with `Content-Range: <start>-<end>` (inclusive, no
 *   `bytes=`) and Content-Length, then `PUT ?digest=` with an empty body. The offset is tracked
 *   here; `Range` answers are only a cross-check (distribution says 0-0 for 0 and 1 byte, ECR's can
 *   be stale). A 413 on a PATCH halves the chunk (a proxy's body limit). PATCH answered 201 is
 *   accepted (ECR).
 * - A connection reset is retried by the retry middleware, which re-invokes the body factory (the
 *   source is re-opened at the chunk's offset, from 0 for a monolithic PUT).
 * - Resume (chunked only, upload-resume.ts): a PATCH or closing PUT that still fails after the
 *   retry middleware's attempts (network error, 408/429/5xx), a 416, or a stale answer to a
 *   PATCH the retry middleware had re-sent (the lost answer may have been a 202) → GET status
 *   (204 + Range + Location) → continue from the registry's offset in the same session, never past
 *   the bytes sent; a few resumes without progress end with the original error saying where the
 *   upload stopped. A monolithic PUT that fails mid-body after the retries is not resumed.
 * - If the registry refuses the Location as stale or unknown on a first attempt, or the status
 *   says the session is gone (distribution cancels a session resumed at a wrong offset, also
 *   after a cut body it stored part of), or reports more than was sent, the blob is HEADed (the
 *   lost answer may have been a success) and otherwise uploaded again in a new session, at most
 *   MAX_SESSIONS times.
 * - On failure the session is DELETEd (errors ignored) and the error rethrown.
 */
export async function uploadBlob(
  repo: RepositoryClient, d: BlobRef, open: (offset: number) => Promise<Readable>, opts: UploadBlobOptions = {},
): Promise<void> {
  const subject = `${repoSubject(repo)}@${d.digest}`;
  const report = progressReporter(opts.onProgress);
  let session = opts.session;
  if (session) opts.tracker?.add(session);
  let forceChunked = false;
  for (let attempt = 1; ; attempt++) {
    session ??= await openUpload(repo, opts);
    let outcome: Outcome;
    try {
      for (;;) {
        const chunked = forceChunked || opts.chunkSize !== undefined || session.chunkMinLength !== undefined;
        outcome = chunked
          ? await putChunked(repo, session, d, open, { subject, report, chunkSize: opts.chunkSize, signal: opts.signal })
          : await putMonolithic(repo, session, d, open, { subject, report, signal: opts.signal });
        if (outcome.kind !== 'too-large') break;
        forceChunked = true; // the registry (or a proxy in front) refused the whole body in one request
      }
    } catch (e) {
      await cancelUpload(repo, session, opts.tracker);
      throw e;
    }
    if (outcome.kind === 'done') {
      opts.tracker?.delete(session);
      return;
    }
    // The session is gone or its Location went stale (typically after a retried request).
    await cancelUpload(repo, session, opts.tracker);
    session = undefined;
    if (await blobExists(repo, d, { signal: opts.signal })) return;
    if (attempt >= MAX_SESSIONS) {
      throw new FerryError('E_REGISTRY', `${subject}: the registry lost the upload session ${attempt} times (${outcome.err.message})`, {
        cause: outcome.err, ...(outcome.err.status ? { status: outcome.err.status } : {}), registryCodes: outcome.err.registryCodes,
      });
    }
  }
}

/**
 * Chunk size for a chunked upload to `registry`: the size asked for (default 1 MiB), raised to the
 * session's `OCI-Chunk-Min-Length` and to the registry profile's minimum (ECR: every part but the
 * last ≥ 5 MiB, S3 multipart underneath), lowered to the profile's maximum (GHCR refuses PATCH
 * bodies over 4 MiB; ECR parts ≤ 20 MiB). `floor`: the least a 413 may halve it to.
 */
export function chunkBounds(registry: string, requested: number | undefined, sessionMin: number | undefined): { chunk: number; floor: number } {
  const p = profileFor(registry)?.chunk;
  const min = Math.max(sessionMin ?? 0, p?.min ?? 0);
  const max = p?.max ?? Infinity;
  const chunk = Math.min(Math.max(requested ?? DEFAULT_CHUNK_SIZE, min, 1), Math.max(max, min));
  return { chunk, floor: Math.min(Math.max(min, MIN_CHUNK_SIZE), chunk) };
}

// ---- internals ---------------------------------------------------------------------------------

interface StepOptions {
  subject: string;
  report: (position: number) => void;
  signal: AbortSignal | undefined;
}

async function putMonolithic(
  repo: RepositoryClient, session: UploadSession, d: BlobRef, open: (offset: number) => Promise<Readable>, o: StepOptions,
): Promise<Outcome> {
  let hashable = true;
  try {
    hashAlgorithmFor(d.digest as Digest);
  } catch {
    hashable = false; // unknown algorithm: the registry still checks it
  }
  const body: RequestBody = d.size === 0
    ? new Uint8Array(0)
    : async () => slice(await open(0), {
      start: 0, length: d.size, total: d.size, final: true, what: o.subject, report: o.report,
      ...(hashable ? { verify: { digest: d.digest as Digest, hash: createHash(hashAlgorithmFor(d.digest as Digest)) } } : {}),
    });
  const res = await repo.registry.request({
    method: 'PUT', url: withDigest(session.location, d.digest), signal: o.signal, scopes: pushScopes(repo), body,
    headers: { 'content-type': OCTET, 'content-length': String(d.size) },
  });
  if (res.status === 201 || res.status === 204) {
    await res.dump();
    return { kind: 'done' };
  }
  if (res.status === 413 && d.size > 0) {
    await res.dump();
    return { kind: 'too-large' };
  }
  return staleOrThrow(await failWrite(repo, res, { action: 'uploading blob', subject: o.subject }));
}

async function putChunked(
  repo: RepositoryClient, session: UploadSession, d: BlobRef, open: (offset: number) => Promise<Readable>,
  o: StepOptions & { chunkSize: number | undefined },
): Promise<Outcome> {
  const bounds = chunkBounds(repo.registry.opts.registry, o.chunkSize, session.chunkMinLength);
  const floor = bounds.floor;
  let chunk = bounds.chunk;
  let offset = 0;
  const resume = new ResumeState(d.size);
  const report = (position: number) => {
    resume.noteSent(position);
    o.report(position);
  };
  for (;;) {
    let failure: FerryError;
    if (offset < d.size) {
      const step = await patchChunk(repo, session, d, open, { ...o, report }, offset, Math.min(chunk, d.size - offset));
      if (step.kind === 'accepted') {
        offset = step.offset;
        continue;
      }
      if (step.kind === 'too-large' && chunk > floor) {
        chunk = Math.max(floor, Math.floor(chunk / 2));
        continue;
      }
      if (step.kind === 'too-large') return staleOrThrow(step.err);
      if (step.kind === 'stale') return step;
      failure = step.err;
    } else {
      const closed = await closeUpload(repo, session, d.digest, o);
      if (closed.kind !== 'failed') return closed;
      failure = closed.err;
    }
    // The step failed after the retry middleware's attempts: ask the registry where it stands.
    const st = await uploadStatus(repo, session, o.subject, o.signal);
    if (st.kind === 'gone') return { kind: 'stale', err: failure };
    if (st.kind === 'error') throw resume.gaveUp(o.subject, failure, offset, statusFailure(o.subject, st.err));
    const point = resume.point(st.end);
    if ('corrupt' in point) {
      return { kind: 'stale', err: new FerryError('E_REGISTRY', `${o.subject}: the registry reports ${point.corrupt} bytes received after ${resume.sent} were sent`) };
    }
    if (!resume.admit(point.at)) {
      throw resume.gaveUp(o.subject, failure, point.at, `${resume.resumes} resumes in the same session, the last ${MAX_STALLED_RESUMES} without progress`);
    }
    offset = point.at;
  }
}

/** Why the status could not be asked, without repeating the subject. */
function statusFailure(subject: string, err: FerryError): string {
  const m = err.message.startsWith(`${subject}: `) ? err.message.slice(subject.length + 2) : err.message;
  return m.startsWith('asking for the upload status') ? m : `asking for the upload status failed: ${m}`;
}

type PatchStep =
  | { kind: 'accepted'; offset: number }
  | { kind: 'too-large'; err: FerryError }
  | Extract<Outcome, { kind: 'stale' }>
  | Failed;

/** One PATCH of `length` bytes at `start`, classified (a stale answer to a re-sent PATCH is `failed`: ask first). */
async function patchChunk(
  repo: RepositoryClient, session: UploadSession, d: BlobRef, open: (offset: number) => Promise<Readable>, o: StepOptions,
  start: number, length: number,
): Promise<PatchStep> {
  let attempts = 0;
  let res: HttpResponse;
  try {
    res = await repo.registry.request({
      method: 'PATCH', url: session.location, signal: o.signal, scopes: pushScopes(repo),
      headers: { 'content-type': OCTET, 'content-range': `${start}-${start + length - 1}`, 'content-length': String(length) },
      body: async () => {
        attempts++; // the retry middleware re-invokes the factory for every attempt
        return slice(await open(start), { start, length, total: d.size, final: start + length === d.size, what: o.subject, report: o.report });
      },
    });
  } catch (e) {
    const err = resumableError(e, o.signal);
    if (!err) throw e;
    return { kind: 'failed', err };
  }
  if (res.status === 202 || res.status === 201 || res.status === 204) {
    session.location = uploadLocation(res, session.location);
    await res.dump();
    const offset = start + length;
    // Cross-check only: a registry claiming MORE than was sent has a corrupted session.
    const end = parseUploadRange(res.header('range'));
    if (end !== undefined && end + 1 > offset) {
      return { kind: 'stale', err: new FerryError('E_REGISTRY', `${o.subject}: the registry reports ${end + 1} bytes received after ${offset} were sent`) };
    }
    return { kind: 'accepted', offset };
  }
  if (res.status === 416) {
    await res.dump();
    return { kind: 'failed', err: new FerryError('E_REGISTRY', `${o.subject}: the registry refused bytes ${start}-${start + length - 1} of the upload (416)`, { status: 416 }) };
  }
  const err = await failWrite(repo, res, { action: 'uploading blob', subject: o.subject });
  if (res.status === 413) return { kind: 'too-large', err };
  if (isResumableStatus(res.status)) return { kind: 'failed', err };
  // A re-sent PATCH refused as stale: the first attempt may have been applied (its answer lost).
  if (attempts > 1 && isStaleSession(err.status ?? 0, err.registryCodes)) return { kind: 'failed', err };
  return staleOrThrow(err);
}
