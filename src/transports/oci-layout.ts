import { constants as fsConstants, createReadStream, existsSync } from 'node:fs';
import { copyFile, link, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import { ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, type Descriptor } from '../oci/descriptor.js';
import { digestAlgorithm, digestHex } from '../oci/digest.js';
import { selectEntry } from './layout-names.js';
import { MT } from '../oci/media-types.js';
import { descriptor } from '../oci/manifest.js';
import { readBounded } from '../util/bounded.js';
import { verifyBytes, } from '../util/verify-stream.js';
import { writeVerifiedFile } from '../util/verified-file.js';
import { isRetryableNetworkError } from '../http/network-errors.js';
import { ioError } from '../util/fs-errors.js';
import { ensureDir, ensureFreeSpace, fileSize, readJsonFile, removeDeadTemps, tempNameFor, writeFileAtomic, type StatFs } from './fs-util.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, ImageSource, PutBlobOptions, TransferPlan } from './types.js';

const MAX_MANIFEST = 4 * 1024 * 1024;
/** index.json grows with every tag a layout holds; still bounded, as it is read whole. */
const MAX_INDEX_JSON = 64 * 1024 * 1024;
export const OCI_LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: '1.0.0' });

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** `blobs/<alg>/<encoded>`, relative to a layout's root (a validated digest has no `/` or `.`). */
export function blobRelPath(d: { digest: string }): string {
  return `blobs/${digestAlgorithm(d.digest as `${string}:${string}`)}/${digestHex(d.digest as `${string}:${string}`)}`;
}

export function blobPath(dir: string, d: { digest: string }): string {
  return join(dir, 'blobs', digestAlgorithm(d.digest as `${string}:${string}`), digestHex(d.digest as `${string}:${string}`));
}

/** Validates a parsed index.json (`where` names it in errors). */
export function checkIndex(idx: unknown, where: string): IndexJson {
  const i = idx as IndexJson;
  if (typeof idx !== 'object' || idx === null || !Array.isArray(i.manifests)) {
    throw new FerryError('E_BAD_ARCHIVE', `${where} is not an OCI image index (no "manifests" array)`);
  }
  i.manifests.forEach((m, n) => descriptor(m, `${where} manifests[${n}]`));
  return i;
}

export async function readIndex(dir: string): Promise<IndexJson | undefined> {
  const idx = await readJsonFile<IndexJson>(join(dir, 'index.json'), 'OCI layout index');
  if (idx === undefined) return undefined;
  return checkIndex(idx, join(dir, 'index.json'));
}

/** Picks the index.json entry `sel` names (layout-names.ts selectEntry). */
export function selectFromIndex(idx: IndexJson, sel: string | undefined, where: string): Descriptor {
  return selectEntry(idx.manifests, sel, where);
}

/**
 * Read access to the files of an OCI image layout by path relative to its root (`index.json`,
 * `blobs/sha256/<hex>`), so one reader serves a directory (DirectoryStorage) and a tar archive
 * (the oci-archive transport's index over the tar).
 */
export interface LayoutStorage {
  /** A whole small file, or undefined when it does not exist; over `max` bytes → E_SIZE_MISMATCH. */
  readFile(rel: string, max: number, what: string): Promise<Uint8Array | undefined>;
  /** The file's bytes from `offset` on, once opened; a missing file → E_NO_SUCH_FILE naming it. */
  openFile(rel: string, offset: number, signal?: AbortSignal): Promise<Readable>;
  /** How messages name `rel`, e.g. `/data/x/index.json` or `index.json in x.tar`. */
  locate(rel: string): string;
  close(): Promise<void>;
}

/** A layout directory on disk. */
export class DirectoryStorage implements LayoutStorage {
  constructor(readonly dir: string) {}

  async readFile(rel: string, max: number, what: string): Promise<Uint8Array | undefined> {
    const path = this.locate(rel);
    let s: Readable;
    try {
      s = await this.openFile(rel, 0);
    } catch (e) {
      if ((e as { code?: string }).code === 'E_NO_SUCH_FILE') return undefined;
      throw e;
    }
    return readBounded(s, max, what).catch((e) => { throw ioError(e, path); });
  }

  async openFile(rel: string, offset: number, signal?: AbortSignal): Promise<Readable> {
    const path = this.locate(rel);
    const s = createReadStream(path, { start: offset, ...(signal ? { signal } : {}) });
    await new Promise<void>((resolve, reject) => s.once('open', () => resolve()).once('error', (e) => reject(ioError(e, path))));
    return s;
  }

  locate(rel: string): string {
    return join(this.dir, ...rel.split('/'));
  }

  async close(): Promise<void> {}
}

export interface LayoutSourceNames {
  /** ImageSource.description, e.g. `oci:/data/x:v1`. */
  description: string;
  /** Names the layout in selection errors (`<where>:<tag>`), e.g. `oci:/data/x`. */
  where: string;
  /** The error for a layout without index.json. */
  noIndex: () => FerryError;
}

/**
 * Reads an OCI image layout (image-spec image-layout.md) through a LayoutStorage: selection by
 * ref name or digest (selectFromIndex), manifests verified, blobs streamed raw.
 */
export class LayoutSource implements ImageSource {
  readonly description: string;
  private idx: Promise<IndexJson> | undefined;

  constructor(protected readonly storage: LayoutStorage, protected readonly tag: string | undefined, private readonly names: LayoutSourceNames) {
    this.description = names.description;
  }

  /** The validated index.json (read once). */
  index(): Promise<IndexJson> {
    this.idx ??= (async () => {
      const bytes = await this.storage.readFile('index.json', MAX_INDEX_JSON, this.storage.locate('index.json'));
      if (bytes === undefined) throw this.names.noIndex();
      let doc: unknown;
      try {
        doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
      } catch (e) {
        throw new FerryError('E_BAD_ARCHIVE', `OCI layout index ${this.storage.locate('index.json')} is not valid JSON: ${(e as Error).message}`);
      }
      return checkIndex(doc, this.storage.locate('index.json'));
    })();
    // A failed read is not cached: the next call tries again.
    this.idx.catch(() => { this.idx = undefined; });
    return this.idx;
  }

  async resolve(): Promise<Descriptor> {
    return selectFromIndex(await this.index(), this.tag, this.names.where);
  }

  async listTags(): Promise<string[]> {
    return (await this.index()).manifests.map((m) => m.annotations?.[ANNOTATION_REF_NAME]).filter((t): t is string => !!t);
  }

  async fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (d.size > MAX_MANIFEST) throw new FerryError('E_SIZE_MISMATCH', `manifest ${d.digest} is over the ${MAX_MANIFEST}-byte limit`);
    const rel = blobRelPath(d);
    const s = await this.storage.openFile(rel, 0, signal);
    const bytes = await readBounded(s, MAX_MANIFEST, `manifest ${d.digest}`).catch((e) => { throw ioError(e, this.storage.locate(rel)); });
    verifyBytes(bytes, d, `manifest ${d.digest} in ${this.description}`);
    return bytes;
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    return this.storage.openFile(blobRelPath(d), opts.offset ?? 0, opts.signal);
  }

  async close(): Promise<void> {
    await this.storage.close();
  }
}

/**
 * Puts a verified file (the blob cache's) at `tmp` without copying its bytes: a hard link, else
 * a reflink (copy-on-write clone, btrfs/XFS); false when the filesystem allows neither (another
 * filesystem, no links), and the caller copies with verification.
 */
async function linkOrClone(from: string, tmp: string): Promise<boolean> {
  try {
    await link(from, tmp);
    return true;
  } catch {
    /* EXDEV, EPERM, EMLINK, ENOTSUP: try a clone */
  }
  try {
    await copyFile(from, tmp, fsConstants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    await rm(tmp, { force: true });
    return false;
  }
}

/** Reads an OCI image layout directory (image-spec image-layout.md). */
export class OciLayoutSource extends LayoutSource {
  constructor(dir: string, tag?: string) {
    super(new DirectoryStorage(dir), tag, {
      description: `oci:${dir}${tag ? `:${tag}` : ''}`,
      where: `oci:${dir}`,
      noIndex: () => existsSync(dir) ? new FerryError('E_BAD_ARCHIVE', `${dir} is not an OCI layout (no index.json)`) : new FerryError('E_NO_SUCH_FILE', `no such file or directory: ${dir}`),
    });
  }
}

/**
 * Writes into an OCI image layout directory. Blobs are written to temp names in their final
 * directory and renamed only after their digest and size are verified; blobs already present are
 * skipped, so an interrupted pull resumes cheaply. index.json is rewritten atomically at commit,
 * replacing any entry with the same ref name; several images may be added in one run.
 */
export class OciLayoutDestination implements ImageDestination {
  readonly description: string;
  static readonly capabilities: DestinationCapabilities = { concurrentWrites: true, compressedLayers: false, multipleImages: true, platforms: 'index', mount: false };
  readonly capabilities = OciLayoutDestination.capabilities;
  private readonly roots: Array<{ d: Descriptor; refName: string | undefined; fullName: string | undefined }> = [];
  private readonly temps = new Set<string>();
  private ready: Promise<void> | undefined;

  constructor(private readonly dir: string, private readonly opts: { statfs?: StatFs } = {}) {
    this.description = `oci:${dir}`;
  }

  /** Checks free space for what is not in the layout yet, before anything is downloaded. */
  async prepare(plan: TransferPlan): Promise<void> {
    await this.init();
    let need = 0;
    for (const b of plan.blobs) if (!(await this.hasBlob(b))) need += b.size;
    for (const m of plan.manifests) need += m.descriptor.size;
    await ensureFreeSpace(this.dir, need, this.description, this.opts.statfs);
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
      // Blob temps of killed earlier runs (this machine, dead pids).
      await removeDeadTemps(join(this.dir, 'blobs', 'sha256'), true);
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
      const linked = src.file ? await linkOrClone(await src.file(opts.signal ? { signal: opts.signal } : {}), tmp) : false;
      if (!linked) {
        await writeVerifiedFile(tmp, d, (offset, signal) => src.open(offset, signal), {
          ...opts, what: `blob ${d.digest}`, isRetryable: isRetryableNetworkError,
        });
      }
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
    if (opts.root) this.roots.push({ d: { mediaType: d.mediaType, digest: d.digest, size: d.size }, refName: opts.root.refName, fullName: opts.root.repoTag });
  }

  async commit(): Promise<void> {
    if (this.roots.length === 0) throw new FerryError('E_INTERNAL', 'commit() called before any root manifest was written');
    const idx: IndexJson = (await readIndex(this.dir)) ?? { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
    for (const { d, refName, fullName } of this.roots) {
      const entry: Descriptor = { ...d };
      // ref.name is what `oci:DIR:TAG` selects (the tag, as skopeo writes it); the full
      // reference goes beside it for ctr import / docker (layout-names.ts).
      const annotations: Record<string, string> = {};
      if (fullName) annotations[ANNOTATION_CONTAINERD_NAME] = fullName;
      if (refName) annotations[ANNOTATION_REF_NAME] = refName;
      if (Object.keys(annotations).length > 0) entry.annotations = annotations;
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
