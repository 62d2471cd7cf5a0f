import type { Descriptor } from '../oci/descriptor.js';
import type { Platform } from '../oci/platform.js';

/** Typed progress events emitted by the copy engine (rendered by cli/output). */
export type CopyEvent =
  | { type: 'resolved'; descriptor: Descriptor; kind: 'image' | 'index'; platform?: Platform }
  | { type: 'plan'; blobs: number; bytes: number; manifests: number }
  | { type: 'blob-skip'; descriptor: Descriptor }
  | { type: 'blob-start'; descriptor: Descriptor }
  | { type: 'blob-progress'; descriptor: Descriptor; delta: number }
  | { type: 'blob-done'; descriptor: Descriptor; ms: number }
  | { type: 'blob-mounted'; descriptor: Descriptor; from: string }
  | { type: 'manifest-done'; descriptor: Descriptor }
  | { type: 'committed' };
