/**
 * Builds OCI image layouts for tests without docker/buildah.
 *
 * Contracts of makeOciLayout(dir, opts):
 * - Writes (or extends) a valid OCI image layout in `dir`: oci-layout,
 *   index.json, blobs/sha256/<hex>. Calling it again on the same dir with
 *   another tag adds/replaces that tag's entry; blobs are shared.
 * - Each image has `layers` (default 2) layers; each layer is a gzip'd POSIX
 *   ustar holding one regular file `layer-<i>.bin` of `layerSize` (default
 *   4096) pseudo-random bytes. Bytes come from AES-256-CTR keyed by
 *   sha256(seed/platform/layer), so the same opts give the same digests
 *   (for a given Node/zlib build); different seeds give different blobs.
 * - Config: os/architecture[/variant], fixed `created`, config.Env/
 *   Entrypoint/Cmd/Labels, rootfs.diff_ids = sha256 of each uncompressed tar,
 *   one history entry per layer. Manifest: OCI image manifest (v1+json),
 *   layers `application/vnd.oci.image.layer.v1.tar+gzip`.
 * - One platform (default linux/amd64): the tag points at the manifest.
 *   Several platforms (or opts.index): the tag points at an OCI index whose
 *   entries carry `platform`.
 * - Returns { dir, tag, digest (what the tag points at), manifestDigest
 *   (the first/only image manifest), indexDigest? (multi-platform only),
 *   manifests (per platform: digest, size, configDigest, layerDigests) }.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface MakeOciLayoutOptions {
  tag?: string; // default 'latest'
  layers?: number; // default 2
  layerSize?: number; // bytes per layer file, default 4096
  seed?: string; // default 'ferry'
  platforms?: Platform[]; // default [{os:'linux', architecture:'amd64'}]
  index?: boolean; // force an index even for one platform
}

export interface BuiltManifest {
  platform: Platform;
  digest: string;
  size: number;
  configDigest: string;
  layerDigests: string[];
}

export interface OciLayoutResult {
  dir: string;
  tag: string;
  digest: string;
  manifestDigest: string;
  indexDigest?: string;
  manifests: BuiltManifest[];
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Deterministic pseudo-random bytes from a seed string. */
export function seededBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(`key:${seed}`).digest();
  const iv = createHash('sha256').update(`iv:${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-256-ctr', key, iv).update(Buffer.alloc(size));
}

/** A one-file POSIX ustar archive (header + data + two zero end blocks). */
export function ustarSingleFile(name: string, data: Buffer, mtime = 946684800): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, s: string): void => void h.write(s, off, len, 'ascii');
  const oct = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, '0')}\0`;
  put(0, 100, name);
  put(100, 8, oct(0o644, 8));
  put(108, 8, oct(0, 8));
  put(116, 8, oct(0, 8));
  put(124, 12, oct(data.length, 12));
  put(136, 12, oct(mtime, 12));
  put(148, 8, '        '); // checksum placeholder
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(265, 32, 'root');
  put(297, 32, 'root');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([h, data, Buffer.alloc(pad), Buffer.alloc(1024)]);
}

async function writeBlob(dir: string, content: Buffer): Promise<string> {
  const digest = sha256(content);
  const file = join(dir, 'blobs', 'sha256', digest.slice(7));
  if (!existsSync(file)) await writeFile(file, content);
  return digest;
}

const platformKey = (p: Platform): string => [p.os, p.architecture, p.variant].filter(Boolean).join('/');

async function buildImage(dir: string, seed: string, platform: Platform, layers: number, layerSize: number): Promise<BuiltManifest> {
  const layerDescs: Descriptor[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < layers; i++) {
    const tar = ustarSingleFile(`layer-${i}.bin`, seededBytes(`${seed}/${platformKey(platform)}/${i}`, layerSize));
    diffIds.push(sha256(tar));
    const gz = gzipSync(tar, { level: 6 });
    layerDescs.push({ mediaType: OCI_LAYER_GZIP, digest: await writeBlob(dir, gz), size: gz.length });
  }
  const created = '2024-01-01T00:00:00Z';
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `FERRY_TEST_SEED=${seed}`],
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo hello from ferry tests'],
      Labels: { 'org.opencontainers.image.title': 'ferry-test-image', 'ferry.test.seed': seed },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created, created_by: `ferry test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(dir, configBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: configBytes.length },
    layers: layerDescs,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await writeBlob(dir, bytes);
  return { platform, digest, size: bytes.length, configDigest, layerDigests: layerDescs.map((l) => l.digest) };
}

export async function makeOciLayout(dir: string, opts: MakeOciLayoutOptions = {}): Promise<OciLayoutResult> {
  const tag = opts.tag ?? 'latest';
  const seed = opts.seed ?? 'ferry';
  const platforms = opts.platforms?.length ? opts.platforms : [{ os: 'linux', architecture: 'amd64' }];
  const layers = opts.layers ?? 2;
  const layerSize = opts.layerSize ?? 4096;
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));

  const built: BuiltManifest[] = [];
  for (const p of platforms) built.push(await buildImage(dir, seed, p, layers, layerSize));
  let top: Descriptor;
  let indexDigest: string | undefined;
  if (platforms.length > 1 || opts.index) {
    const index = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: built.map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.size, platform: m.platform })),
    };
    const bytes = Buffer.from(JSON.stringify(index));
    indexDigest = await writeBlob(dir, bytes);
    top = { mediaType: OCI_INDEX, digest: indexDigest, size: bytes.length };
  } else {
    top = { mediaType: OCI_MANIFEST, digest: built[0]!.digest, size: built[0]!.size };
  }

  // index.json: keep other tags' entries, replace this tag's.
  const indexPath = join(dir, 'index.json');
  let entries: Descriptor[] = [];
  if (existsSync(indexPath)) {
    const old = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests?: Descriptor[] };
    entries = (old.manifests ?? []).filter((d) => d.annotations?.[REF_NAME] !== tag);
  }
  entries.push({ ...top, annotations: { [REF_NAME]: tag } });
  await writeFile(indexPath, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }, null, 2));

  return { dir, tag, digest: top.digest, manifestDigest: built[0]!.digest, indexDigest, manifests: built };
}
