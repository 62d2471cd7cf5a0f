/** Shared helpers for the archive writer tests: hand-made plans, in-memory blob readers, a tar parser. */
import { createHash, randomBytes } from 'node:crypto';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { Readable } from 'node:stream';
import type { Digest } from '../../../src/oci/digest.js';
import type { BlobReader, ImageDestination, ImageNames, TransferPlan } from '../../../src/transports/types.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export const sha256 = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hex = (d: string): string => d.slice(d.indexOf(':') + 1);

export interface Blob {
  d: Descriptor;
  bytes: Buffer;
}

export function blob(bytes: Buffer, mediaType = OCI_LAYER_GZIP): Blob {
  return { d: { mediaType, digest: sha256(bytes), size: bytes.length }, bytes };
}

export interface TestImage {
  manifest: Blob;
  config: Blob;
  layers: Blob[];
}

/** An image whose layers are the given buffers (random data stands in for gzip). */
export function image(layers: Buffer[], label = 'x'): TestImage {
  const ls = layers.map((b) => blob(b));
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { label } }, rootfs: { type: 'layers', diff_ids: ls.map((l) => l.d.digest) } })), OCI_CONFIG);
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: config.d, layers: ls.map((l) => l.d) })), OCI_MANIFEST);
  return { manifest, config, layers: ls };
}

export function indexOf(children: TestImage[]): Blob {
  return blob(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX,
    manifests: children.map((c, i) => ({ ...c.manifest.d, platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' } })),
  })), OCI_INDEX);
}

/** The plan the engine would build: distinct blobs largest first, manifests children first. */
export function planFor(images: Array<{ img: TestImage; names: ImageNames; root?: Blob; children?: TestImage[] }>): { plan: TransferPlan; contents: Map<string, Buffer> } {
  const contents = new Map<string, Buffer>();
  const blobs = new Map<string, Descriptor>();
  const manifests = new Map<string, { descriptor: Descriptor; bytes: Uint8Array }>();
  for (const { img, root, children } of images) {
    for (const i of children ?? [img]) {
      for (const b of [i.config, ...i.layers]) {
        contents.set(b.d.digest, b.bytes);
        blobs.set(b.d.digest, b.d);
      }
      manifests.set(i.manifest.d.digest, { descriptor: i.manifest.d, bytes: i.manifest.bytes });
    }
    if (root) manifests.set(root.d.digest, { descriptor: root.d, bytes: root.bytes });
  }
  return {
    plan: {
      images: images.map(({ img, names, root }) => ({ root: (root ?? img.manifest).d, names })),
      manifests: [...manifests.values()],
      blobs: [...blobs.values()].sort((a, b) => b.size - a.size),
    },
    contents,
  };
}

/** Serves `buf` from an offset in chunks of `chunk` bytes; records the offsets asked for. */
export function memReader(buf: Buffer, chunk = 64 * 1024, opens: number[] = []): BlobReader {
  return {
    async open(offset: number) {
      opens.push(offset);
      return Readable.from(chunks(buf.subarray(offset), chunk));
    },
  };
}

export function* chunks(buf: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, Math.min(buf.length, i + size));
}

/** Drives a destination the way the engine does (prepare → blobs → manifests → commit → close). */
export async function runDestination(
  dst: ImageDestination,
  plan: TransferPlan,
  contents: Map<string, Buffer>,
  opts: { order?: 'plan' | 'random'; concurrent?: boolean; reader?: (d: Descriptor, bytes: Buffer) => BlobReader } = {},
): Promise<void> {
  try {
    await dst.prepare!(plan);
    let blobs = [...plan.blobs];
    if (opts.order === 'random') blobs = shuffle(blobs);
    const put = (d: Descriptor) => dst.putBlob(d, (opts.reader ?? ((_d, b) => memReader(b, 7919)))(d, contents.get(d.digest)!));
    if (opts.concurrent) await Promise.all(blobs.map(put));
    else for (const d of blobs) await put(d);
    const roots = new Map(plan.images.map((i) => [i.root.digest, i.names]));
    for (const m of plan.manifests) {
      const names = roots.get(m.descriptor.digest);
      await dst.putManifest(m.bytes, m.descriptor, names ? { root: names } : {});
    }
    await dst.commit();
  } finally {
    await dst.close();
  }
}

export function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32LE(0) % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export { readTar, type TarEntry } from '../../helpers/tar.js';

/** Raw walk over header blocks: typeflag, magic and the name field of every header, pax ones included. */
export function rawHeaders(buf: Buffer): Array<{ typeflag: string; magic: string; name: string; size: number }> {
  const out: Array<{ typeflag: string; magic: string; name: string; size: number }> = [];
  let pos = 0;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim() || '0', 8);
    out.push({ typeflag: String.fromCharCode(h[156]!), magic: h.subarray(257, 265).toString('latin1'), name: h.subarray(0, 100).toString('utf8').replace(/\0.*$/, ''), size });
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
