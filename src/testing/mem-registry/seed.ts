/** Deterministic image seeding straight into the store (no HTTP). */
import { createHash } from 'node:crypto';
import type { MemRegistry } from './types.js';
import { MT } from './util.js';

export interface SeedPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface SeedOptions {
  layers?: number;
  layerSize?: number;
  seed?: string;
  platforms?: SeedPlatform[];
  docker?: boolean;
}

export interface SeedResult {
  /** Digest the tag points at (the index when `platforms` is given, else the image manifest). */
  digest: string;
  /** Image manifest digests (one per platform; a single entry without `platforms`). */
  manifestDigests: string[];
  /** Every blob digest (configs and layers), in push order. */
  blobs: string[];
}

/** `size` pseudo-random bytes derived from `seed` (sha256 in counter mode). */
export function deterministicBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; i++) {
    const block = createHash('sha256').update(`${seed}\0${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export function seedImage(reg: MemRegistry, repo: string, tag: string, opts: SeedOptions = {}): SeedResult {
  const nLayers = opts.layers ?? 2;
  const layerSize = opts.layerSize ?? 1024;
  const seed = opts.seed ?? `${repo}:${tag}`;
  const docker = opts.docker ?? false;
  const types = docker
    ? { manifest: MT.dockerManifest, index: MT.dockerList, config: MT.dockerConfig, layer: MT.dockerLayerGzip }
    : { manifest: MT.ociManifest, index: MT.ociIndex, config: MT.ociConfig, layer: MT.ociLayerGzip };
  const blobs: string[] = [];
  const manifests: Array<{ digest: string; size: number; platform: SeedPlatform }> = [];
  const platforms = opts.platforms ?? [{ os: 'linux', architecture: 'amd64' }];

  for (const p of platforms) {
    const pid = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
    const layers = Array.from({ length: nLayers }, (_, i) => {
      const bytes = deterministicBytes(`${seed}|${pid}|layer${i}`, layerSize);
      const digest = reg.putBlob(repo, bytes);
      blobs.push(digest);
      return { mediaType: types.layer, digest, size: bytes.length };
    });
    const config = Buffer.from(
      JSON.stringify({
        architecture: p.architecture,
        os: p.os,
        ...(p.variant ? { variant: p.variant } : {}),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        history: layers.map((_, i) => ({ created_by: `seed layer ${i}` })),
      }),
    );
    const configDigest = reg.putBlob(repo, config);
    blobs.push(configDigest);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: types.manifest,
        config: { mediaType: types.config, digest: configDigest, size: config.length },
        layers,
      }),
    );
    const ref = opts.platforms ? createHash('sha256').update(manifest).digest('hex') : tag;
    const digest = reg.putManifest(repo, opts.platforms ? `sha256:${ref}` : ref, manifest, types.manifest);
    manifests.push({ digest, size: manifest.length, platform: p });
  }

  if (!opts.platforms) return { digest: manifests[0]!.digest, manifestDigests: [manifests[0]!.digest], blobs };

  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: manifests.map((m) => ({ mediaType: types.manifest, digest: m.digest, size: m.size, platform: m.platform })),
    }),
  );
  const digest = reg.putManifest(repo, tag, index, types.index);
  return { digest, manifestDigests: manifests.map((m) => m.digest), blobs };
}
