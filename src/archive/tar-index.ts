/**
 * Random access to the files inside a tar archive without unpacking it.
 *
 * `TarIndex.open(path)` walks the archive's headers once with positional reads and never reads
 * file data (tar-scan.ts: ustar, PAX, GNU long names, base-256 sizes, links). Names are
 * normalised (`./a//b/` → `a/b`, leading `/` dropped); a later entry with the same name replaces
 * an earlier one, as when extracting.
 *
 * Lookups resolve links: hardlink targets are archive paths, symlink targets are relative to the
 * link's directory (absolute ones to the archive root), links in leading path components are
 * followed too, and more than 40 hops is reported as a loop. Nothing outside the archive is ever
 * read: a target that leaves the archive root simply does not exist.
 *
 * Whole-archive gzip (`docker save | gzip`) cannot be read at random, so such an archive is
 * decompressed ONCE into a private temp directory under `os.tmpdir()`, and that copy is indexed
 * and read; close() deletes it (and, as a last resort, so does process exit). This is the only
 * case that copies bytes. zstd/xz/bzip2-compressed archives are recognised and refused.
 *
 * A truncated or corrupt archive fails with E_BAD_ARCHIVE naming the file and the byte offset.
 * No file descriptor is held between calls: each read opens the file, so an index that is never
 * closed leaks nothing but (for gzip) its temp copy until the process exits.
 */
import { createReadStream, createWriteStream, ReadStream } from 'node:fs';
import { mkdtemp, open as openFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { exitCleanup } from '../util/exit-cleanup.js';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { FerryError } from '../errors.js';
import { normalizeTarName } from './tar-fields.js';
import { ioError } from '../util/fs-errors.js';
import { seekableFile } from './spool.js';
import { badArchive, scanTar, type ScanSource, type TarEntry } from './tar-scan.js';

export { normalizeTarName };
export type { TarEntry, TarEntryType } from './tar-scan.js';

/** A regular file found by `get()`: where its bytes are. `name` is after link resolution. */
export interface TarFile {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

export interface TarIndexOptions {
  signal?: AbortSignal;
  /** Where to put the decompressed copy of a gzipped archive (default `os.tmpdir()`). */
  tmpDir?: string;
}

const MAX_LINK_HOPS = 40; // like Linux's ELOOP limit

const GZIP_MAGIC = [0x1f, 0x8b];
const OTHER_COMPRESSION: Array<{ magic: number[]; name: string }> = [
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: 'zstd' },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: 'xz' },
  { magic: [0x42, 0x5a, 0x68], name: 'bzip2' },
];

function startsWith(buf: Uint8Array, magic: number[]): boolean {
  return buf.length >= magic.length && magic.every((b, i) => buf[i] === b);
}

/** Open temp copies, removed synchronously if the process exits without close(). */

export class TarIndex {
  private entries = new Map<string, TarEntry>();
  private closed = false;

  private constructor(
    /** The archive as named by the caller (used in messages). */
    readonly archive: string,
    /** The file actually read: the archive itself, or its decompressed temp copy. */
    readonly file: string,
    /** 'gzip' when the archive was decompressed to a temp copy. */
    readonly compression: 'gzip' | undefined,
    private readonly tempDir: string | undefined,
  ) {}

  /** Indexes `path` (decompressing a gzipped archive first; a pipe or device is copied to a
   * temp file first, spool.ts). */
  static async open(path: string, opts: TarIndexOptions = {}): Promise<TarIndex> {
    const input = await seekableFile(path, opts.signal ? { signal: opts.signal } : {});
    const head = await readHead(input, 8, path);
    if (head.length === 0) throw new FerryError('E_BAD_ARCHIVE', `${path} is empty, not a tar archive`);
    for (const c of OTHER_COMPRESSION) {
      if (startsWith(head, c.magic)) {
        throw new FerryError('E_UNSUPPORTED', `${path} is a ${c.name}-compressed archive, which ferry cannot read directly`, {
          hint: `decompress it first (e.g. ${c.name === 'zstd' ? 'zstd -d' : c.name === 'xz' ? 'xz -d' : 'bunzip2'} ${path})`,
        });
      }
    }
    if (!startsWith(head, GZIP_MAGIC)) {
      const idx = new TarIndex(path, input, undefined, undefined);
      idx.entries = await scanTar(idx.source(), opts.signal);
      return idx;
    }
    const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'ferry-gunzip-')).catch((e) => {
      throw new FerryError('E_IO', `cannot create a temp directory to decompress ${path}: ${(e as Error).message}`, { cause: e });
    });
    exitCleanup.add(dir);
    const file = join(dir, 'archive.tar');
    const idx = new TarIndex(path, file, 'gzip', dir);
    try {
      await pipeline(createReadStream(input, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: 256 * 1024 }), createWriteStream(file), { signal: opts.signal });
    } catch (e) {
      await idx.close();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new FerryError('E_NO_SPACE', `no space left in ${dir} to decompress ${path}`, { cause: e, hint: 'set TMPDIR to a directory with more room' });
      }
      if (code?.startsWith('Z_')) {
        throw new FerryError('E_BAD_ARCHIVE', `${path}: corrupt or truncated gzip stream: ${(e as Error).message}`, { cause: e });
      }
      throw e;
    }
    try {
      idx.entries = await scanTar(idx.source(), opts.signal);
    } catch (e) {
      await idx.close();
      throw e;
    }
    return idx;
  }

  /** Every entry name (normalised, links and directories included), in archive order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry recorded under `name`, links unresolved. */
  entry(name: string): TarEntry | undefined {
    return this.entries.get(normalizeTarName(name));
  }

  /**
   * The regular file `name` refers to, following links; undefined when there is none (or it is a
   * directory, device, or a link to nothing). A link loop → E_BAD_ARCHIVE; a GNU sparse member →
   * E_UNSUPPORTED.
   */
  get(name: string): TarFile | undefined {
    const e = this.resolve(name);
    if (!e) return undefined;
    if (e.type === 'sparse') throw new FerryError('E_UNSUPPORTED', `${this.archive}: ${e.name} is a sparse file, which ferry cannot read from an archive`);
    if (e.type !== 'file') return undefined;
    return { name: e.name, offset: e.offset, size: e.size };
  }

  /** Like get(), but a missing file is an E_BAD_ARCHIVE naming the archive. */
  require(name: string): TarFile {
    const f = this.get(name);
    if (!f) throw new FerryError('E_BAD_ARCHIVE', `${this.archive}: no file ${JSON.stringify(normalizeTarName(name))} in the archive`);
    return f;
  }

  /**
   * The bytes of file `name` from `start` on, as a stream (fs.createReadStream over its range).
   * Errors opening the file arrive as stream errors; see stream() for an awaited open.
   */
  open(name: string, start = 0, opts: { signal?: AbortSignal } = {}): Readable {
    this.checkOpen();
    const f = this.require(name);
    if (!Number.isSafeInteger(start) || start < 0 || start > f.size) {
      throw new FerryError('E_INTERNAL', `${this.archive}: read of ${f.name} from offset ${start}, but it has ${f.size} bytes`);
    }
    if (start === f.size) return Readable.from([]);
    return createReadStream(this.file, { start: f.offset + start, end: f.offset + f.size - 1, ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  /** open(), resolved once the file is open (so a missing archive rejects here, not mid-stream). */
  async stream(name: string, start = 0, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    const s = this.open(name, start, opts);
    if (s instanceof ReadStream && s.pending) {
      await new Promise<void>((resolve, reject) => {
        const onReady = (): void => {
          s.off('error', onError);
          resolve();
        };
        const onError = (e: Error): void => {
          s.off('ready', onReady);
          reject(this.fsError(e));
        };
        s.once('ready', onReady).once('error', onError);
      });
    }
    return s;
  }

  /** The whole of file `name`; larger than `max` bytes → E_SIZE_MISMATCH. */
  async read(name: string, max: number): Promise<Buffer> {
    this.checkOpen();
    const f = this.require(name);
    if (f.size > max) throw new FerryError('E_SIZE_MISMATCH', `${this.archive}: ${f.name} is larger than the ${max}-byte limit (${f.size} bytes)`);
    return this.readAt(f.offset, f.size, f.name);
  }

  /** Up to the first `n` bytes of file `name` (fewer if it is shorter); for sniffing magic numbers. */
  async peek(name: string, n: number): Promise<Buffer> {
    this.checkOpen();
    const f = this.require(name);
    return this.readAt(f.offset, Math.min(n, f.size), f.name);
  }

  /** Deletes the decompressed copy, if any. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.tempDir) {
      await rm(this.tempDir, { recursive: true, force: true });
      exitCleanup.delete(this.tempDir);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new FerryError('E_INTERNAL', `${this.archive}: tar index used after close()`);
  }

  private source(): ScanSource {
    return { file: this.file, archive: this.archive, decompressed: this.compression !== undefined };
  }

  private fsError(e: unknown): unknown {
    return ioError(e, this.archive);
  }

  private async readAt(position: number, length: number, what: string): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    if (length === 0) return buf;
    const fh = await openFile(this.file, 'r').catch((e) => {
      throw this.fsError(e);
    });
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, position + got);
        if (bytesRead === 0) throw badArchive(this.source(), position + got, `${what} ends early (the archive changed or was truncated after it was indexed)`);
        got += bytesRead;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  private resolve(name: string): TarEntry | undefined {
    const original = normalizeTarName(name);
    let path = original;
    for (let hops = 0; ; ) {
      if (path === '' || isOutside(path)) return undefined;
      const parts = path.split('/');
      let next: string | undefined;
      for (let i = 1; i <= parts.length && next === undefined; i++) {
        const e = this.entries.get(i === parts.length ? path : parts.slice(0, i).join('/'));
        if (!e) {
          if (i === parts.length) return undefined;
          continue; // an implicit parent directory
        }
        if (e.type === 'symlink' || e.type === 'hardlink') {
          const target = e.target ?? '';
          if (isOutside(target)) return undefined; // never leave the archive
          next = normalizeTarName([target, ...parts.slice(i)].filter((p) => p !== '').join('/'));
        } else if (i === parts.length) {
          return e;
        } else if (e.type !== 'directory') {
          return undefined; // a file used as a directory
        }
      }
      if (next === undefined) return undefined;
      if (++hops > MAX_LINK_HOPS) throw new FerryError('E_BAD_ARCHIVE', `${this.archive}: too many levels of links resolving ${original} (a link loop?)`);
      path = next;
    }
  }
}

function isOutside(p: string): boolean {
  return p === '..' || p.startsWith('../');
}

async function readHead(file: string, n: number, path: string): Promise<Buffer> {
  const fh = await openFile(file, 'r').catch((e: unknown) => {
    throw ioError(e, path);
  });
  try {
    if ((await fh.stat()).isDirectory()) throw new FerryError('E_BAD_ARCHIVE', `${path} is a directory, not an archive`, { hint: 'an OCI layout directory is read with oci:PATH' });
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
