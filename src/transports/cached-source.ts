/**
 * A registry source read through the blob cache (src/store): manifests by digest and blobs come
 * from the cache when it has them, and what is fetched goes into the cache first (verified, once
 * across processes, resumable after a kill), then to the destination from there. A tag is
 * always resolved at the registry.
 *
 * Contracts:
 * - `blobFile(d)` makes sure the blob is in the cache and returns its path: destinations that
 *   can link a file (an OCI layout) take it without a second copy of the bytes.
 * - `fetchBlob(d, {offset})` streams the cached file from `offset` (after blobFile).
 * - A failure of the cache itself (unwritable, full) is the command's failure (E_IO/E_NO_SPACE
 *   naming the cache path, with the hint to use --no-cache): nothing silently goes uncached.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import type { BlobStore, EnsureOptions } from '../store/index.js';
import { ioError } from '../util/fs-errors.js';
import type { BlobFileOptions, ImageSource } from './types.js';

const MAX_CACHED_MANIFEST = 4 * 1024 * 1024;

export class CachedSource implements ImageSource {
  readonly description: string;
  readonly origin;
  /** Digests this run took from the cache without any request (for servedBy: "cache"). */
  readonly fromCache = new Set<string>();

  constructor(readonly inner: ImageSource, readonly store: BlobStore, private readonly hooks: { onWait?: EnsureOptions['onWait'] } = {}) {
    this.description = inner.description;
    this.origin = inner.origin;
  }

  resolve(signal?: AbortSignal): Promise<Descriptor> {
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
    if (await this.store.has(d)) this.fromCache.add(d.digest);
    return this.store.ensure(d, (offset, signal) => this.inner.fetchBlob(d, { offset, ...(signal ? { signal } : {}) }), {
      ...opts, isRetryable: isRetryableNetworkError, ...(this.hooks.onWait ? { onWait: this.hooks.onWait } : {}),
    });
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const path = await this.blobFile(d, opts.signal ? { signal: opts.signal } : {});
    const s = createReadStream(path, { start: opts.offset ?? 0, ...(opts.signal ? { signal: opts.signal } : {}) });
    await new Promise<void>((resolve, reject) => s.once('open', () => resolve()).once('error', (e) => reject(ioError(e, path))));
    return s;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
