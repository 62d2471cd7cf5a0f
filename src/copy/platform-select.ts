import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseImageConfig, type ImageIndex } from '../oci/manifest.js';
import { isManifestType } from '../oci/media-types.js';
import { choosePlatform, formatPlatform, platformMatches, type Platform } from '../oci/platform.js';
import { readBounded } from '../util/bounded.js';
import { verifyBytes } from '../util/verify-stream.js';
import type { ImageSource } from '../transports/types.js';

/** Image configs are small JSON documents; anything larger is refused before it is read. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

/** Exit 4 is the registry's answer only: a local layout or archive without the platform asked
 * for is bad input (E_LOCAL_NOT_FOUND, exit 2). A source is local when it has no registry origin. */
const missing = (local: boolean) => (local ? 'E_LOCAL_NOT_FOUND' : 'E_NOT_FOUND');

/**
 * The index entry for `wanted`, or E_NOT_FOUND (exit 4; E_LOCAL_NOT_FOUND for a local source)
 * naming the platforms there are. The one place pull, copy and inspect pick a platform from an
 * index.
 */
export function pickPlatform(what: string, index: ImageIndex, wanted: Platform, local = false): Descriptor {
  const child = choosePlatform(index.manifests.filter((m) => isManifestType(m.mediaType)), wanted);
  if (child) return child;
  const have = [...new Set(index.manifests.map((m) => formatPlatform(m.platform)).filter((p) => p !== 'unknown/unknown' && p !== 'unknown'))];
  throw new FerryError(missing(local), `${what}: no image for platform ${formatPlatform(wanted)}`, {
    hint: `available: ${have.join(', ') || 'none'}; choose one with --platform, or keep them all with --all-platforms`,
  });
}

/** Reads and verifies an image config blob (bounded). */
export async function readConfig(src: ImageSource, d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
  if (d.size > MAX_CONFIG_BYTES) throw new FerryError('E_SIZE_MISMATCH', `image config ${d.digest} is ${d.size} bytes, over the ${MAX_CONFIG_BYTES}-byte limit`);
  const bytes = await readBounded(await src.fetchBlob(d, signal ? { signal } : {}), MAX_CONFIG_BYTES, `config ${d.digest}`);
  verifyBytes(bytes, d, `image config ${d.digest}`);
  return bytes;
}

/** The platform an image config declares, or undefined when it names no os/architecture. */
export function configPlatform(config: Uint8Array): Platform | undefined {
  const c = parseImageConfig(config);
  if (!c.os || !c.architecture) return undefined;
  return { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
}

/**
 * A single-platform image asked for with an explicit --platform must be of one of those
 * platforms: `--platform linux/arm64` on an amd64-only image is E_NOT_FOUND (exit 4), as it is
 * for an index without that platform, instead of silently giving amd64. A config that names no
 * platform passes.
 */
export function checkImagePlatform(what: string, config: Uint8Array, wanted: Platform[], local = false): Platform | undefined {
  const p = configPlatform(config);
  if (!p || wanted.length === 0 || wanted.some((w) => platformMatches(p, w))) return p;
  throw new FerryError(missing(local), `${what}: no image for platform ${wanted.map(formatPlatform).join(', ')}: the image is ${formatPlatform(p)} (a single-platform image, not an index)`, {
    hint: `drop --platform, or ask for --platform ${formatPlatform(p)}`,
  });
}
