import { createReadStream } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import { ANNOTATION_REF_NAME, type Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, digestHex, isDigest } from '../oci/digest.js';
import { MT } from '../oci/media-types.js';
import { descriptor } from '../oci/manifest.js';
import { readBounded } from '../util/bounded.js';
import { verifyBytes, } from '../util/verify-stream.js';
import { writeVerifiedFile } from '../util/verified-file.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import { ensureDir, fileSize, ioError, readJsonFile, tempNameFor, writeFileAtomic } from './fs-util.js';
import type { BlobReader, ImageDestination, ImageNames, ImageSource, PutBlobOptions } from './types.js';

const MAX_MANIFEST = 4 * 1024 * 1024;
export const OCI_LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export function blobPath(dir: string, d: { digest: string }): string {
  return join(dir, 'blobs', digestAlgorithm(d.digest as `${string}:${string}`), digestHex(d.digest as `${string}:${string}`));
}

export async function readIndex(dir: string): Promise<IndexJson | undefined> {
  const idx = await readJsonFile<IndexJson>(join(dir, 'index.json'), 'OCI layout index');
  if (idx === undefined) return undefined;
  if (typeof idx !== 'object' || idx === null || !Array.isArray(idx.manifests)) {
    throw new FerryError('E_BAD_ARCHIVE', `${join(dir, 'index.json')} is not an OCI image index (no "manifests" array)`);
  }
  idx.manifests.forEach((m, i) => descriptor(m, `${join(dir, 'index.json')} manifests[${i}]`));
  return idx;
}

/** Picks the index.json entry named by `tag` (ref.name annotation, or a digest); without a tag
 * the layout must hold exactly one image. Errors list what the layout holds. */
export function selectFromIndex(idx: IndexJson, tag: string | undefined, where: string): Descriptor {
  const names = idx.manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME] ?? m.digest);
  if (tag === undefined) {
    if (idx.manifests.length === 1) return idx.manifests[0]!;
    throw new FerryError('E_BAD_REFERENCE', idx.manifests.length === 0 ? `${where} holds no images` : `${where} holds ${idx.manifests.length} images; name one with ${where}:<tag>`, {
      hint: idx.manifests.length ? `available: ${names.join(', ')}` : undefined,
    });
  }
  const hit = idx.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === tag) ?? (isDigest(tag) ? idx.manifests.find((m) => m.digest === tag) : undefined);
  if (!hit) throw new FerryError('E_NOT_FOUND', `${where}: no image tagged "${tag}"`, { hint: names.length ? `available: ${names.join(', ')}` : 'the layout is empty' });
  return hit;
}

/** Reads an OCI image layout directory (image-spec image-layout.md). */
export class OciLayoutSource implements ImageSource {
  readonly description: string;
  constructor(private readonly dir: string, private readonly tag?: string) {
    this.description = `oci:${dir}${tag ? `:${tag}` : ''}`;
  }

  private async index(): Promise<IndexJson> {
    const idx = await readIndex(this.dir);
    if (!idx) throw new FerryError('E_NOT_FOUND', `${this.dir} is not an OCI layout (no index.json)`);
    return idx;
  }

  async resolve(): Promise<Descriptor> {
    return selectFromIndex(await this.index(), this.tag, `oci:${this.dir}`);
  }

  async listTags(): Promise<string[]> {
    return (await this.index()).manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter((t): t is string => !!t);
  }

  async fetchManifest(d: Descriptor): Promise<Uint8Array> {
    if (d.size > MAX_MANIFEST) throw new FerryError('E_SIZE_MISMATCH', `manifest ${d.digest} is over the ${MAX_MANIFEST}-byte limit`);
    const bytes = await readBounded(this.openFile(d, 0), MAX_MANIFEST, `manifest ${d.digest}`).catch((e) => { throw ioError(e, blobPath(this.dir, d)); });
    verifyBytes(bytes, d, `manifest ${d.digest} in ${this.description}`);
    return bytes;
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number } = {}): Promise<Readable> {
    const s = this.openFile(d, opts.offset ?? 0);
    await new Promise<void>((resolve, reject) => s.once('open', () => resolve()).once('error', (e) => reject(ioError(e, blobPath(this.dir, d)))));
    return s;
  }

  private openFile(d: Descriptor, offset: number) {
    return createReadStream(blobPath(this.dir, d), { start: offset });
  }

  async close(): Promise<void> {}
}

/**
 * Writes into an OCI image layout directory. Blobs are written to temp names in their final
 * directory and renamed only after their digest and size are verified; blobs already present are
 * skipped, so an interrupted pull resumes cheaply. index.json is rewritten atomically at commit,
 * replacing any entry with the same ref name; several images may be added in one run.
 */
export class OciLayoutDestination implements ImageDestination {
  readonly description: string;
  readonly capabilities = { concurrentWrites: true };
  private readonly roots: Array<{ d: Descriptor; refName: string | undefined }> = [];
  private readonly temps = new Set<string>();
  private ready: Promise<void> | undefined;

  constructor(private readonly dir: string) {
    this.description = `oci:${dir}`;
  }

  private init(): Promise<void> {
    this.ready ??= (async () => {
      const entries = await readdir(this.dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [] as string[];
        throw ioError(e, this.dir);
      });
      if (entries.length > 0 && !entries.includes('oci-layout')) {
        throw new FerryError('E_USAGE', `${this.dir} exists and is not an OCI layout; refusing to write into it`, { hint: 'choose an empty or new directory' });
      }
      await ensureDir(join(this.dir, 'blobs', 'sha256'));
      if (!entries.includes('oci-layout')) await writeFileAtomic(join(this.dir, 'oci-layout'), OCI_LAYOUT_FILE);
    })();
    return this.ready;
  }

  async hasBlob(d: Descriptor): Promise<boolean> {
    await this.init();
    return (await fileSize(blobPath(this.dir, d))) === d.size;
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<void> {
    await this.init();
    const final = blobPath(this.dir, d);
    await ensureDir(join(final, '..'));
    const tmp = tempNameFor(final);
    this.temps.add(tmp);
    try {
      await writeVerifiedFile(tmp, d, (offset, signal) => src.open(offset, signal), {
        ...opts, what: `blob ${d.digest}`, isRetryable: isRetryableNetworkError,
      });
      await rename(tmp, final);
      this.temps.delete(tmp);
    } catch (e) {
      throw ioError(e, final);
    }
  }

  async putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames }): Promise<void> {
    await this.init();
    verifyBytes(bytes, d, `manifest ${d.digest}`);
    const final = blobPath(this.dir, d);
    if ((await fileSize(final)) !== d.size) await writeFileAtomic(final, bytes);
    if (opts.root) this.roots.push({ d: { mediaType: d.mediaType, digest: d.digest, size: d.size }, refName: opts.root.refName });
  }

  async commit(): Promise<void> {
    if (this.roots.length === 0) throw new FerryError('E_INTERNAL', 'commit() called before any root manifest was written');
    const idx: IndexJson = (await readIndex(this.dir)) ?? { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
    for (const { d, refName } of this.roots) {
      const entry: Descriptor = { ...d };
      if (refName) entry.annotations = { [ANNOTATION_REF_NAME]: refName };
      // Same ref name → replaced (as a tag moves); unnamed → deduplicated by digest.
      idx.manifests = idx.manifests.filter((m) => (refName ? m.annotations?.[ANNOTATION_REF_NAME] !== refName : !(m.digest === d.digest && !m.annotations?.[ANNOTATION_REF_NAME])));
      idx.manifests.push(entry);
    }
    idx.mediaType ??= MT.ociIndex;
    await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(idx));
  }

  async close(): Promise<void> {
    await Promise.all([...this.temps].map((t) => rm(t, { force: true })));
    this.temps.clear();
  }
}
