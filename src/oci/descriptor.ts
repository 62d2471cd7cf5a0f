import type { Digest } from './digest.js';
import type { Platform } from './platform.js';

/** OCI content descriptor (image-spec descriptor.md). Unknown fields are preserved by callers
 * that keep raw manifest bytes; this type names only what ferry reads. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
