import type { Descriptor } from './descriptor.js';

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

/** Where a source's content lives in a registry (sources that are registry repositories say so),
 * so a destination on the same registry can mount blobs from there instead of moving bytes. */
export interface SourceOrigin {
  registry: string;
  repository: string;
}

/** The whole transfer, announced to the destination before any blob is written. */
export interface TransferPlan {
  images: Array<{ root: Descriptor; names: ImageNames }>;
  /** Registry repositories the blobs come from (cross-repository mount candidates). */
  origins?: SourceOrigin[];
  /** Every manifest, children before parents, roots included. Bytes are verified. */
  manifests: Array<{ descriptor: Descriptor; bytes: Uint8Array }>;
  /** Every distinct blob (configs and layers), in transfer order. */
  blobs: Descriptor[];
}
