/**
 * Blob push (protocol.md §1.4 upload flows, §1.5 cross-repository mount, §2.5 scopes).
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
import { pipeline, type Readable, Transform } from 'node:stream';
import { FerryError, isAbortError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, hashAlgorithmFor } from '../oci/digest.js';
import type { HttpResponse, RequestBody } from '../http/types.js';
import type { RepositoryClient } from './client.js';
import { progressReporter, slice } from './upload-body.js';
import { failWrite, isStaleSession, parseUploadRange, pushScopes, repoSubject, uploadLocation, withDigest } from './push-util.js';

/** Chunk size when chunking is needed and nobody asked for a size (regclient's default). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Smallest chunk ferry shrinks to after a 413 on a PATCH (unless the registry's minimum is larger). */
const MIN_CHUNK_SIZE = 64 * 1024;
/** Upload sessions started for one blob before giving up (stale Location after a reset, etc.). */
const MAX_SESSIONS = 3;
/** 416 recoveries (GET status, resume) within one session. */
const MAX_RESUMES = 5;
/** Cleanup requests must not inherit an aborted signal, but must not hang either. */
const CLEANUP_TIMEOUT_MS = 10_000;
const OCTET = 'application/octet-stream';

/** An open upload session. `location` is updated after every step (always the latest). */
export interface UploadSession {
  location: URL;
  /** `OCI-Chunk-Min-Length` from the answer that opened the session: every chunk but the last is at least this big. */
  chunkMinLength?: number;
}

/** Open sessions, so an owner (RegistryDestination.close) can DELETE whatever is left. */
export type SessionTracker = Set<UploadSession>;

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

type BlobRef = Pick<Descriptor, 'digest' | 'size'>;

/**
 * HEAD `/v2/<repo>/blobs/<digest>` with push scopes: true on 200 with the descriptor's size (or no
 * Content-Length). Redirects are not followed: distribution with S3/GCS storage redirects HEADs to
 * a URL signed for GET only (the storage answers 403), and the redirect already says the blob
 * exists. Anything else is false: the upload that follows reports a real error with its body.
 */
export async function blobExists(repo: RepositoryClient, d: BlobRef, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  const res = await repo.registry.request({
    method: 'HEAD', url: repo.registry.url(`/v2/${repo.name}/blobs/${d.digest}`), signal: opts.signal,
    scopes: pushScopes(repo), followRedirects: false,
  });
  await res.dump();
  if (res.status === 200) {
    const n = res.header('content-length');
    return n === undefined || Number(n) === d.size;
  }
  return [301, 302, 303, 307, 308].includes(res.status) && res.header('location') !== undefined;
}

/** What a mount attempt gave: mounted, or not (with the session a 202 opened, to upload into). */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/**
 * Cross-repository mount: `POST /v2/<repo>/blobs/uploads/?mount=<d>&from=<fromRepo>` with scopes
 * `repository:<repo>:pull,push` + `repository:<from>:pull`. Only for a source repository on the
 * same registry (never across registries, go-containerregistry#219).
 * - 201: mounted, no bytes move.
 * - 202: not mounted, and the registry opened an upload session. Choice: the session is returned
 *   (and tracked) so the caller uploads into it rather than POSTing again (distribution-spec);
 *   the caller DELETEs it (cancelUpload) if it tries another candidate instead.
 * - Anything else, including errors: false without a session, never a failed push. Docker Hub
 *   answers 401 when `from` is inaccessible (go-containerregistry#1681), some registries 403
 *   (containerd#14086), Quay fails instead of 202; a token server may refuse the `from` scope.
 *   Only an abort is rethrown.
 */
export async function mountBlob(
  repo: RepositoryClient, d: BlobRef, fromRepo: string, opts: { signal?: AbortSignal; tracker?: SessionTracker } = {},
): Promise<MountResult> {
  const url = repo.registry.url(`/v2/${repo.name}/blobs/uploads/`);
  url.search = `?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(fromRepo)}`;
  let res: HttpResponse;
  try {
    res = await repo.registry.request({
      method: 'POST', url, signal: opts.signal, headers: { 'content-length': '0' }, body: new Uint8Array(0),
      scopes: [...pushScopes(repo), `repository:${fromRepo}:pull`],
    });
  } catch (e) {
    if (isAbortError(e) || opts.signal?.aborted) throw e;
    return { mounted: false };
  }
  await res.dump();
  if (res.status === 201) return { mounted: true };
  if (res.status === 202 && res.header('location')) {
    const session = sessionFrom(res);
    opts.tracker?.add(session);
    return { mounted: false, session };
  }
  return { mounted: false };
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

/**
 * Uploads a blob whose digest is known.
 * - Monolithic (default): POST → `PUT <location>&digest=<d>` with the whole body, Content-Length,
 *   no Content-Range (openai/tart#179) → 201 (or 204, regclient accepts it). The empty blob is
 *   sent with no body.
 * - Chunked when `chunkSize` is given, when the session advertises `OCI-Chunk-Min-Length`, or after
 *   a 413 on the monolithic PUT: PATCHes with `Content-Range: <start>-<end>` (inclusive, no
 *   `bytes=`) and Content-Length, then `PUT ?digest=` with an empty body. The offset is tracked
 *   here; `Range` answers are only a cross-check (distribution says 0-0 for 0 and 1 byte, ECR's can
 *   be stale). 416 → GET status (204 + Range) → resume from there. A 413 on a PATCH halves the
 *   chunk (a proxy's body limit). PATCH answered 201 is accepted (ECR).
 * - A connection reset is retried by the retry middleware, which re-invokes the body factory (the
 *   source is re-opened at the chunk's offset, from 0 for a monolithic PUT). If the registry then
 *   refuses the Location as stale or unknown (distribution cancels a session resumed at a wrong
 *   offset), the blob is HEADed (the lost answer may have been a success) and otherwise uploaded
 *   again in a new session, at most MAX_SESSIONS times.
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
 * Uploads content whose digest is not known in advance (e.g. compressed on the fly): POST, one
 * PATCH carrying the whole stream with no Content-Length and no Content-Range (chunked transfer
 * encoding: docker's streaming PATCH, DD-CLIENT blob_writer.go ReadFrom; go-containerregistry
 * streamBlob), hashing (sha256) and counting while sending, then `PUT ?digest=` with an empty body.
 * Not retryable: the stream can be read once, so the PATCH bypasses the retry middleware and a
 * second read of the body (re-auth) fails the upload; the caller retries with a fresh stream.
 */
export async function uploadStream(
  repo: RepositoryClient, stream: Readable, opts: { signal?: AbortSignal; tracker?: SessionTracker; onProgress?: (delta: number) => void } = {},
): Promise<{ digest: Digest; size: number }> {
  const session = await openUpload(repo, opts);
  const subject = repoSubject(repo);
  const hash = createHash('sha256');
  let size = 0;
  let used = false;
  try {
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        size += chunk.length;
        opts.onProgress?.(chunk.length);
        cb(null, chunk);
      },
    });
    const res = await repo.registry.request({
      method: 'PATCH', url: session.location, signal: opts.signal, scopes: pushScopes(repo), retry: false,
      headers: { 'content-type': OCTET },
      body: () => {
        if (used) throw new FerryError('E_REGISTRY', `${subject}: a streamed upload cannot be sent twice (the registry asked to repeat the request)`);
        used = true;
        return pipeline(stream, counter, () => {});
      },
    });
    if (res.status !== 202 && res.status !== 201 && res.status !== 204) {
      throw mapUploadError(await failWrite(repo, res, { action: 'uploading blob', subject }));
    }
    session.location = uploadLocation(res, session.location);
    await res.dump();
    const digest = `sha256:${hash.digest('hex')}` as Digest;
    const blobSubject = `${subject}@${digest}`;
    const end = await closeUpload(repo, session, digest, { subject: blobSubject, signal: opts.signal });
    if (end.kind === 'stale') throw end.err;
    opts.tracker?.delete(session);
    return { digest, size };
  } catch (e) {
    stream.destroy();
    await cancelUpload(repo, session, opts.tracker);
    throw e;
  }
}

// ---- internals ---------------------------------------------------------------------------------

type Outcome = { kind: 'done' } | { kind: 'too-large' } | { kind: 'stale'; err: FerryError };

interface StepOptions {
  subject: string;
  report: (position: number) => void;
  signal: AbortSignal | undefined;
}

function sessionFrom(res: HttpResponse): UploadSession {
  const session: UploadSession = { location: uploadLocation(res) };
  const min = Number(res.header('oci-chunk-min-length'));
  if (Number.isSafeInteger(min) && min > 0) session.chunkMinLength = min;
  return session;
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
  const min = session.chunkMinLength ?? 0;
  const floor = Math.max(min, MIN_CHUNK_SIZE);
  let chunk = Math.max(o.chunkSize ?? DEFAULT_CHUNK_SIZE, min, 1);
  let offset = 0;
  let resumes = 0;
  while (offset < d.size) {
    const start = offset;
    const length = Math.min(chunk, d.size - start);
    const res = await repo.registry.request({
      method: 'PATCH', url: session.location, signal: o.signal, scopes: pushScopes(repo),
      headers: { 'content-type': OCTET, 'content-range': `${start}-${start + length - 1}`, 'content-length': String(length) },
      body: async () => slice(await open(start), {
        start, length, total: d.size, final: start + length === d.size, what: o.subject, report: o.report,
      }),
    });
    if (res.status === 202 || res.status === 201 || res.status === 204) {
      session.location = uploadLocation(res, session.location);
      await res.dump();
      offset = start + length;
      // Cross-check only: a registry claiming MORE than was sent has a corrupted session.
      const end = parseUploadRange(res.header('range'));
      if (end !== undefined && end + 1 > offset) {
        return { kind: 'stale', err: new FerryError('E_REGISTRY', `${o.subject}: the registry reports ${end + 1} bytes received after ${offset} were sent`) };
      }
      continue;
    }
    if (res.status === 416 && resumes < MAX_RESUMES) {
      resumes++;
      await res.dump();
      const at = await uploadStatus(repo, session, offset, o.signal);
      if (at === undefined || at > d.size) {
        return { kind: 'stale', err: new FerryError('E_REGISTRY', `${o.subject}: cannot resume the upload (416, then no usable upload status)`) };
      }
      offset = at;
      continue;
    }
    if (res.status === 413 && chunk > floor) {
      await res.dump();
      chunk = Math.max(floor, Math.floor(chunk / 2));
      continue;
    }
    return staleOrThrow(await failWrite(repo, res, { action: 'uploading blob', subject: o.subject }));
  }
  return closeUpload(repo, session, d.digest, o);
}

/** `PUT <location>&digest=<d>` with an empty body: closes a chunked/streamed session. */
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

/**
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

function staleOrThrow(err: FerryError): Outcome {
  if (isStaleSession(err.status ?? 0, err.registryCodes)) return { kind: 'stale', err };
  throw mapUploadError(err);
}

/** DIGEST_INVALID / SIZE_INVALID from the registry are verification failures, not registry trouble. */
function mapUploadError(err: FerryError): FerryError {
  const code = err.registryCodes.includes('DIGEST_INVALID') ? 'E_DIGEST_MISMATCH' : err.registryCodes.includes('SIZE_INVALID') ? 'E_SIZE_MISMATCH' : undefined;
  if (!code || err.status !== 400) return err;
  return new FerryError(code, err.message, { ...(err.status ? { status: err.status } : {}), registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}) });
}
