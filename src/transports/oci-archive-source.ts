/**
 * oci-archive: an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>) inside a tar, as
 * containers/image's `oci-archive:` transport writes it (protocol.md §6.2). Nothing is unpacked:
 * the tar is indexed once (src/archive/tar-index.ts; a gzipped archive is decompressed once to a
 * temp file, removed on close) and every file is read from its offset. Selection is the layout's
 * (LayoutSource, layout-names.ts): `:SEL` matches either name an entry carries
 * (`org.opencontainers.image.ref.name`, `io.containerd.image.name`), their tag, or a digest; a
 * selector naming two different images is an error listing them; without one the archive must
 * hold exactly one image.
 */
import type { Readable } from 'node:stream';
import { TarIndex } from '../archive/tar-index.js';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { LayoutSource, type LayoutStorage } from './oci-layout.js';

/** LayoutStorage over a tar archive, indexed on first use. Shared by both archive sources. */
export class TarLayoutStorage implements LayoutStorage {
  private idx: Promise<TarIndex> | undefined;

  constructor(readonly archive: string) {}

  /** The archive's index (built once; a failure is retried on the next call). */
  tar(): Promise<TarIndex> {
    if (!this.idx) {
      const p = TarIndex.open(this.archive);
      this.idx = p;
      p.catch(() => { if (this.idx === p) this.idx = undefined; });
    }
    return this.idx;
  }

  async readFile(rel: string, max: number): Promise<Uint8Array | undefined> {
    const t = await this.tar();
    if (!t.get(rel)) return undefined;
    return t.read(rel, max);
  }

  async openFile(rel: string, offset: number, signal?: AbortSignal): Promise<Readable> {
    const t = await this.tar();
    if (!t.get(rel)) throw new FerryError('E_BAD_ARCHIVE', `no ${rel} in ${this.archive}`);
    return t.stream(rel, offset, signal ? { signal } : {});
  }

  locate(rel: string): string {
    return `${rel} in ${this.archive}`;
  }

  async close(): Promise<void> {
    const p = this.idx;
    this.idx = undefined;
    const t = await p?.catch(() => undefined);
    await t?.close();
  }
}

/** Reads an image from an oci-archive tar (see the file comment). */
export class OciArchiveSource extends LayoutSource {
  private readonly tarStorage: TarLayoutStorage;

  constructor(path: string, tag?: string) {
    const storage = new TarLayoutStorage(path);
    super(storage, tag, {
      description: `oci-archive:${path}${tag ? `:${tag}` : ''}`,
      where: `oci-archive:${path}`,
      noIndex: () => new FerryError('E_BAD_ARCHIVE', `${path} is not an OCI archive (no index.json)`, {
        hint: 'for a `docker save` archive use docker-archive:PATH',
      }),
    });
    this.tarStorage = storage;
  }

  override async resolve(): Promise<Descriptor> {
    await this.checkLayout();
    return super.resolve();
  }

  override async listTags(): Promise<string[]> {
    await this.checkLayout();
    return super.listTags();
  }

  /** A missing index.json gets a hint naming what the archive looks like instead. */
  private async checkLayout(): Promise<void> {
    const t = await this.tarStorage.tar();
    if (t.get('index.json')) return;
    const path = this.tarStorage.archive;
    if (t.get('manifest.json') || t.get('repositories')) {
      throw new FerryError('E_BAD_ARCHIVE', `${path} is not an OCI archive (no index.json); it looks like a docker-archive`, { hint: `read it with docker-archive:${path}` });
    }
    throw new FerryError('E_BAD_ARCHIVE', `${path} is not an OCI archive (no index.json)`, {
      hint: t.names().length ? `it holds: ${t.names().slice(0, 8).join(', ')}${t.names().length > 8 ? ', …' : ''}` : 'the archive is empty',
    });
  }
}
