/**
 * An oci-archive or docker-archive written sequentially to something that is not a regular file:
 * a pipe (`-o -`, /dev/stdout), a FIFO, a character device. Same entries in the same order as
 * the positional file writer (image-archive.ts), through tar-stream's pack (archive/tar-pack.ts),
 * so the bytes are the same.
 *
 * Nothing leaves unverified: blobs still download concurrently, each into its own spool file in
 * a private directory under os.tmpdir() (TMPDIR), verified there with the file writer's
 * resuming, hashing region writer; the pump then copies them into the stream in tar order and
 * deletes each spool as soon as it is sent. Memory stays bounded (streams, never whole blobs);
 * disk holds at most the blobs that arrived ahead of the one being sent. Any failure (a blob,
 * the consumer going away, SIGINT) stops the stream where it is: no trailer, so the consumer
 * sees a truncated tar, and the command exits non-zero.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exitCleanup } from '../util/exit-cleanup.js';
import { FerryError, isAbortError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { digestHex, type Digest } from '../oci/digest.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import { type ImageArchiveEntry, type ImageArchiveFormat, planImageArchive } from '../archive/image-archive.js';
import { type ByteSink, TarPackWriter } from '../archive/tar-pack.js';
import { writeVerifiedRegion } from '../util/verified-write.js';
import { verifyBytes } from '../util/verify-stream.js';
import { ioError } from '../util/fs-errors.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, PutBlobOptions, TransferPlan } from './types.js';

interface Spool {
  digest: Digest;
  size: number;
  file: string;
  state: 'pending' | 'writing' | 'done';
  ready: Promise<void>;
  resolve: () => void;
}

/** Both archive formats hold several images and take layers as they are; a docker-archive's
 * manifest.json describes one platform per image. */
export function archiveCapabilities(format: ImageArchiveFormat): DestinationCapabilities {
  return { concurrentWrites: true, compressedLayers: false, multipleImages: true, platforms: format === 'docker-archive' ? 'one' : 'index', mount: false };
}

export class ArchiveStreamDestination implements ImageDestination {
  readonly capabilities: DestinationCapabilities;
  private readonly spools = new Map<string, Spool>();
  /** Manifests whose bytes are in the plan. */
  private readonly inPlan = new Set<string>();
  private readonly closing = new AbortController();
  private writer: TarPackWriter | undefined;
  private pump: Promise<void> | undefined;
  private dir: string | undefined;
  private state: 'new' | 'prepared' | 'committed' | 'closed' = 'new';

  constructor(
    readonly format: ImageArchiveFormat,
    readonly description: string,
    /** Opens the output (a FIFO blocks here until a reader comes). */
    private readonly openSink: () => Promise<ByteSink>,
    private readonly where: string,
  ) {
    this.capabilities = archiveCapabilities(format);
  }

  async prepare(plan: TransferPlan, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'new') throw new FerryError('E_INTERNAL', `${this.description}: prepare() called twice`);
    this.state = 'prepared';
    const entries = planImageArchive(plan, this.format);
    this.dir = await mkdtemp(join(tmpdir(), 'ferry-stream-')).catch((e: unknown) => {
      throw new FerryError('E_IO', `cannot create a temp directory under ${tmpdir()} to stage blobs for ${this.where}: ${(e as Error).message}`, { cause: e, hint: 'set TMPDIR to a writable directory' });
    });
    exitCleanup.add(this.dir);
    for (const e of entries) {
      if (e.kind === 'manifest') this.inPlan.add(e.digest);
      if (e.kind !== 'blob') continue;
      let resolve!: () => void;
      const ready = new Promise<void>((r) => (resolve = r));
      this.spools.set(e.digest, { digest: e.digest, size: e.size, file: join(this.dir, digestHex(e.digest)), state: 'pending', ready, resolve });
    }
    signal?.throwIfAborted();
    let sink: ByteSink;
    try {
      sink = await this.openSink();
    } catch (e) {
      throw isAbortError(e) ? e : ioError(e, this.where);
    }
    this.writer = new TarPackWriter(sink);
    this.pump = this.run(entries);
    // A failed pump (the consumer went away) stops every download at once.
    this.pump.catch((e: unknown) => this.closing.abort(e));
  }

  /** True only for a blob that is also a planned manifest (its bytes came with the plan). */
  async hasBlob(d: Descriptor): Promise<boolean> {
    return this.inPlan.has(d.digest) && !this.spools.has(d.digest);
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<void> {
    if (this.state !== 'prepared') throw new FerryError('E_INTERNAL', `${this.description}: putBlob(${d.digest}) in state ${this.state}`);
    const s = this.spools.get(d.digest);
    if (!s) throw new FerryError('E_INTERNAL', `${this.description}: blob ${d.digest} was not announced in the transfer plan`);
    if (s.state === 'done') return;
    if (s.state === 'writing') throw new FerryError('E_INTERNAL', `${this.description}: blob ${d.digest} is already being written`);
    if (d.size !== s.size) throw new FerryError('E_SIZE_MISMATCH', `blob ${d.digest}: descriptor says ${d.size} bytes, the transfer plan announced ${s.size}`);
    this.closing.signal.throwIfAborted();
    s.state = 'writing';
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.closing.signal]) : this.closing.signal;
    try {
      const fh = await open(s.file, 'w+', 0o600).catch((e: unknown) => {
        throw ioError(e, s.file);
      });
      try {
        await writeVerifiedRegion(fh, 0, { digest: d.digest, size: d.size }, (offset, sig) => src.open(offset, sig), {
          path: s.file, signal, what: `blob ${d.digest}`, isRetryable: isRetryableNetworkError,
          writeError: (e) => spoolError(e, s.file),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
          ...(opts.onReceived ? { onReceived: opts.onReceived } : {}),
        });
      } finally {
        await fh.close().catch(() => {});
      }
      s.state = 'done';
      s.resolve();
    } catch (e) {
      s.state = 'pending';
      throw e;
    }
  }

  async putManifest(bytes: Uint8Array, d: Descriptor, _opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void> {
    if (this.state !== 'prepared') throw new FerryError('E_INTERNAL', `${this.description}: putManifest(${d.digest}) in state ${this.state}`);
    verifyBytes(bytes, d, `manifest ${d.digest}`);
  }

  async commit(signal?: AbortSignal): Promise<void> {
    if (this.state !== 'prepared' || !this.pump) throw new FerryError('E_INTERNAL', `${this.description}: commit() in state ${this.state}`);
    const missing = [...this.spools.values()].filter((s) => s.state !== 'done');
    if (missing.length > 0) throw new FerryError('E_INTERNAL', `${this.description}: ${missing.length} announced blob(s) were never written, e.g. ${missing[0]!.digest}`);
    signal?.throwIfAborted();
    const onAbort = (): void => this.closing.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.pump;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    this.state = 'committed';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const committed = this.state === 'committed';
    this.state = 'closed';
    if (!committed) {
      this.closing.abort(new FerryError('E_INTERRUPTED', `${this.description}: closed before commit`));
      this.writer?.abort();
      for (const s of this.spools.values()) s.resolve(); // wake the pump; it sees the abort
    }
    await this.pump?.catch(() => {});
    if (this.dir) {
      await rm(this.dir, { recursive: true, force: true }).catch(() => {});
      exitCleanup.delete(this.dir);
    }
  }

  /** Writes every entry in order; a blob waits until its spool is verified, then is sent and deleted. */
  private async run(entries: ImageArchiveEntry[]): Promise<void> {
    const w = this.writer!;
    const signal = this.closing.signal;
    try {
      for (const e of entries) {
        signal.throwIfAborted();
        if (e.kind === 'directory') await w.add(e);
        else if (e.kind === 'file' || e.kind === 'manifest') await w.add(e, e.content);
        else {
          const s = this.spools.get(e.digest)!;
          await s.ready;
          signal.throwIfAborted();
          await w.add(e, createReadStream(s.file, { highWaterMark: 1 << 20, signal }));
          await rm(s.file, { force: true });
        }
      }
      await w.finish();
    } catch (e) {
      w.abort();
      if (signal.aborted && signal.reason !== undefined && !isFerryLike(e)) throw signal.reason;
      throw isAbortError(e) ? e : sinkError(e, this.where);
    }
  }
}

/** A write to the output failed: EPIPE means the reader went away before the end. */
function sinkError(e: unknown, where: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED') {
    return new FerryError('E_IO', `${where}: the reader closed the stream before the archive was complete`, { cause: e });
  }
  return ioError(e, where);
}

function isFerryLike(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'FerryError';
}

/** The spool is ours, not the user's output: say so (TMPDIR is the knob). */
function spoolError(e: unknown, file: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new FerryError('E_NO_SPACE', `no space left staging a blob in ${tmpdir()} (${file})`, { cause: e, hint: 'streamed archives stage blobs under TMPDIR; point it at a directory with more room' });
  }
  return ioError(e, file);
}

