/**
 * docker-archive: what `docker save` writes (protocol.md §6.1), read without unpacking.
 *
 * - `manifest.json` is required (a legacy-only archive with just `repositories` and `<id>/json` is
 *   refused, as containers/image and current `docker load` do). It lists images as
 *   `{Config, RepoTags, Layers, LayerSources?}`; one is selected by `name:tag` (compared as
 *   normalised references, so `alpine:3` matches `docker.io/library/alpine:3`), by `@index`, or as
 *   the only entry.
 * - Docker ≥25 archives are also OCI layouts: when `index.json` has a manifest (directly, or as a
 *   child of an index entry) whose config and layers are this entry's Config and Layers (same
 *   digests and sizes), that manifest is returned verbatim, so digests survive a round trip.
 * - Otherwise an OCI image manifest is synthesised. Config: its file's sha256. Layers, by what the
 *   file starts with: gzip → `tar+gzip`, zstd → `tar+zstd`, else `tar`; the digest, cheapest
 *   first: a `blobs/<alg>/<hex>` path names it; a `LayerSources` descriptor of the same size gives
 *   it; an uncompressed layer's digest is its config diff_id (the destination verifies it while
 *   writing); only otherwise is the file hashed (one pass). `fetchManifest` returns exactly the
 *   bytes whose digest `resolve()` reported.
 * Blobs stream from their offsets in the tar (links such as classic `<id>/layer.tar` →
 * `../<diffid>.tar` are followed). A gzipped archive is decompressed once to a temp file that
 * close() removes (src/archive/tar-index.ts).
 */
import type { Readable } from 'node:stream';
import type { TarIndex } from '../archive/tar-index.js';
import { FerryError, isFerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestOf } from '../oci/digest.js';
import { type ImageManifest, parseManifest } from '../oci/manifest.js';
import { isManifestType, MT } from '../oci/media-types.js';
import { type ImageReference, parseReference } from '../ref/index.js';
import { verifyBytes } from '../util/verify-stream.js';
import { diffIdsOf, digestFromBlobPath, hashFile, LAYER_TYPE, layerSourceDigest, parseJson, sniffLayer, type LayerKind } from './docker-archive-layers.js';
import { TarLayoutStorage } from './oci-archive-source.js';
import { blobRelPath, checkIndex } from './oci-layout.js';
import type { ImageSource } from './types.js';

const MAX_MANIFEST_JSON = 16 * 1024 * 1024;
const MAX_CONFIG = 16 * 1024 * 1024;
const MAX_MANIFEST = 4 * 1024 * 1024;
const MAX_INDEX_JSON = 64 * 1024 * 1024;

/** One `manifest.json` entry (containers/image `tarfile.ManifestItem`). */
export interface DockerArchiveItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, unknown>;
}

export interface DockerArchiveSelector {
  /** The entry whose RepoTags include this reference (name and tag; digests are not allowed). */
  ref?: ImageReference;
  /** The entry at this position in manifest.json. */
  index?: number;
}

interface Loaded {
  root: Descriptor;
  /** The root manifest's bytes (synthesised or read from the archive). */
  bytes: Uint8Array;
  /** Where each blob the manifest names lives in the tar. */
  blobs: Map<string, string>;
}

/** Reads an image from a `docker save`-style archive (see the file comment). */
export class DockerArchiveSource implements ImageSource {
  readonly description: string;
  private readonly storage: TarLayoutStorage;
  private items: Promise<DockerArchiveItem[]> | undefined;
  private loaded: Promise<Loaded> | undefined;

  constructor(private readonly path: string, private readonly selector: DockerArchiveSelector = {}) {
    this.storage = new TarLayoutStorage(path);
    const sel = selector.ref ? `:${selector.ref.familiar()}` : selector.index !== undefined ? `:@${selector.index}` : '';
    this.description = `docker-archive:${path}${sel}`;
  }

  /** RepoTags of every entry, in manifest.json order, as written. */
  async listTags(): Promise<string[]> {
    return (await this.manifestItems()).flatMap((it) => it.RepoTags);
  }

  async resolve(): Promise<Descriptor> {
    return (await this.load()).root;
  }

  async fetchManifest(d: Descriptor): Promise<Uint8Array> {
    const l = await this.load();
    if (d.digest === l.root.digest) {
      verifyBytes(l.bytes, d, `manifest ${d.digest} in ${this.description}`);
      return l.bytes;
    }
    if (d.size > MAX_MANIFEST) throw new FerryError('E_SIZE_MISMATCH', `manifest ${d.digest} is over the ${MAX_MANIFEST}-byte limit`);
    const tar = await this.storage.tar();
    const name = l.blobs.get(d.digest) ?? blobRelPath(d);
    if (!tar.get(name)) throw new FerryError('E_BAD_ARCHIVE', `${this.description}: manifest ${d.digest} is not in the archive`);
    const bytes = await tar.read(name, MAX_MANIFEST);
    verifyBytes(bytes, d, `manifest ${d.digest} in ${this.description}`);
    return bytes;
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const l = await this.load();
    const tar = await this.storage.tar();
    const name = l.blobs.get(d.digest) ?? blobRelPath(d);
    if (!tar.get(name)) throw new FerryError('E_BAD_ARCHIVE', `${this.description}: blob ${d.digest} is not in the archive`);
    return tar.stream(name, opts.offset ?? 0, opts.signal ? { signal: opts.signal } : {});
  }

  async close(): Promise<void> {
    await this.storage.close();
  }

  // ---------------------------------------------------------------------------------------------

  private manifestItems(): Promise<DockerArchiveItem[]> {
    if (!this.items) {
      const p = this.readManifestJson();
      this.items = p;
      p.catch(() => { if (this.items === p) this.items = undefined; });
    }
    return this.items;
  }

  private load(): Promise<Loaded> {
    if (!this.loaded) {
      const p = this.doLoad();
      this.loaded = p;
      p.catch(() => { if (this.loaded === p) this.loaded = undefined; });
    }
    return this.loaded;
  }

  private async readManifestJson(): Promise<DockerArchiveItem[]> {
    const tar = await this.storage.tar();
    const where = `manifest.json in ${this.path}`;
    if (!tar.get('manifest.json')) {
      if (tar.get('repositories')) {
        throw new FerryError('E_BAD_ARCHIVE', `${this.path} has no manifest.json: it is a legacy (pre-Docker 1.10) docker save archive, which ferry does not read`, {
          hint: 'load it with docker load and save it again with a current docker',
        });
      }
      if (tar.get('index.json')) {
        throw new FerryError('E_BAD_ARCHIVE', `${this.path} has no manifest.json: it is not a docker-archive`, { hint: `it has an index.json; read it with oci-archive:${this.path}` });
      }
      throw new FerryError('E_BAD_ARCHIVE', `${this.path} is not a docker-archive (no manifest.json)`, { hint: 'docker-archive: reads what docker save writes' });
    }
    const doc = parseJson(await tar.read('manifest.json', MAX_MANIFEST_JSON), where);
    if (!Array.isArray(doc)) throw new FerryError('E_BAD_ARCHIVE', `${where} is not a JSON array`);
    return doc.map((raw, i) => {
      const at = `${where}: entry ${i}`;
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FerryError('E_BAD_ARCHIVE', `${at} is not an object`);
      const o = raw as Record<string, unknown>;
      if (typeof o['Config'] !== 'string' || o['Config'] === '') throw new FerryError('E_BAD_ARCHIVE', `${at} has no "Config" path`);
      if (!Array.isArray(o['Layers']) || !o['Layers'].every((l) => typeof l === 'string')) throw new FerryError('E_BAD_ARCHIVE', `${at} has no "Layers" array of paths`);
      const tags = o['RepoTags'] ?? [];
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new FerryError('E_BAD_ARCHIVE', `${at}: "RepoTags" is not an array of strings`);
      const item: DockerArchiveItem = { Config: o['Config'], RepoTags: tags as string[], Layers: o['Layers'] as string[] };
      if (typeof o['Parent'] === 'string') item.Parent = o['Parent'];
      if (o['LayerSources'] && typeof o['LayerSources'] === 'object') item.LayerSources = o['LayerSources'] as Record<string, unknown>;
      return item;
    });
  }

  /** Applies the selector (see DockerArchiveSelector); errors list what the archive holds. */
  private select(items: DockerArchiveItem[]): { item: DockerArchiveItem; n: number } {
    const where = `docker-archive:${this.path}`;
    const available = (): string => items.map((it, i) => (it.RepoTags.length ? it.RepoTags.join(', ') : `@${i}`)).join(', ');
    if (items.length === 0) throw new FerryError('E_BAD_ARCHIVE', `${where}: manifest.json lists no images`);
    const { ref, index } = this.selector;
    if (ref && index !== undefined) throw new FerryError('E_BAD_REFERENCE', `${where}: name an image by reference or by @index, not both`);
    if (ref) {
      if (ref.digest) {
        throw new FerryError('E_BAD_REFERENCE', `${where}: images in a docker-archive are named by name:tag or @index, not by digest (${ref.familiar()})`, { hint: `available: ${available()}` });
      }
      const want = `${ref.name()}:${ref.tag ?? 'latest'}`;
      const n = items.findIndex((it) => it.RepoTags.some((t) => {
        try {
          const r = parseReference(t);
          return `${r.name()}:${r.tag ?? 'latest'}` === want;
        } catch {
          return false; // a RepoTags entry that is not a reference never matches
        }
      }));
      if (n < 0) throw new FerryError('E_LOCAL_NOT_FOUND', `${where}: no image tagged ${ref.familiar()}`, { hint: `available: ${available()}` });
      return { item: items[n]!, n };
    }
    if (index !== undefined) {
      if (!Number.isSafeInteger(index) || index < 0 || index >= items.length) {
        throw new FerryError('E_LOCAL_NOT_FOUND', `${where}: no image @${index} (the archive holds ${items.length}, @0…@${items.length - 1})`, { hint: `available: ${available()}` });
      }
      return { item: items[index]!, n: index };
    }
    if (items.length === 1) return { item: items[0]!, n: 0 };
    throw new FerryError('E_BAD_REFERENCE', `${where} holds ${items.length} images; name one with ${where}:NAME:TAG or ${where}:@INDEX`, { hint: `available: ${available()}` });
  }

  private async doLoad(): Promise<Loaded> {
    const tar = await this.storage.tar();
    const { item, n } = this.select(await this.manifestItems());
    const at = `${this.path}: manifest.json entry ${n}`;
    const need = (name: string, what: string): { name: string; size: number } => {
      const f = tar.get(name);
      if (!f) throw new FerryError('E_BAD_ARCHIVE', `${at} names ${what} ${JSON.stringify(name)}, which is not in the archive`);
      return f;
    };

    // Config: read whole (it is small and needed for diff_ids), digest computed from its bytes.
    need(item.Config, 'config');
    const configBytes = await tar.read(item.Config, MAX_CONFIG);
    const named = digestFromBlobPath(item.Config);
    const configDigest = digestOf(configBytes, named?.startsWith('sha512:') ? 'sha512' : 'sha256');
    if (named && named !== configDigest) {
      throw new FerryError('E_DIGEST_MISMATCH', `${this.path}: config ${item.Config} has digest ${configDigest}, not the one its name says`);
    }
    const diffIds = diffIdsOf(configBytes, `config ${item.Config} in ${this.path}`);
    if (diffIds.length !== item.Layers.length) {
      throw new FerryError('E_BAD_ARCHIVE', `${at} lists ${item.Layers.length} layers but its config has ${diffIds.length} diff_ids`);
    }

    // Layers: type from the file's magic, digest from whatever names it without reading it.
    const layers: Array<{ path: string; file: string; size: number; kind: LayerKind; digest?: Digest }> = [];
    const diffIdOfFile = new Map<string, string>();
    for (const [i, path] of item.Layers.entries()) {
      const f = need(path, `layer ${i}`);
      const kind = await sniffLayer(tar, path, `${this.path}: layer ${path}`);
      let digest = digestFromBlobPath(path) ?? layerSourceDigest(item.LayerSources, diffIds[i]!, f.size);
      if (!digest && kind === 'tar') {
        const prev = diffIdOfFile.get(f.name);
        if (prev !== undefined && prev !== diffIds[i]) {
          throw new FerryError('E_BAD_ARCHIVE', `${at}: layer file ${path} is used for two different diff_ids (${prev}, ${diffIds[i]})`);
        }
        diffIdOfFile.set(f.name, diffIds[i]!);
        digest = diffIds[i] as Digest;
      }
      layers.push({ path, file: f.name, size: f.size, kind, ...(digest ? { digest } : {}) });
    }

    const hybrid = await this.matchIndex(tar, configDigest, configBytes.length, layers);
    if (hybrid) {
      const blobs = new Map<string, string>([[hybrid.manifest.config.digest, item.Config]]);
      hybrid.manifest.layers.forEach((l, i) => blobs.set(l.digest, item.Layers[i]!));
      return { root: hybrid.descriptor, bytes: hybrid.bytes, blobs };
    }

    for (const l of layers) l.digest ??= await hashFile(tar, l.path);
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: LAYER_TYPE[l.kind], digest: l.digest!, size: l.size })),
    };
    const bytes = new Uint8Array(Buffer.from(JSON.stringify(manifest), 'utf8'));
    const blobs = new Map<string, string>([[configDigest, item.Config]]);
    layers.forEach((l) => blobs.set(l.digest!, l.path));
    return { root: { mediaType: MT.ociManifest, digest: digestOf(bytes), size: bytes.length }, bytes, blobs };
  }

  /**
   * Docker ≥25: the index.json manifest (an entry, or a child of an index entry) whose config and
   * layers are exactly this entry's. Anything unreadable in index.json just means "no match":
   * the synthesised manifest describes the same content.
   */
  private async matchIndex(
    tar: TarIndex, configDigest: Digest, configSize: number, layers: Array<{ size: number; digest?: Digest }>,
  ): Promise<{ descriptor: Descriptor; bytes: Uint8Array; manifest: ImageManifest } | undefined> {
    if (!tar.get('index.json')) return undefined;
    let candidates: Descriptor[];
    try {
      candidates = checkIndex(parseJson(await tar.read('index.json', MAX_INDEX_JSON), 'index.json'), 'index.json').manifests;
    } catch (e) {
      if (isFerryError(e)) return undefined;
      throw e;
    }
    const seen = new Set<string>();
    const readManifest = async (d: Descriptor): Promise<{ bytes: Uint8Array; m: ReturnType<typeof parseManifest> } | undefined> => {
      if (seen.has(d.digest) || d.size > MAX_MANIFEST || !tar.get(blobRelPath(d))) return undefined;
      seen.add(d.digest);
      try {
        const bytes = await tar.read(blobRelPath(d), MAX_MANIFEST);
        verifyBytes(bytes, d, `manifest ${d.digest}`);
        return { bytes, m: parseManifest(bytes, d.mediaType, `manifest ${d.digest}`) };
      } catch (e) {
        if (isFerryError(e)) return undefined;
        throw e;
      }
    };
    const matches = (m: ImageManifest): boolean =>
      m.config.digest === configDigest && m.config.size === configSize && m.layers.length === layers.length &&
      m.layers.every((l, i) => l.digest === layers[i]!.digest && l.size === layers[i]!.size);
    // index.json entries first, then (one level down) the children of index entries.
    const queue = candidates.map((d) => ({ d, depth: 0 }));
    for (let i = 0; i < queue.length; i++) {
      const { d, depth } = queue[i]!;
      const r = await readManifest(d);
      if (!r) continue;
      if (r.m.kind === 'image') {
        if (matches(r.m)) return { descriptor: { mediaType: r.m.mediaType, digest: d.digest, size: d.size }, bytes: r.bytes, manifest: r.m };
      } else if (depth === 0) {
        queue.push(...r.m.manifests.filter((c) => isManifestType(c.mediaType)).map((c) => ({ d: c, depth: 1 })));
      }
    }
    return undefined;
  }
}
