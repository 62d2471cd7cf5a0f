/**
 * What goes into an oci-archive or docker-archive, decided from the transfer plan alone (every
 * size is known before a byte is downloaded). Pure: no I/O. The destination lays the entries out
 * with layoutTar and fills in blob data as it arrives.
 *
 * Both formats are one uncompressed tar of regular files and directories (protocol.md §6.4):
 *   blobs/  blobs/sha256/  oci-layout  blobs/sha256/<hex>…  index.json  [manifest.json  repositories]
 * oci-archive is an OCI image layout: one index.json descriptor per image, carrying
 * `org.opencontainers.image.ref.name` = names.refName (the tag, what skopeo selects by) and
 * `io.containerd.image.name` = names.repoTag (the full reference), as docker save ≥ 25 and
 * containerd write them: ctr import and podman load (≥ 4) name the image by the full reference
 * (with the tag alone podman made it `localhost/<tag>:latest`). docker-archive is the Docker ≥25
 * hybrid: the same layout plus docker's manifest.json pointing at the blob files, so docker
 * load, podman/skopeo (containers/image) and Apptainer (which takes the OCI path when it sees
 * regular files named exactly `oci-layout` and `index.json`) all read it. Layers stay as pulled.
 */
import { FerryError } from '../errors.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, type Descriptor } from '../oci/descriptor.js';
import { type Digest, digestAlgorithm, digestHex, hashAlgorithmFor, isDigest } from '../oci/digest.js';
import { type ImageManifest, parseManifest } from '../oci/manifest.js';
import { isImageManifestType, isIndexType, MT } from '../oci/media-types.js';
import { ImageReference, parseReference } from '../ref/index.js';
import type { ImageNames, TransferPlan } from '../oci/transfer-plan.js';
import { verifyBytes } from '../util/verify-stream.js';
import type { TarEntryHeader } from './tar-header.js';

export type ImageArchiveFormat = 'oci-archive' | 'docker-archive';

export const OCI_LAYOUT_CONTENT = JSON.stringify({ imageLayoutVersion: '1.0.0' });

/** An archive entry and where its bytes come from. */
export type ImageArchiveEntry =
  | (TarEntryHeader & { kind: 'directory'; type: 'directory' })
  /** Metadata whose bytes are known now (oci-layout, index.json, manifest.json, repositories). */
  | (TarEntryHeader & { kind: 'file'; type: 'file'; content: Uint8Array })
  /** A blob whose verified bytes are in the plan (manifests and indexes). */
  | (TarEntryHeader & { kind: 'manifest'; type: 'file'; digest: Digest; content: Uint8Array })
  /** A blob that arrives later through putBlob (configs and layers). */
  | (TarEntryHeader & { kind: 'blob'; type: 'file'; digest: Digest });

/** One docker manifest.json item (moby image/tarexport, containers/image ManifestItem). */
export interface DockerManifestItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

/** `blobs/<alg>/<hex>`; the algorithm must be one ferry can verify. */
export function blobEntryName(digest: string): string {
  if (!isDigest(digest)) throw new FerryError('E_BAD_MANIFEST', `invalid digest ${JSON.stringify(digest)}`);
  hashAlgorithmFor(digest);
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`;
}

/**
 * docker's `RepoTags` form of `names.repoTag`: familiar `name:tag` (`alpine:3.20`,
 * `localhost:5000/app:v1`), or undefined when it is missing, unparsable or has no tag (docker
 * load rejects digest-only RepoTags as "invalid tag").
 */
export function dockerRepoTag(repoTag: string | undefined): { repoTag: string; repository: string; tag: string } | undefined {
  if (!repoTag) return undefined;
  let ref: ImageReference;
  try {
    ref = parseReference(repoTag, { defaultTag: false });
  } catch {
    return undefined;
  }
  if (ref.tag === undefined) return undefined;
  const repository = new ImageReference(ref.registry, ref.repository).familiar();
  return { repoTag: `${repository}:${ref.tag}`, repository, tag: ref.tag };
}

/**
 * The entries of an archive holding every image of `plan`, in write order. Throws E_USAGE for
 * what the format cannot hold (an index in a docker-archive, one name given to two images) and
 * E_INTERNAL for an inconsistent plan.
 */
export function planImageArchive(plan: TransferPlan, format: ImageArchiveFormat): ImageArchiveEntry[] {
  if (plan.images.length === 0) throw new FerryError('E_INTERNAL', 'archive: the transfer plan holds no image');
  const manifests = new Map<string, Uint8Array>();
  for (const m of plan.manifests) {
    verifyBytes(m.bytes, m.descriptor, `manifest ${m.descriptor.digest}`);
    manifests.set(m.descriptor.digest, m.bytes);
  }
  const blobs = new Map<string, Descriptor>();
  for (const b of plan.blobs) if (!blobs.has(b.digest)) blobs.set(b.digest, b);

  // Blob files: configs and layers in plan order, then manifests (children before parents). A
  // digest is stored once even if it is announced both as a blob and as a manifest.
  const blobEntries: ImageArchiveEntry[] = [];
  const algs = new Set<string>();
  for (const b of blobs.values()) {
    const name = blobEntryName(b.digest);
    algs.add(digestAlgorithm(b.digest));
    const bytes = manifests.get(b.digest);
    if (bytes) continue; // stored with the manifests below
    blobEntries.push({ kind: 'blob', type: 'file', name, size: b.size, digest: b.digest });
  }
  for (const m of plan.manifests) {
    algs.add(digestAlgorithm(m.descriptor.digest));
    blobEntries.push({ kind: 'manifest', type: 'file', name: blobEntryName(m.descriptor.digest), size: m.bytes.byteLength, digest: m.descriptor.digest, content: m.bytes });
  }

  const roots = plan.images.map(({ root, names }) => {
    const bytes = manifests.get(root.digest);
    if (!bytes) throw new FerryError('E_INTERNAL', `archive: root ${root.digest} is not among the plan's manifests`);
    return { root, names, bytes };
  });
  checkUniqueNames(roots, format);

  const files: ImageArchiveEntry[] = [];
  const json = (name: string, v: unknown): ImageArchiveEntry => {
    const content = Buffer.from(JSON.stringify(v), 'utf8');
    return { kind: 'file', type: 'file', name, size: content.length, content };
  };
  files.push(json('index.json', ociIndex(roots)));
  if (format === 'docker-archive') {
    const { items, repositories } = dockerMetadata(roots, blobs);
    files.push(json('manifest.json', items));
    if (Object.keys(repositories).length > 0) files.push(json('repositories', repositories));
  }

  const dirs: ImageArchiveEntry[] = [{ kind: 'directory', type: 'directory', name: 'blobs/', size: 0 }];
  for (const alg of [...algs].sort()) dirs.push({ kind: 'directory', type: 'directory', name: `blobs/${alg}/`, size: 0 });
  const layoutFile = Buffer.from(OCI_LAYOUT_CONTENT, 'utf8');
  return [
    ...dirs,
    { kind: 'file', type: 'file', name: 'oci-layout', size: layoutFile.length, content: layoutFile },
    ...blobEntries,
    ...files,
  ];
}

type Root = { root: Descriptor; names: ImageNames; bytes: Uint8Array };

function checkUniqueNames(roots: Root[], format: ImageArchiveFormat): void {
  const byRef = new Map<string, string>();
  const byTag = new Map<string, string>();
  for (const { root, names } of roots) {
    if (names.refName !== undefined) {
      const prev = byRef.get(names.refName);
      if (prev !== undefined && prev !== root.digest) {
        throw new FerryError('E_USAGE', `two different images would be named "${names.refName}" in one ${format}`, { hint: 'give each image its own tag' });
      }
      byRef.set(names.refName, root.digest);
    }
    const rt = format === 'docker-archive' ? dockerRepoTag(names.repoTag) : undefined;
    if (rt) {
      const prev = byTag.get(rt.repoTag);
      if (prev !== undefined && prev !== root.digest) {
        throw new FerryError('E_USAGE', `two different images would be tagged ${rt.repoTag} in one docker-archive`, { hint: 'give each image its own name:tag' });
      }
      byTag.set(rt.repoTag, root.digest);
    }
  }
}

/** index.json: one descriptor per image and name (an identical repeat is written once). */
function ociIndex(roots: Root[]) {
  const manifests: Descriptor[] = [];
  const seen = new Set<string>();
  for (const { root, names } of roots) {
    const annotations: Record<string, string> = {};
    if (names.repoTag) annotations[ANNOTATION_CONTAINERD_NAME] = names.repoTag;
    if (names.refName !== undefined) annotations[ANNOTATION_REF_NAME] = names.refName;
    const d: Descriptor = { mediaType: root.mediaType, digest: root.digest, size: root.size };
    if (Object.keys(annotations).length > 0) d.annotations = annotations;
    const key = JSON.stringify(d);
    if (seen.has(key)) continue;
    seen.add(key);
    manifests.push(d);
  }
  return { schemaVersion: 2, mediaType: MT.ociIndex, manifests };
}

/** manifest.json items (one per distinct image, tags merged as docker save does) and repositories. */
function dockerMetadata(roots: Root[], blobs: Map<string, Descriptor>) {
  const items = new Map<string, DockerManifestItem>();
  const repositories: Record<string, Record<string, string>> = {};
  for (const { root, names, bytes } of roots) {
    if (isIndexType(root.mediaType) || !isImageManifestType(root.mediaType)) {
      throw new FerryError('E_USAGE', `a docker-archive holds one platform per image, but ${names.repoTag ?? root.digest} is ${isIndexType(root.mediaType) ? 'a multi-platform index' : `of type ${root.mediaType}`}`, {
        hint: 'pick one platform with --platform, or write an oci-archive: to keep them all',
      });
    }
    const m = parseManifest(bytes, root.mediaType, `manifest ${root.digest}`) as ImageManifest;
    for (const b of [m.config, ...m.layers]) {
      if (!blobs.has(b.digest)) throw new FerryError('E_INTERNAL', `archive: blob ${b.digest} of ${root.digest} is not in the transfer plan`);
    }
    let item = items.get(root.digest);
    if (!item) {
      item = { Config: blobEntryName(m.config.digest), RepoTags: [], Layers: m.layers.map((l) => blobEntryName(l.digest)) };
      items.set(root.digest, item);
    }
    const rt = dockerRepoTag(names.repoTag);
    if (rt && !item.RepoTags.includes(rt.repoTag)) {
      item.RepoTags.push(rt.repoTag);
      // Legacy loaders map repository → tag → top layer id; docker load uses manifest.json.
      const top = m.layers[m.layers.length - 1];
      if (top) (repositories[rt.repository] ??= {})[rt.tag] = digestHex(top.digest);
    }
  }
  return { items: [...items.values()], repositories };
}
