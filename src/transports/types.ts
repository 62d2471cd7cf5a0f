import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageNames, SourceOrigin, TransferPlan } from '../oci/transfer-plan.js';

/** Re-openable blob content: `open(offset)` returns the bytes from `offset` on. Retries after a
 * broken connection re-open from where the verified write stopped; nothing is buffered. */
export interface BlobReader {
  open(offset: number, signal?: AbortSignal): Promise<Readable>;
  /** Set when the source can put the verified blob in a local file (the blob cache): its path.
   * A destination that can link files takes it instead of copying the bytes. */
  file?(opts?: BlobFileOptions): Promise<string>;
  /** The source verifies the digest of what open() returns, and the engine fails the blob unless
   * that check passed (the blob cache): a destination need not hash the bytes again. */
  digestVerified?: boolean;
}

export interface BlobFileOptions {
  signal?: AbortSignal;
  /** New durable bytes as the blob arrives in the file. */
  onProgress?: (delta: number) => void;
  /** Every byte arrived; only local work is left. */
  onReceived?: () => void;
}

/**
 * Where images come from. Manifest bytes returned are verified against the descriptor; blob
 * streams are raw (the destination hashes them while writing, so resumed reads can be verified
 * as a whole).
 */
export interface ImageSource {
  /** Human-readable name for messages, e.g. `localhost:5000/app:v1` or `oci:/data/x:v1`. */
  readonly description: string;
  /** Set by sources that read a registry repository (and by wrappers around them). */
  readonly origin?: SourceOrigin | undefined;
  /** The manifest digest the location pins (`name@sha256:…`), when it pins one: a cache in
   * front of the source may answer `resolve` with it without asking the registry. */
  readonly pinnedDigest?: string | undefined;
  /** The top manifest or index the location names. */
  resolve(signal?: AbortSignal): Promise<Descriptor>;
  fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array>;
  fetchBlob(d: Descriptor, opts?: { offset?: number; signal?: AbortSignal }): Promise<Readable>;
  /** Sources backed by the blob cache: the verified blob's path, fetched into the cache first
   * when needed (cached-source.ts). */
  blobFile?(d: Descriptor, opts?: BlobFileOptions): Promise<string>;
  close(): Promise<void>;
}

// ImageNames, TransferPlan and SourceOrigin live in ../oci/transfer-plan.ts (src/archive uses them
// too, and must not import src/transports); re-exported here for every existing import.
export type { ImageNames, SourceOrigin, TransferPlan } from '../oci/transfer-plan.js';

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
 * What a destination can hold and do. `ops/` and the engine ask these instead of testing
 * transport names.
 */
export interface DestinationCapabilities {
  /** putBlob may run for several blobs at once. */
  concurrentWrites: boolean;
  /** Layers must be stored compressed (registries): uncompressed ones (classic `docker save`)
   * are gzip-compressed on the way unless the user keeps them as they are. */
  compressedLayers: boolean;
  /** Several images in one run (archives, layouts); a registry reference names one image. */
  multipleImages: boolean;
  /** 'one': one platform per image (docker-archive: an index must be narrowed to one image
   * first); 'index': keeps a whole index. */
  platforms: 'one' | 'index';
  /** Can link blobs from another repository of the same registry (no bytes move); candidates
   * come from `TransferPlan.origins`. */
  mount: boolean;
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
  readonly capabilities: DestinationCapabilities;
  /** Lets a destination lay out its output up front (archives: every tar offset is known). */
  prepare?(plan: TransferPlan, signal?: AbortSignal): Promise<void>;
  hasBlob(d: Descriptor, signal?: AbortSignal): Promise<boolean>;
  putBlob(d: Descriptor, src: BlobReader, opts?: PutBlobOptions): Promise<PutBlobResult>;
  /** `root` is set for an image's top manifest (or index) and says what to name it. */
  putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames; signal?: AbortSignal }): Promise<void>;
  commit(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
