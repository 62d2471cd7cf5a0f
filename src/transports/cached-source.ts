/**
 * A registry source read through the blob cache (src/store): manifests by digest and blobs come
 * from the cache when it has them, and what is fetched goes into the cache (verified, once
 * across processes, resumable after a kill) while the destination is fed. A tag is always
 * resolved at the registry; a digest reference (`name@sha256:…`) whose manifest is cached is
 * resolved without any request, so a pinned image in the cache needs no network (an air-gapped
 * node; as with docker's and containerd's content stores, whoever can read the cache reads it).
 *
 * Contracts:
 * - `blobFile(d)` makes sure the blob is in the cache and returns its path: destinations that
 *   can link a file (an OCI layout) take it without a second copy of the bytes. One download per
 *   digest per source: later calls join it (their progress callbacks are not called).
 * - `fetchBlob(d, {offset})` streams the blob from `offset`: the cached file, or — while this
 *   process downloads it — the partial file, following the download as it is written (an archive
 *   or a registry destination gets the bytes as they arrive, not after the whole blob). The
 *   stream fails when the download fails; the destination verifies what it wrote, as always.
 * - A failure of the cache itself (unwritable, full) is the command's failure (E_IO/E_NO_SPACE
 *   naming the cache path): nothing silently goes uncached.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import type { Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { BlobStore, EnsureOptions } from '../store/index.js';
import { ioError } from '../util/fs-errors.js';
import type { BlobFileOptions, ImageSource } from './types.js';

const MAX_CACHED_MANIFEST = 4 * 1024 * 1024;
const FOLLOW_CHUNK = 256 * 1024;

/** One blob being put into the cache by this process, and what a follower needs to read it. */
class Download {
  /** Bytes written to `path` so far (the partial file while downloading). */
  written = 0;
  path: string | undefined;
  /** Set when the blob is published: its final path. */
  final: string | undefined;
  error: unknown;
  restarted = false;
  private readonly waiters = new Set<() => void>();
  readonly done: Promise<string>;

  constructor(run: (hooks: Pick<EnsureOptions, 'onFile' | 'onProgress'>) => Promise<string>) {
    this.done = run({
      onFile: (p) => {
        if (this.path !== undefined) this.restarted = true; // refetched from 0: followers cannot go on
        this.path = p;
        this.written = 0;
        this.wake();
      },
      onProgress: (n) => {
        this.written += n;
        this.wake();
      },
    }).then((p) => {
      this.final = p;
      this.wake();
      return p;
    }, (e: unknown) => {
      this.error = e;
      this.wake();
      throw e;
    });
    this.done.catch(() => {});
  }

  changed(): Promise<void> {
    return new Promise((r) => this.waiters.add(r));
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

export class CachedSource implements ImageSource {
  readonly description: string;
  readonly origin;
  /** Digests this run took from the cache without any request (for servedBy: "cache"). */
  readonly fromCache = new Set<string>();
  private readonly downloads = new Map<string, Download>();

  constructor(readonly inner: ImageSource, readonly store: BlobStore, private readonly hooks: { onWait?: EnsureOptions['onWait'] } = {}) {
    this.description = inner.description;
    this.origin = inner.origin;
    this.pinnedDigest = inner.pinnedDigest;
  }

  readonly pinnedDigest: string | undefined;

  async resolve(signal?: AbortSignal): Promise<Descriptor> {
    const pinned = this.inner.pinnedDigest;
    const bytes = pinned ? await this.store.readByDigest(pinned as Digest, MAX_CACHED_MANIFEST) : undefined;
    if (pinned && bytes) {
      const m = parseManifest(bytes, undefined, `cached manifest ${pinned}`);
      this.fromCache.add(pinned);
      return { mediaType: m.mediaType, digest: pinned as Digest, size: bytes.byteLength };
    }
    return this.inner.resolve(signal);
  }

  async fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    const hit = await this.store.readSmall(d, MAX_CACHED_MANIFEST);
    if (hit) {
      this.fromCache.add(d.digest);
      return hit;
    }
    const bytes = await this.inner.fetchManifest(d, signal);
    await this.store.putSmall(d, bytes);
    return bytes;
  }

  async blobFile(d: Descriptor, opts: BlobFileOptions = {}): Promise<string> {
    return this.download(d, opts).done;
  }

  private download(d: Descriptor, opts: BlobFileOptions): Download {
    let dl = this.downloads.get(d.digest);
    if (!dl) {
      dl = new Download(async (follow) => {
        if (await this.store.has(d)) this.fromCache.add(d.digest);
        return this.store.ensure(d, (offset, signal) => this.inner.fetchBlob(d, { offset, ...(signal ? { signal } : {}) }), {
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onReceived ? { onReceived: opts.onReceived } : {}),
          isRetryable: isRetryableNetworkError,
          ...(this.hooks.onWait ? { onWait: this.hooks.onWait } : {}),
          onFile: follow.onFile!,
          onProgress: (n) => {
            follow.onProgress!(n);
            opts.onProgress?.(n);
          },
        });
      });
      this.downloads.set(d.digest, dl);
      dl.done.catch(() => this.downloads.delete(d.digest)); // a later attempt starts afresh
    }
    return dl;
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const offset = opts.offset ?? 0;
    for (let round = 1; ; round++) {
      const dl = this.download(d, opts.signal ? { signal: opts.signal } : {});
      // Until the download has a file (the lock is ours) or is over, there is nothing to follow.
      while (dl.path === undefined && dl.final === undefined && dl.error === undefined) await dl.changed();
      if (dl.error !== undefined) throw dl.error;
      if (dl.final === undefined) return follow(dl, d, offset, opts.signal);
      try {
        return await fileStream(dl.final, offset, opts.signal);
      } catch (e) {
        // `ferry cache prune` removed it between the lookup and the open: fetch it again, once.
        if (round > 1 || !isMissing(e)) throw e;
        this.downloads.delete(d.digest);
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

function isMissing(e: unknown): boolean {
  const x = e as { code?: string; cause?: { code?: string } };
  return x.code === 'ENOENT' || x.code === 'E_NO_SUCH_FILE' || x.cause?.code === 'ENOENT';
}

async function fileStream(path: string, offset: number, signal?: AbortSignal): Promise<Readable> {
  const s = createReadStream(path, { start: offset, ...(signal ? { signal } : {}) });
  await new Promise<void>((resolve, reject) => s.once('open', () => resolve()).once('error', (e) => reject(ioError(e, path))));
  return s;
}

/** Reads the partial file of `dl` from `offset` as the download writes it, to the blob's end. */
async function follow(dl: Download, d: Descriptor, offset: number, signal?: AbortSignal): Promise<Readable> {
  const path = dl.path!;
  let fh: FileHandle;
  try {
    fh = await open(path, 'r'); // stays valid when the file is renamed into blobs/
  } catch (e) {
    // Published (renamed) between the check and the open: read the final file.
    if (dl.final !== undefined) return fileStream(dl.final, offset, signal);
    await dl.done;
    return fileStream(dl.final!, offset, signal);
  }
  let pos = offset;
  let closed = false;
  const close = (): void => {
    if (!closed) {
      closed = true;
      fh.close().catch(() => {});
    }
  };
  const r = new Readable({
    highWaterMark: FOLLOW_CHUNK,
    read() {
      void (async () => {
        try {
          for (;;) {
            if (signal?.aborted) throw signal.reason ?? new FerryError('E_INTERRUPTED', 'interrupted');
            if (dl.restarted) throw new FerryError('E_DIGEST_MISMATCH', `blob ${d.digest}: the cached download restarted`);
            if (pos >= d.size) {
              close();
              r.push(null);
              return;
            }
            const avail = (dl.final !== undefined ? d.size : dl.written) - pos;
            if (avail > 0) {
              const buf = Buffer.allocUnsafe(Math.min(avail, FOLLOW_CHUNK));
              const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
              if (bytesRead === 0) throw new FerryError('E_IO', `${path}: the cached blob ended at ${pos} of ${d.size} bytes`);
              pos += bytesRead;
              r.push(buf.subarray(0, bytesRead));
              return;
            }
            if (dl.error !== undefined) throw dl.error;
            await dl.changed();
          }
        } catch (e) {
          close();
          r.destroy(e as Error);
        }
      })();
    },
    destroy(err, cb) {
      close();
      cb(err);
    },
  });
  return r;
}
