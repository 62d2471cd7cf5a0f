/**
 * Random access to the files inside a tar archive without unpacking it.
 *
 * `TarIndex.open(path)` walks the archive's headers once with positional reads — read a 512-byte
 * header, note where its data starts and how long it is, jump to the next header — and never
 * reads file data. Understood: POSIX ustar (with the 155-byte name prefix), PAX extended headers
 * (`path`, `linkpath`, `size`; global headers are skipped), GNU long names and link names
 * (`././@LongLink`, types L/K), GNU base-256 sizes, old v7 directories (a trailing `/`),
 * directories, symlinks and hardlinks. Names are normalised (`./a//b/` → `a/b`, leading `/`
 * dropped); a later entry with the same name replaces an earlier one, as when extracting.
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
import { createReadStream, createWriteStream, ReadStream, rmSync } from 'node:fs';
import { mkdtemp, open as openFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { FerryError, isFerryError } from '../errors.js';
import { checksumOk, cString, normalizeTarName, parseNumeric, parsePax } from './tar-fields.js';

export { normalizeTarName };

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'sparse' | 'other';

/** One archive member, as recorded (links unresolved). */
export interface TarEntry {
  /** Normalised name: no `./` or leading `/`, no trailing `/`. */
  readonly name: string;
  readonly type: TarEntryType;
  /** Offset of the member's data in the (decompressed) archive file. */
  readonly offset: number;
  /** Data size in bytes (0 for directories and links). */
  readonly size: number;
  /** Offset of the member's own header (the first of its extension headers, if any). */
  readonly headerOffset: number;
  /** Links: the normalised archive path the link points at (may start with `..` = outside). */
  readonly target?: string;
}

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

const BLOCK = 512;
const MAX_EXTENSION = 1024 * 1024; // PAX / GNU long-name data we are willing to read
const MAX_LINK_HOPS = 40; // like Linux's ELOOP limit

const GZIP_MAGIC = [0x1f, 0x8b];
const OTHER_COMPRESSION: Array<{ magic: number[]; name: string }> = [
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: 'zstd' },
  { magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], name: 'xz' },
  { magic: [0x42, 0x5a, 0x68], name: 'bzip2' },
];

/** `./a//b/` → `a/b`; `/x` → `x`; `.` and `./` → ``. */

function startsWith(buf: Uint8Array, magic: number[]): boolean {
  return buf.length >= magic.length && magic.every((b, i) => buf[i] === b);
}

/** Open temp copies, removed synchronously if the process exits without close(). */
const tempDirs = new Set<string>();
let exitHook = false;
function trackTemp(dir: string): void {
  tempDirs.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const d of tempDirs) {
        try {
          rmSync(d, { recursive: true, force: true });
        } catch {
          /* best effort at exit */
        }
      }
    });
  }
}

export class TarIndex {
  private readonly entries = new Map<string, TarEntry>();
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

  /** Indexes `path` (decompressing a gzipped archive first). */
  static async open(path: string, opts: TarIndexOptions = {}): Promise<TarIndex> {
    const head = await readHead(path, 8);
    if (head.length === 0) throw new FerryError('E_BAD_ARCHIVE', `${path} is empty, not a tar archive`);
    for (const c of OTHER_COMPRESSION) {
      if (startsWith(head, c.magic)) {
        throw new FerryError('E_UNSUPPORTED', `${path} is a ${c.name}-compressed archive, which ferry cannot read directly`, {
          hint: `decompress it first (e.g. ${c.name === 'zstd' ? 'zstd -d' : c.name === 'xz' ? 'xz -d' : 'bunzip2'} ${path})`,
        });
      }
    }
    if (!startsWith(head, GZIP_MAGIC)) {
      const idx = new TarIndex(path, path, undefined, undefined);
      await idx.scan(opts.signal);
      return idx;
    }
    const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'ferry-gunzip-')).catch((e) => {
      throw new FerryError('E_IO', `cannot create a temp directory to decompress ${path}: ${(e as Error).message}`, { cause: e });
    });
    trackTemp(dir);
    const file = join(dir, 'archive.tar');
    const idx = new TarIndex(path, file, 'gzip', dir);
    try {
      await pipeline(createReadStream(path), createGunzip(), createWriteStream(file), { signal: opts.signal });
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
      await idx.scan(opts.signal);
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

  /** Like get(), but a missing file is an E_NOT_FOUND naming the archive. */
  require(name: string): TarFile {
    const f = this.get(name);
    if (!f) throw new FerryError('E_NOT_FOUND', `${this.archive}: no file ${JSON.stringify(normalizeTarName(name))} in the archive`);
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
          reject(this.ioError(e));
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
      tempDirs.delete(this.tempDir);
    }
  }

  // ---------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new FerryError('E_INTERNAL', `${this.archive}: tar index used after close()`);
  }

  private where(offset: number): string {
    return `${this.archive} at offset ${offset}${this.compression ? ' of the decompressed stream' : ''}`;
  }

  private bad(offset: number, what: string): FerryError {
    return new FerryError('E_BAD_ARCHIVE', `${this.where(offset)}: ${what}`, {
      hint: offset === 0 ? 'is it a tar archive (docker save, skopeo copy … docker-archive:/oci-archive:)?' : 'the archive is truncated or corrupt; write it again',
    });
  }

  private ioError(e: unknown): unknown {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === 'ENOENT') return new FerryError('E_NOT_FOUND', `no such file: ${this.archive}`, { cause: e });
    if (code === 'EACCES' || code === 'EPERM') return new FerryError('E_IO', `permission denied: ${this.archive}`, { cause: e });
    if (code && !isFerryError(e)) return new FerryError('E_IO', `${this.archive}: ${(e as Error).message}`, { cause: e });
    return e;
  }

  private async readAt(position: number, length: number, what: string): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    if (length === 0) return buf;
    const fh = await openFile(this.file, 'r').catch((e) => {
      throw this.ioError(e);
    });
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, position + got);
        if (bytesRead === 0) throw this.bad(position + got, `${what} ends early (the archive changed or was truncated after it was indexed)`);
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

  /** Walks every header once; see the file comment. */
  private async scan(signal?: AbortSignal): Promise<void> {
    const fh = await openFile(this.file, 'r').catch((e) => {
      throw this.ioError(e);
    });
    try {
      const fileSize = (await fh.stat()).size;
      const header = Buffer.alloc(BLOCK);
      let pos = 0;
      // Pending overrides from extension headers, applied to the next real header.
      let pax: Record<string, string> = {};
      let longName: string | undefined;
      let longLink: string | undefined;
      let extStart: number | undefined;
      let members = 0;

      const readExact = async (buf: Buffer, at: number, len: number): Promise<number> => {
        let got = 0;
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, at + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got;
      };

      for (;;) {
        signal?.throwIfAborted();
        if (pos >= fileSize) {
          // EOF at a header boundary without the zero end blocks: tolerated (as Go's archive/tar
          // does), unless an extension header promised another member.
          if (extStart !== undefined) throw this.bad(pos, 'archive ends after an extended header, before the member it describes');
          break;
        }
        const got = await readExact(header, pos, BLOCK);
        if (got < BLOCK) {
          if (header.subarray(0, got).every((b) => b === 0) && extStart === undefined && pos > 0) break;
          throw this.bad(pos, `truncated tar header (${got} of ${BLOCK} bytes)`);
        }
        if (header.every((b) => b === 0)) {
          if (extStart !== undefined) throw this.bad(pos, 'end-of-archive block right after an extended header');
          break; // end of archive (an archive of nothing is valid, and simply has no entries)
        }
        if (!checksumOk(header)) {
          throw this.bad(pos, members === 0 && extStart === undefined ? 'not a tar archive (bad header checksum)' : 'bad tar header checksum');
        }
        const flag = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
        const rawSize = parseNumeric(header, 124, 12);
        if (rawSize === undefined) throw this.bad(pos, 'invalid size field in tar header');
        const headerOnly = '123456'.includes(flag);
        let size = rawSize;
        if (pax['size'] !== undefined && !'xgLK'.includes(flag)) {
          if (!/^\d+$/.test(pax['size']) || !Number.isSafeInteger(Number(pax['size']))) throw this.bad(pos, `invalid PAX size ${JSON.stringify(pax['size'])}`);
          size = Number(pax['size']);
        }
        const dataOffset = pos + BLOCK;
        const dataSize = headerOnly ? 0 : size;
        const next = dataOffset + Math.ceil(dataSize / BLOCK) * BLOCK;
        if (dataOffset + dataSize > fileSize) {
          throw this.bad(pos, `truncated: member needs ${dataSize} bytes of data at offset ${dataOffset}, but the archive ends at ${fileSize}`);
        }

        if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
          if (dataSize > MAX_EXTENSION) throw this.bad(pos, `extended header of ${dataSize} bytes is over the ${MAX_EXTENSION}-byte limit`);
          const data = Buffer.alloc(dataSize);
          if ((await readExact(data, dataOffset, dataSize)) < dataSize) throw this.bad(dataOffset, 'truncated extended header');
          extStart ??= pos;
          if (flag === 'x') {
            const recs = parsePax(data);
            if (!recs) throw this.bad(pos, 'malformed PAX extended header');
            pax = { ...pax, ...recs };
          } else if (flag === 'L') {
            longName = cString(data, 0, data.length);
          } else if (flag === 'K') {
            longLink = cString(data, 0, data.length);
          } else {
            extStart = undefined; // a global header describes no particular member
          }
          pos = next;
          continue;
        }

        const ustar = header.toString('latin1', 257, 263) === 'ustar\0';
        let name = cString(header, 0, 100);
        if (ustar) {
          const prefix = cString(header, 345, 155);
          if (prefix) name = `${prefix}/${name}`;
        }
        name = pax['path'] ?? longName ?? name;
        const linkRaw = pax['linkpath'] ?? longLink ?? cString(header, 157, 100);
        const gnuSparse = flag === 'S' || Object.keys(pax).some((k) => k.startsWith('GNU.sparse.'));

        let type: TarEntryType;
        if (gnuSparse) type = 'sparse';
        else if (flag === '5' || ((flag === '0' || flag === '7') && name.endsWith('/'))) type = 'directory';
        else if (flag === '0' || flag === '7') type = 'file';
        else if (flag === '1') type = 'hardlink';
        else if (flag === '2') type = 'symlink';
        else type = 'other';

        const norm = normalizeTarName(name);
        let target: string | undefined;
        if (type === 'hardlink') target = normalizeLinkTarget(linkRaw, '');
        else if (type === 'symlink') target = normalizeLinkTarget(linkRaw, posix.dirname(norm === '' ? '.' : norm));

        if (norm !== '') {
          this.entries.delete(norm); // a later member replaces an earlier one, and takes its place in order
          this.entries.set(norm, { name: norm, type, offset: dataOffset, size: dataSize, headerOffset: extStart ?? pos, ...(target !== undefined ? { target } : {}) });
        }
        members++;
        pax = {};
        longName = undefined;
        longLink = undefined;
        extStart = undefined;
        pos = next;
      }
    } finally {
      await fh.close();
    }
  }
}

/** Absolute targets are relative to the archive root; relative ones to `dir`. */
function normalizeLinkTarget(target: string, dir: string): string {
  if (target.startsWith('/')) return normalizeTarName(target);
  const joined = posix.normalize(posix.join(dir === '.' ? '' : dir, target));
  if (joined === '..' || joined.startsWith('../')) return joined;
  return normalizeTarName(joined);
}

function isOutside(p: string): boolean {
  return p === '..' || p.startsWith('../');
}

async function readHead(path: string, n: number): Promise<Buffer> {
  let fh;
  try {
    fh = await openFile(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FerryError('E_NOT_FOUND', `no such file: ${path}`, { cause: e });
    if (code === 'EACCES' || code === 'EPERM') throw new FerryError('E_IO', `permission denied: ${path}`, { cause: e });
    throw new FerryError('E_IO', `${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if ((await fh.stat()).isDirectory()) throw new FerryError('E_BAD_ARCHIVE', `${path} is a directory, not an archive`, { hint: 'an OCI layout directory is read with oci:PATH' });
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
