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

export interface PutBlobOptions {
  signal?: AbortSignal;
  /** Called with the number of new bytes as they are written. */
  onProgress?: (delta: number) => void;
}

/**
 * Where images go. Call order: blobs (hasBlob / putBlob, possibly concurrently when
 * `capabilities.concurrentWrites`) → manifests, children before parents, the root last →
 * commit() once → close() always. A blob or manifest becomes visible only after its digest and
 * size were checked; close() without commit() removes whatever was staged.
 */
export interface ImageDestination {
  readonly description: string;
  readonly capabilities: { concurrentWrites: boolean };
  hasBlob(d: Descriptor, signal?: AbortSignal): Promise<boolean>;
  putBlob(d: Descriptor, src: BlobReader, opts?: PutBlobOptions): Promise<void>;
  putManifest(bytes: Uint8Array, d: Descriptor, opts: { root: boolean; signal?: AbortSignal }): Promise<void>;
  commit(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
