/**
 * What a docker-archive's files say about its layers, for docker-archive-source.ts: the digest a
 * `blobs/<alg>/<hex>` path names, a matching `LayerSources` descriptor, the config's diff_ids,
 * the compression a layer file starts with, and (when nothing else gives it) the file's sha256.
 */
import { createHash } from 'node:crypto';
import type { TarIndex } from '../archive/tar-index.js';
import { normalizeTarName } from '../archive/tar-index.js';
import { FerryError } from '../errors.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { descriptor } from '../oci/manifest.js';
import { MT } from '../oci/media-types.js';

export type LayerKind = 'tar' | 'gzip' | 'zstd';

export const LAYER_TYPE: Record<LayerKind, string> = { tar: MT.ociLayer, gzip: MT.ociLayerGzip, zstd: MT.ociLayerZstd };

/** `blobs/<alg>/<hex>` → `alg:hex` (a valid digest), else undefined. */
export function digestFromBlobPath(path: string): Digest | undefined {
  const m = /^blobs\/([a-z0-9]+(?:[+._-][a-z0-9]+)*)\/([a-zA-Z0-9=_-]+)$/.exec(normalizeTarName(path));
  if (!m) return undefined;
  const d = `${m[1]}:${m[2]}`;
  return isDigest(d) ? d : undefined;
}

export function parseJson(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new FerryError('E_BAD_ARCHIVE', `${where} is not valid JSON: ${(e as Error).message}`);
  }
}

export function diffIdsOf(configBytes: Uint8Array, where: string): string[] {
  const c = parseJson(configBytes, where) as { rootfs?: { diff_ids?: unknown } } | null;
  const ids = c?.rootfs?.diff_ids ?? [];
  if (typeof c !== 'object' || c === null || !Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && isDigest(d))) {
    throw new FerryError('E_BAD_ARCHIVE', `${where}: rootfs.diff_ids is not an array of digests`);
  }
  return ids as string[];
}

/** A LayerSources descriptor for `diffId` that describes a file of `size` bytes (older docker
 * recorded foreign layers' compressed registry descriptors there, which do not describe the file). */
export function layerSourceDigest(sources: Record<string, unknown> | undefined, diffId: string, size: number): Digest | undefined {
  const raw = sources?.[diffId];
  if (raw === undefined) return undefined;
  try {
    const d = descriptor(raw, 'LayerSources');
    return d.size === size ? d.digest : undefined;
  } catch {
    return undefined;
  }
}

export async function sniffLayer(tar: TarIndex, path: string, what: string): Promise<LayerKind> {
  const head = await tar.peek(path, 6);
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  const other = head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0' ? 'xz' : head.subarray(0, 3).toString('latin1') === 'BZh' ? 'bzip2' : undefined;
  if (other) throw new FerryError('E_UNSUPPORTED', `${what} is ${other}-compressed; OCI has no media type for that`, { hint: 'docker load can import it; save it again from there' });
  return 'tar';
}

export async function hashFile(tar: TarIndex, path: string): Promise<Digest> {
  const h = createHash('sha256');
  for await (const c of await tar.stream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}
