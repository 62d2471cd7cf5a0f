import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';

/** Re-openable blob content: `open(offset)` returns the bytes from `offset` on. Retries after a
 * broken connection re-open from where the verified write stopped; nothing is buffered. */
export interface BlobReader {
  open(offset: number, signal?: AbortSignal): Promise<Readable>;
}

/**
 * Where images come from. Manifest bytes returned are verified against the descriptor; blob
 * streams are raw (the destination hashes them while writing, so resumed reads can be verified
 * as a whole).
 */
export interface ImageSource {
  /** Human-readable name for messages, e.g. `localhost:5000/app:v1` or `oci:/data/x:v1`. */
  readonly description: string;
  /** The top manifest or index the location names. */
  resolve(signal?: AbortSignal): Promise<Descriptor>;
  fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  fetchBlob(d: Descriptor, opts?: { offset?: number; signal?: AbortSignal }): Promise<Readable>;
  close(): Promise<void>;
}

/** What to record for an image at a destination. */
export interface ImageNames {
  /** OCI layout ref name (`org.opencontainers.image.ref.name`), usually the tag (what
   * `oci:DIR:TAG` selects in skopeo). */
  refName?: string;
  /** Full reference, e.g. `docker.io/library/alpine:3.20`: `io.containerd.image.name` in every
   * local format, and docker-archive `RepoTags` (familiar form). */
  repoTag?: string;
  /** Registry destinations: the tags to put the root manifest under (none = by digest only). */
  tags?: string[];
}

/** The whole transfer, announced to the destination before any blob is written. */
export interface TransferPlan {
  images: Array<{ root: Descriptor; names: ImageNames }>;
  /** Every manifest, children before parents, roots included. Bytes are verified. */
  manifests: Array<{ descriptor: Descriptor; bytes: Uint8Array }>;
  /** Every distinct blob (configs and layers), in transfer order. */
  blobs: Descriptor[];
}

/** What putBlob did, when it did not simply write the bytes: a registry may mount a blob from
 * another repository instead (no bytes moved). */
export type PutBlobResult = void | undefined | { mounted: string };

export interface PutBlobOptions {
  signal?: AbortSignal;
  /** Called with the number of new bytes as they are written. */
  onProgress?: (delta: number) => void;
  /** Called once every byte has arrived from the source and is written, when all that is left
   * is local (fsync, finishing the hash, rename): the engine starts the next download then. */
  onReceived?: () => void;
}

/**
 * Where images go. Call order: prepare(plan) once, if implemented → blobs (hasBlob / putBlob,
 * concurrently when `capabilities.concurrentWrites`) → manifests, children before parents, each
 * image's root with its names → commit() once → close() always. A blob or manifest becomes
 * visible only after its digest and size were checked; close() without commit() removes whatever
 * was staged (an archive's temp file, an upload session).
 */
export interface ImageDestination {
  readonly description: string;
  readonly capabilities: { concurrentWrites: boolean };
  /** Lets a destination lay out its output up front (archives: every tar offset is known). */
  prepare?(plan: TransferPlan, signal?: AbortSignal): Promise<void>;
  hasBlob(d: Descriptor, signal?: AbortSignal): Promise<boolean>;
  putBlob(d: Descriptor, src: BlobReader, opts?: PutBlobOptions): Promise<PutBlobResult>;
  /** `root` is set for an image's top manifest (or index) and says what to name it. */
  putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void>;
  commit(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
