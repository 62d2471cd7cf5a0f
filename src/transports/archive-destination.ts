import { createWriteStream } from 'node:fs';
import { type FileHandle, link, open, rename, rm, unlink } from 'node:fs/promises';
import { isatty } from 'node:tty';
import { exitCleanup } from '../util/exit-cleanup.js';
import { dirname, resolve } from 'node:path';
import { FerryError, isAbortError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import { type ImageArchiveFormat, planImageArchive } from '../archive/image-archive.js';
import { writeAt, writeVerifiedRegion } from '../util/verified-write.js';
import { WriteBehind } from '../util/write-behind.js';
import { layoutTar } from '../archive/tar-layout.js';
import { verifyBytes } from '../util/verify-stream.js';
import { ioError } from '../util/fs-errors.js';
import { type ByteSink, writableSink } from '../archive/tar-pack.js';
import { archiveCapabilities, ArchiveStreamDestination } from './archive-stream.js';

export { archiveCapabilities };
import { classifyOutput, createError, ensureFreeSpace, removeDeadTemps, tempNameFor, type StatFs } from './fs-util.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, PutBlobOptions, TransferPlan } from './types.js';

export interface ArchiveDestinationOptions {
  /** Free-space probe for the target's directory (tests inject one); default fs.promises.statfs. */
  statfs?: StatFs;
  /** Refuse (E_USAGE) when a regular file is already at the target. */
  noClobber?: boolean;
}

interface Slot {
  digest: Digest;
  size: number;
  dataOffset: number;
  /** manifest: bytes came with the plan and were written by prepare(). */
  kind: 'blob' | 'manifest';
  state: 'pending' | 'writing' | 'done';
}

/**
 * Writes an oci-archive or docker-archive (image-archive.ts). prepare() first looks at what is
 * at the path (fs-util.ts classifyOutput): anything but a regular file or nothing (a FIFO, a
 * character device, stdout) is handed to ArchiveStreamDestination (archive-stream.ts), which
 * writes the same bytes sequentially; a directory is refused. For a regular file (a symlink is
 * followed: the file it points to is replaced, the link stays), in one pass with no staging:
 * prepare() lays out the whole tar from the plan (every size is known), checks free space, creates
 * the file under a temp name beside the target at its final length and writes every header and
 * every small file whose bytes are known (oci-layout, index.json, manifest.json, repositories,
 * manifests). Each putBlob then streams straight to its data offset with positional writes,
 * concurrently with other blobs, verifying size and digest as it goes and resuming at the durable
 * offset after a retryable network error; writeback starts as they go (write-behind.ts).
 * commit() checks that every blob arrived, fsyncs and renames the temp file over the target;
 * until then an existing target is untouched. close() without commit (failure, abort, SIGINT)
 * removes the temp file; a process exit removes it too.
 */
export class ImageArchiveDestination implements ImageDestination {
  readonly description: string;
  readonly capabilities: DestinationCapabilities;
  private readonly slots = new Map<string, Slot>();
  private readonly active = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private fh: FileHandle | undefined;
  private writeBehind: WriteBehind | undefined;
  private tmp: string | undefined;
  private state: 'new' | 'prepared' | 'committed' | 'closed' = 'new';
  /** Set by prepare() when the target is not a regular file: every call goes there instead. */
  private stream: ArchiveStreamDestination | undefined;
  private existed = false;
  private didReplace = false;
  private target: string;

  constructor(
    readonly format: ImageArchiveFormat,
    readonly path: string,
    private readonly opts: ArchiveDestinationOptions = {},
  ) {
    this.description = `${format}:${path}`;
    this.capabilities = archiveCapabilities(format);
    this.target = resolve(path);
  }

  /** True once commit() renamed the archive over a regular file that was already there. */
  get replaced(): boolean {
    return this.didReplace;
  }

  /** Where the bytes went: `file` (temp + rename) or `stream` (written sequentially). */
  get mode(): 'file' | 'stream' | undefined {
    return this.state === 'new' ? undefined : this.stream ? 'stream' : 'file';
  }

  async prepare(plan: TransferPlan, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'new') throw new FerryError('E_INTERNAL', `${this.description}: prepare() called ${this.state === 'closed' ? 'after close()' : 'twice'}`);
    this.state = 'prepared';
    const entries = planImageArchive(plan, this.format);
    const out = await classifyOutput(this.path);
    if (out.kind === 'directory') throw directoryError(this.target, this.format);
    if (out.kind === 'stream') {
      this.stream = new ArchiveStreamDestination(this.format, this.description, () => openOutputStream(out), out.path === '-' ? 'stdout' : out.path);
      return this.stream.prepare(plan, signal);
    }
    // A symlink is followed: the file it resolves to is replaced, the link stays.
    this.target = out.path;
    this.existed = out.exists;
    if (out.exists && this.opts.noClobber) throw clobberError(this.path);
    const layout = layoutTar(entries);
    await this.checkSpace(layout.size);
    signal?.throwIfAborted();

    // An earlier run of this machine that was killed (SIGKILL: no cleanup ran) left its temp.
    await removeDeadTemps(this.target);
    const tmp = tempNameFor(this.target);
    try {
      this.fh = await open(tmp, 'wx', 0o644);
    } catch (e) {
      throw await createError(e, dirname(this.target), this.target);
    }
    this.tmp = tmp;
    exitCleanup.add(tmp);
    try {
      await this.fh.truncate(layout.size);
      this.writeBehind = new WriteBehind(this.fh);
      for (const l of layout.entries) {
        const e = l.entry;
        if (e.kind === 'blob' || e.kind === 'manifest') {
          this.slots.set(e.digest, { digest: e.digest, size: e.size, dataOffset: l.dataOffset, kind: e.kind, state: e.kind === 'manifest' ? 'done' : 'pending' });
        }
        // Header and known content in one write; padding and the trailer are zeros already.
        await writeAt(this.fh, e.kind === 'file' || e.kind === 'manifest' ? [l.header, Buffer.from(e.content)] : l.header, l.headerOffset);
        signal?.throwIfAborted();
      }
    } catch (e) {
      throw isAbortError(e) ? e : ioError(e, this.target);
    }
  }

  /** True only for content already in the archive (a blob that is also a planned manifest). */
  async hasBlob(d: Descriptor): Promise<boolean> {
    if (this.stream) return this.stream.hasBlob(d);
    return this.slots.get(d.digest)?.state === 'done';
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<void> {
    if (this.stream) return this.stream.putBlob(d, src, opts);
    const fh = this.fh;
    if (this.state !== 'prepared' || !fh || !this.tmp) {
      throw new FerryError('E_INTERNAL', `${this.description}: putBlob(${d.digest}) ${this.state === 'new' ? 'before prepare()' : `after ${this.state === 'committed' ? 'commit()' : 'close()'}`}`);
    }
    const slot = this.slots.get(d.digest);
    if (!slot) throw new FerryError('E_INTERNAL', `${this.description}: blob ${d.digest} was not announced in the transfer plan`);
    if (slot.state === 'done') return;
    if (slot.state === 'writing') throw new FerryError('E_INTERNAL', `${this.description}: blob ${d.digest} is already being written`);
    if (d.size !== slot.size) {
      throw new FerryError('E_SIZE_MISMATCH', `blob ${d.digest}: descriptor says ${d.size} bytes, the transfer plan announced ${slot.size}`);
    }
    slot.state = 'writing';
    const signal = opts.signal ? AbortSignal.any([opts.signal, this.closing.signal]) : this.closing.signal;
    const run = writeVerifiedRegion(fh, slot.dataOffset, { digest: d.digest, size: d.size }, (offset, s) => src.open(offset, s), {
      path: this.tmp, signal, what: `blob ${d.digest}`, isRetryable: isRetryableNetworkError,
      writeError: (e) => ioError(e, this.target),
      ...(this.writeBehind ? { writeBehind: this.writeBehind } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.onReceived ? { onReceived: opts.onReceived } : {}),
    });
    const tracked = run.then(() => {}, () => {});
    this.active.add(tracked);
    try {
      await run;
      slot.state = 'done';
    } catch (e) {
      slot.state = 'pending';
      throw e;
    } finally {
      this.active.delete(tracked);
    }
  }

  async putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void> {
    if (this.stream) return this.stream.putManifest(bytes, d, opts);
    if (this.state !== 'prepared') throw new FerryError('E_INTERNAL', `${this.description}: putManifest(${d.digest}) ${this.state === 'new' ? 'before prepare()' : 'after the archive was finished'}`);
    const slot = this.slots.get(d.digest);
    if (!slot || slot.kind !== 'manifest') throw new FerryError('E_INTERNAL', `${this.description}: manifest ${d.digest} was not announced in the transfer plan`);
    // prepare() already wrote the plan's bytes for this digest; these must be the same content.
    verifyBytes(bytes, d, `manifest ${d.digest}`);
  }

  async commit(signal?: AbortSignal): Promise<void> {
    if (this.stream) {
      await this.stream.commit(signal);
      this.state = 'committed';
      return;
    }
    const fh = this.fh;
    if (this.state !== 'prepared' || !fh || !this.tmp) throw new FerryError('E_INTERNAL', `${this.description}: commit() ${this.state === 'new' ? 'before prepare()' : 'called twice or after close()'}`);
    if (this.active.size > 0) throw new FerryError('E_INTERNAL', `${this.description}: commit() while ${this.active.size} blob(s) are still being written`);
    const missing = [...this.slots.values()].filter((s) => s.state !== 'done');
    if (missing.length > 0) {
      throw new FerryError('E_INTERNAL', `${this.description}: ${missing.length} announced blob(s) were never written, e.g. ${missing[0]!.digest}`);
    }
    signal?.throwIfAborted();
    try {
      await this.writeBehind?.finish();
      await fh.sync();
      this.fh = undefined;
      await fh.close();
      if (this.opts.noClobber) await linkNoClobber(this.tmp, this.target, this.path);
      else await rename(this.tmp, this.target);
    } catch (e) {
      throw ioError(e, this.target);
    }
    exitCleanup.delete(this.tmp);
    this.state = 'committed';
    this.didReplace = this.existed;
    await syncDir(dirname(this.target));
  }

  async close(): Promise<void> {
    if (this.stream) {
      this.state = 'closed';
      return this.stream.close();
    }
    if (this.state === 'closed') return;
    const committed = this.state === 'committed';
    this.state = 'closed';
    this.closing.abort(new FerryError('E_INTERRUPTED', `${this.description}: closed before commit`));
    await Promise.allSettled([...this.active]);
    const fh = this.fh;
    this.fh = undefined;
    await this.writeBehind?.finish().catch(() => {});
    await fh?.close().catch(() => {});
    if (this.tmp && !committed) {
      await rm(this.tmp, { force: true }).catch(() => {});
      exitCleanup.delete(this.tmp);
    }
  }

  private checkSpace(need: number): Promise<void> {
    return ensureFreeSpace(dirname(this.target), need, this.target, this.opts.statfs);
  }
}

/** `docker-archive:FILE`: the Docker ≥25 hybrid archive (OCI layout + manifest.json). */
export class DockerArchiveDestination extends ImageArchiveDestination {
  constructor(path: string, opts: ArchiveDestinationOptions = {}) {
    super('docker-archive', path, opts);
  }
}

/** `oci-archive:FILE`: a tar of an OCI image layout. */
export class OciArchiveDestination extends ImageArchiveDestination {
  constructor(path: string, opts: ArchiveDestinationOptions = {}) {
    super('oci-archive', path, opts);
  }
}

function directoryError(target: string, format: ImageArchiveFormat): FerryError {
  return new FerryError('E_USAGE', `${target} is a directory; ${format} writes a single tar file`, {
    hint: `name a file, e.g. ${target.replace(/\/+$/, '')}/image.tar${format === 'oci-archive' ? ', or write an oci: layout directory' : ''}`,
  });
}

/** `--json` while the archive goes to stdout: two documents on one stream. */
export function jsonWithStdoutError(): FerryError {
  return new FerryError('E_USAGE', '--json cannot be used when the archive goes to stdout', { hint: 'write the archive to a file (-o FILE.tar), or drop --json (the summary then goes to stderr)' });
}

export function clobberError(path: string): FerryError {
  return new FerryError('E_USAGE', `${path} already exists (--no-clobber)`, { hint: 'remove it, choose another path, or drop --no-clobber to replace it' });
}

/**
 * --no-clobber's final step: link(2) fails if the target appeared meanwhile, so a file created
 * between prepare() and commit() is never replaced; then the temp name goes.
 */
async function linkNoClobber(tmp: string, target: string, shown: string): Promise<void> {
  try {
    await link(tmp, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw clobberError(shown);
    throw e;
  }
  await unlink(tmp);
}

/** Opens a stream target: a descriptor we hold (stdout…) or a FIFO/device path. */
async function openOutputStream(out: { path: string; fd?: number }): Promise<ByteSink> {
  if (out.fd === 1 || out.fd === 2) {
    const w = out.fd === 1 ? process.stdout : process.stderr;
    if (isatty(out.fd)) {
      throw new FerryError('E_USAGE', `refusing to write an archive to a terminal (${out.fd === 1 ? 'stdout' : 'stderr'})`, { hint: 'redirect it (> file.tar, | docker load) or name a file with -o' });
    }
    return writableSink(w, { end: false });
  }
  if (out.fd !== undefined) return writableSink(createWriteStream('', { fd: out.fd, autoClose: false }), { end: true });
  const fh = await open(out.path, 'w');
  return writableSink(fh.createWriteStream({ highWaterMark: 1 << 20 }), { end: true });
}

/** Makes the rename durable; best effort (some filesystems refuse fsync on a directory). */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r').catch(() => undefined);
  if (!h) return;
  await h.sync().catch(() => {});
  await h.close().catch(() => {});
}

