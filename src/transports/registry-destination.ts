import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageReference } from '../ref/index.js';
import type { RepositoryClient } from '../registry/client.js';
import { putManifest } from '../registry/manifest-put.js';
import { blobExists, mountBlob } from '../registry/blob-mount.js';
import { uploadBlob } from '../registry/upload.js';
import { cancelUpload, type SessionTracker, type UploadSession } from '../registry/upload-session.js';
import { verifyBytes } from '../util/verify-stream.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, PutBlobOptions, PutBlobResult, TransferPlan } from './types.js';

export interface RegistryDestinationOptions {
  /** Checked before anything is sent (the registry is not blocked by registries.conf). */
  preflight?: () => Promise<void>;
  /** Where the image goes; its tag names the root unless the engine passes `names.tags`. */
  ref: ImageReference;
  /** Forces chunked uploads with chunks of this size (see uploadBlob). */
  chunkSize?: number;
  /** Repositories that may already hold the blobs, besides the plan's origins; only those on the
   * same registry are tried. */
  mountFrom?: Array<{ registry: string; repository: string }>;
  /** Tags to put the root under in addition to its own. */
  extraTags?: string[];
  warn?: (msg: string) => void;
}

/**
 * A registry repository as an image destination.
 * - prepare: the plan's origins join the mount candidates.
 * - hasBlob: HEAD with push scopes. putBlob: cross-repository mount from each same-registry
 *   candidate (a 202 session is cancelled before the next candidate, and the last one is uploaded
 *   into), else a normal upload. Concurrent writes are fine.
 * - putManifest: children by digest. A root goes under each of its tags (bytes verbatim, first
 *   tag first), or by digest when it has none. Tags: `names.tags` when the engine gives them (an
 *   empty list = by digest only), else the reference's tag, plus `extraTags`. A reference with a
 *   digest must name the root's digest.
 * - The engine writes manifests only after every blob is in place and roots last, so nothing is
 *   tagged before its content exists; the registry also refuses a manifest whose blobs or
 *   children are missing (MANIFEST_BLOB_UNKNOWN).
 * - commit() is a no-op: the manifest PUTs are the commit. close() DELETEs any upload session
 *   still open (an interrupted or failed putBlob).
 */
export class RegistryDestination implements ImageDestination {
  readonly description: string;
  static readonly capabilities: DestinationCapabilities = { concurrentWrites: true, compressedLayers: true, multipleImages: false, platforms: 'index', mount: true };
  readonly capabilities = RegistryDestination.capabilities;
  private readonly sessions: SessionTracker = new Set<UploadSession>();
  private mountFrom: Array<{ registry: string; repository: string }>;

  constructor(private readonly repo: RepositoryClient, private readonly opts: RegistryDestinationOptions) {
    this.description = opts.ref.toString();
    this.mountFrom = [...(opts.mountFrom ?? [])];
  }

  async prepare(plan: TransferPlan): Promise<void> {
    // registries.conf may block the destination (E_BLOCKED before any blob moves).
    await this.opts.preflight?.();
    this.mountFrom.push(...(plan.origins ?? []));
  }

  hasBlob(d: Descriptor, signal?: AbortSignal): Promise<boolean> {
    return blobExists(this.repo, d, signal ? { signal } : {});
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<PutBlobResult> {
    const { signal } = opts;
    const here = this.repo.registry.opts.registry;
    const candidates = [...new Set(this.mountFrom
      .filter((c) => c.registry === here && c.repository !== this.repo.name)
      .map((c) => c.repository))];
    let session: UploadSession | undefined;
    for (const from of candidates) {
      if (session) {
        await cancelUpload(this.repo, session, this.sessions);
        session = undefined;
      }
      const r = await mountBlob(this.repo, d, from, { ...(signal ? { signal } : {}), tracker: this.sessions });
      if (r.mounted) return { mounted: from };
      session = r.session;
    }
    await uploadBlob(this.repo, d, (offset) => src.open(offset, signal), {
      ...(this.opts.chunkSize !== undefined ? { chunkSize: this.opts.chunkSize } : {}),
      ...(signal ? { signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(session ? { session } : {}),
      tracker: this.sessions,
    });
    return undefined;
  }

  async putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void> {
    verifyBytes(bytes, d, `manifest ${d.digest}`);
    const put = (ref: string) => putManifest(this.repo, bytes, d.mediaType, ref, {
      ...(opts.signal ? { signal: opts.signal } : {}), ...(this.opts.warn ? { warn: this.opts.warn } : {}),
    });
    if (!opts.root) {
      await put(d.digest);
      return;
    }
    const { ref } = this.opts;
    if (ref.digest && ref.digest !== d.digest) {
      throw new FerryError('E_DIGEST_MISMATCH', `${ref.toString()}: the image to push has digest ${d.digest}, not the one the destination names`);
    }
    const tags = this.tagsFor(opts.root);
    if (tags.length === 0) {
      await put(d.digest);
      return;
    }
    for (const t of tags) await put(t);
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {
    await Promise.all([...this.sessions].map((s) => cancelUpload(this.repo, s, this.sessions)));
  }

  private tagsFor(names: ImageNames): string[] {
    const own = names.tags ?? (this.opts.ref.tag !== undefined ? [this.opts.ref.tag] : []);
    return [...new Set([...own, ...(this.opts.extraTags ?? [])])];
  }
}
