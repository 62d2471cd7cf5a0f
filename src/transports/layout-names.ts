/**
 * Names of the images in an OCI layout or archive index.json, and which entry a location's
 * selector (`oci:DIR:SEL`, `oci-archive:FILE:SEL`) picks.
 *
 * An index.json descriptor may carry two names (protocol.md §6.1–6.2):
 * - `org.opencontainers.image.ref.name` — skopeo/containers/image select by it exactly; docker
 *   save ≥ 25, containerd and ferry write the tag, podman save writes the full reference;
 * - `io.containerd.image.name` — the full reference; ctr import, docker (containerd store) and
 *   podman load (libimage nameFromAnnotations, podman ≥ 4) name the image from it; without it
 *   podman falls back to ref.name (a bare tag `v1` becomes `localhost/v1:latest`).
 *
 * A selector matches an entry when it equals either name, names the same reference in another
 * spelling (`alpine:3.20` = `docker.io/library/alpine:3.20`), is a plain tag equal to either
 * name's tag, or is the entry's digest. Two different images matching is an error listing them,
 * never a silent first pick.
 */
import { FerryError } from '../errors.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, type Descriptor } from '../oci/descriptor.js';
import { isDigest } from '../oci/digest.js';
import { type ImageReference, parseReference } from '../ref/index.js';

/** A docker tag: `v1`, `3.20`, `latest` (no `/`, `:` or `@`). */
const PLAIN_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isPlainTag(s: string): boolean {
  return PLAIN_TAG.test(s);
}

/** A content digest (`sha256:<64 hex>`); the bare digest grammar also admits `busybox:v1`. */
function isContentDigest(s: string): boolean {
  return isDigest(s) && /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/.test(s);
}

/** `name` as a tagged reference (`alpine:3.20` → docker.io/library/alpine:3.20), or undefined
 * for a plain tag, an untagged or unparsable name. */
export function referenceOf(name: string): ImageReference | undefined {
  if (isPlainTag(name) || isContentDigest(name)) return undefined;
  try {
    const r = parseReference(name, { defaultTag: false });
    return r.tag === undefined && r.digest === undefined ? undefined : r;
  } catch {
    return undefined;
  }
}

/**
 * The full reference an image called `name` at a destination has: `name` itself when it is a
 * reference (`docker.io/me/app:v2`), `base`'s repository with tag `name` when it is a plain tag,
 * else undefined. Used for `io.containerd.image.name`.
 */
export function fullReference(name: string, base: ImageReference | undefined): string | undefined {
  if (isPlainTag(name)) {
    if (!base) return undefined;
    try {
      return base.withTag(name).toString();
    } catch {
      return undefined;
    }
  }
  return referenceOf(name)?.toString();
}

/** The tag a name carries: `v1` for `v1` and for `docker.io/x/y:v1`. */
function tagOf(name: string): string | undefined {
  return isPlainTag(name) ? name : referenceOf(name)?.tag;
}

/** How an index entry is shown in messages: its fullest name, then its digest. */
export function entryLabel(m: Descriptor): string {
  const full = m.annotations?.[ANNOTATION_CONTAINERD_NAME];
  const ref = m.annotations?.[ANNOTATION_REF_NAME];
  const name = full || ref;
  return name ? `${name} (${m.digest})` : m.digest;
}

function entryNames(m: Descriptor): string[] {
  return [m.annotations?.[ANNOTATION_REF_NAME], m.annotations?.[ANNOTATION_CONTAINERD_NAME]].filter((n): n is string => !!n);
}

/** Does `sel` name entry `m` (see the file comment)? */
export function selectorMatches(m: Descriptor, sel: string): boolean {
  if (isContentDigest(sel)) return m.digest === sel;
  const names = entryNames(m);
  if (names.includes(sel)) return true;
  if (isPlainTag(sel)) return names.some((n) => tagOf(n) === sel);
  const want = referenceOf(sel)?.toString();
  return want !== undefined && names.some((n) => referenceOf(n)?.toString() === want);
}

/**
 * Picks the index entry `sel` names; without a selector the index must hold exactly one image.
 * A selector naming several different images (by digest) is E_BAD_REFERENCE listing them with
 * their digests (exit 2, as a location naming no single image without a selector); none is
 * E_NOT_FOUND listing what there is. `where` names the layout (`oci-archive:/x.tar`).
 */
export function selectEntry(manifests: Descriptor[], sel: string | undefined, where: string): Descriptor {
  const available = manifests.map((m) => m.annotations?.[ANNOTATION_CONTAINERD_NAME] || m.annotations?.[ANNOTATION_REF_NAME] || m.digest).join(', ');
  if (sel === undefined) {
    if (manifests.length === 1) return manifests[0]!;
    throw new FerryError('E_BAD_REFERENCE', manifests.length === 0 ? `${where} holds no images` : `${where} holds ${manifests.length} images; name one with ${where}:<tag>`, {
      hint: manifests.length ? `available: ${available}` : undefined,
    });
  }
  const hits = manifests.filter((m) => selectorMatches(m, sel));
  if (hits.length === 0) {
    throw new FerryError('E_LOCAL_NOT_FOUND', `${where}: no image tagged "${sel}"`, { hint: manifests.length ? `available: ${available}` : 'the layout is empty' });
  }
  const distinct = new Set(hits.map((m) => m.digest));
  if (distinct.size > 1) {
    throw new FerryError('E_BAD_REFERENCE', `${where}: "${sel}" is ambiguous: it names ${distinct.size} different images`, {
      hint: `name one by full name or digest: ${hits.map(entryLabel).join(', ')}`,
    });
  }
  return hits[0]!;
}
