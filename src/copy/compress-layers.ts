import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, type Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { MT } from '../oci/media-types.js';
import { mapLimit } from '../util/concurrency.js';
import { VerifyStream } from '../util/verify-stream.js';
import type { ImageSource, SourceOrigin } from '../transports/types.js';

const UNCOMPRESSED: Record<string, string> = {
  [MT.ociLayer]: MT.ociLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar': MT.dockerLayerGzip,
};

export interface CompressionReport {
  /** Layers that were compressed: original → uploaded descriptor. */
  layers: Array<{ from: Descriptor; to: Descriptor }>;
  /** The rewritten manifest, when anything changed. */
  manifest?: { from: Descriptor; to: Descriptor };
}

/**
 * Wraps a single-image source so that uncompressed layers are pushed gzip-compressed (what
 * docker push and skopeo do). Each uncompressed layer is compressed once, in parallel (zlib runs
 * on the libuv pool, so this uses every core), into a temp file whose digest and size are known
 * before the upload starts: uploads stay monolithic with Content-Length, and a failed upload is
 * retried by re-opening the file, never by buffering. The manifest is rewritten with the new
 * layer descriptors; the config (and its diff_ids, digests of the uncompressed tars) is unchanged,
 * so the image stays valid. Sources whose layers are already compressed pass through untouched
 * (same digests). Indexes pass through untouched too.
 */
export class CompressingSource implements ImageSource {
  readonly description: string;
  readonly origin: SourceOrigin | undefined;
  private rewritten: { descriptor: Descriptor; bytes: Uint8Array } | undefined;
  private readonly files = new Map<string, string>();
  private dir: string | undefined;
  readonly report: CompressionReport = { layers: [] };

  constructor(private readonly inner: ImageSource, private readonly jobs: number) {
    this.description = inner.description;
    this.origin = inner.origin;
  }

  async resolve(signal?: AbortSignal): Promise<Descriptor> {
    const root = await this.inner.resolve(signal);
    const bytes = await this.inner.fetchManifest(root, signal);
    const m = parseManifest(bytes, root.mediaType, `manifest of ${this.inner.description}`);
    if (m.kind !== 'image') return root;
    const todo = m.layers.filter((l) => UNCOMPRESSED[l.mediaType]);
    if (todo.length === 0) return root;
    this.dir = await mkdtemp(join(tmpdir(), 'ferry-gzip-'));
    const done = await mapLimit(todo, this.jobs, (l, i, s) => this.compress(l, i, s), signal);
    const map = new Map<string, Descriptor>(todo.map((l, i) => [l.digest, done[i]!]));
    // Rewrite only the layer descriptors; every other field of the manifest is kept as it was.
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { layers: Array<Record<string, unknown>> };
    doc.layers = doc.layers.map((l) => {
      const to = map.get(l['digest'] as string);
      return to ? { ...l, mediaType: to.mediaType, digest: to.digest, size: to.size } : l;
    });
    const out = Buffer.from(JSON.stringify(doc));
    const descriptor: Descriptor = { mediaType: root.mediaType, digest: digestOf(out), size: out.length };
    this.rewritten = { descriptor, bytes: out };
    this.report.manifest = { from: root, to: descriptor };
    this.report.layers = todo.map((l, i) => ({ from: l, to: done[i]! }));
    return descriptor;
  }

  private async compress(layer: Descriptor, i: number, signal: AbortSignal): Promise<Descriptor> {
    const path = join(this.dir!, `layer-${i}.gz`);
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({ transform(c: Buffer, _e, cb) { hash.update(c); size += c.length; cb(null, c); } });
    // The source stream is verified against the original (uncompressed) digest as it is read.
    await pipeline(await this.inner.fetchBlob(layer, { signal }), new VerifyStream(layer, `layer ${layer.digest}`), createGzip({ level: 6, chunkSize: 256 * 1024 }), meter, createWriteStream(path), { signal });
    const digest = `sha256:${hash.digest('hex')}` as Digest;
    this.files.set(digest, path);
    return { mediaType: UNCOMPRESSED[layer.mediaType]!, digest, size };
  }

  async fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.rewritten && d.digest === this.rewritten.descriptor.digest) return this.rewritten.bytes;
    return this.inner.fetchManifest(d, signal);
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const file = this.files.get(d.digest);
    if (file) return createReadStream(file, { start: opts.offset ?? 0 });
    return this.inner.fetchBlob(d, opts);
  }

  async close(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    await this.inner.close();
  }
}
