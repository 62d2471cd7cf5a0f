import { unlinkSync } from 'node:fs';
import { type FileHandle, open, rename, rm, stat } from 'node:fs/promises';
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
import { ensureFreeSpace, tempNameFor, type StatFs } from './fs-util.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, PutBlobOptions, TransferPlan } from './types.js';

export interface ArchiveDestinationOptions {
  /** Free-space probe for the target's directory (tests inject one); default fs.promises.statfs. */
  statfs?: StatFs;
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
 * Writes an oci-archive or docker-archive (image-archive.ts) in one pass with no staging.
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
  private readonly target: string;
  private readonly slots = new Map<string, Slot>();
  private readonly active = new Set<Promise<void>>();
  private readonly closing = new AbortController();
  private fh: FileHandle | undefined;
  private writeBehind: WriteBehind | undefined;
  private tmp: string | undefined;
  private state: 'new' | 'prepared' | 'committed' | 'closed' = 'new';

  constructor(
    readonly format: ImageArchiveFormat,
    readonly path: string,
    private readonly opts: ArchiveDestinationOptions = {},
  ) {
    this.description = `${format}:${path}`;
    this.capabilities = archiveCapabilities(format);
    this.target = resolve(path);
  }

  async prepare(plan: TransferPlan, signal?: AbortSignal): Promise<void> {
    if (this.state !== 'new') throw new FerryError('E_INTERNAL', `${this.description}: prepare() called ${this.state === 'closed' ? 'after close()' : 'twice'}`);
    this.state = 'prepared';
    const entries = planImageArchive(plan, this.format);
    const layout = layoutTar(entries);
    await this.checkTarget();
    await this.checkSpace(layout.size);
    signal?.throwIfAborted();

    const tmp = tempNameFor(this.target);
    try {
      this.fh = await open(tmp, 'wx', 0o644);
    } catch (e) {
      throw ioError(e, this.target);
    }
    this.tmp = tmp;
    liveTemps.add(tmp);
    installExitHook();
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
    return this.slots.get(d.digest)?.state === 'done';
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<void> {
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

  async putManifest(bytes: Uint8Array, d: Descriptor, _opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void> {
    if (this.state !== 'prepared') throw new FerryError('E_INTERNAL', `${this.description}: putManifest(${d.digest}) ${this.state === 'new' ? 'before prepare()' : 'after the archive was finished'}`);
    const slot = this.slots.get(d.digest);
    if (!slot || slot.kind !== 'manifest') throw new FerryError('E_INTERNAL', `${this.description}: manifest ${d.digest} was not announced in the transfer plan`);
    // prepare() already wrote the plan's bytes for this digest; these must be the same content.
    verifyBytes(bytes, d, `manifest ${d.digest}`);
  }

  async commit(signal?: AbortSignal): Promise<void> {
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
      await rename(this.tmp, this.target);
    } catch (e) {
      throw ioError(e, this.target);
    }
    liveTemps.delete(this.tmp);
    this.state = 'committed';
    await syncDir(dirname(this.target));
  }

  async close(): Promise<void> {
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
      liveTemps.delete(this.tmp);
    }
  }

  private async checkTarget(): Promise<void> {
    const st = await stat(this.target).catch(() => undefined);
    if (st?.isDirectory()) {
      throw new FerryError('E_USAGE', `${this.target} is a directory; ${this.format} writes a single tar file`, {
        hint: `name a file, e.g. ${this.target.replace(/\/+$/, '')}/image.tar${this.format === 'oci-archive' ? ', or write an oci: layout directory' : ''}`,
      });
    }
  }

  private checkSpace(need: number): Promise<void> {
    return ensureFreeSpace(dirname(this.target), need, this.target, this.opts.statfs);
  }
}

/** Both archive formats hold several images and take layers as they are; a docker-archive's
 * manifest.json describes one platform per image. */
export function archiveCapabilities(format: ImageArchiveFormat): DestinationCapabilities {
  return { concurrentWrites: true, compressedLayers: false, multipleImages: true, platforms: format === 'docker-archive' ? 'one' : 'index', mount: false };
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

/** Makes the rename durable; best effort (some filesystems refuse fsync on a directory). */
async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r').catch(() => undefined);
  if (!h) return;
  await h.sync().catch(() => {});
  await h.close().catch(() => {});
}

/** Temp files of unfinished archives, removed if the process exits before close() ran (e.g. the
 * CLI's second SIGINT calls process.exit). */
const liveTemps = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const t of liveTemps) {
      try {
        unlinkSync(t);
      } catch {
        // already gone
      }
    }
  });
}
