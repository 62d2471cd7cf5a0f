/**
 * The one pass over a tar archive's headers behind TarIndex (tar-index.ts): positional reads of
 * each 512-byte header, noting where its data starts and how long it is, then a jump to the next
 * header; file data is never read. Understood: POSIX ustar (with the 155-byte name prefix), PAX
 * extended headers (`path`, `linkpath`, `size`; global headers are skipped), GNU long names and
 * link names (types L/K), GNU base-256 sizes, old v7 directories (a trailing `/`), directories,
 * symlinks and hardlinks. A later member with the same name replaces an earlier one.
 */
import { open as openFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';
import { checksumOk, cString, normalizeTarName, parseNumeric, parsePax } from './tar-fields.js';

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

export interface ScanSource {
  /** The file read: the archive itself, or its decompressed copy. */
  file: string;
  /** The archive as the user named it (for messages). */
  archive: string;
  /** Offsets are in a decompressed copy (said in messages). */
  decompressed: boolean;
}

const BLOCK = 512;
const MAX_EXTENSION = 1024 * 1024; // PAX / GNU long-name data we are willing to read

/** E_BAD_ARCHIVE naming the archive and the byte offset. */
export function badArchive(src: ScanSource, offset: number, what: string): FerryError {
  return new FerryError('E_BAD_ARCHIVE', `${src.archive} at offset ${offset}${src.decompressed ? ' of the decompressed stream' : ''}: ${what}`, {
    hint: offset === 0 ? 'is it a tar archive (docker save, skopeo copy … docker-archive:/oci-archive:)?' : 'the archive is truncated or corrupt; write it again',
  });
}

/** Every member of the archive by normalised name, in archive order. */
export async function scanTar(src: ScanSource, signal?: AbortSignal): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const bad = (offset: number, what: string) => badArchive(src, offset, what);
  const fh = await openFile(src.file, 'r').catch((e) => {
    throw ioError(e, src.archive);
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
        if (extStart !== undefined) throw bad(pos, 'archive ends after an extended header, before the member it describes');
        break;
      }
      const got = await readExact(header, pos, BLOCK);
      if (got < BLOCK) {
        if (header.subarray(0, got).every((b) => b === 0) && extStart === undefined && pos > 0) break;
        throw bad(pos, `truncated tar header (${got} of ${BLOCK} bytes)`);
      }
      if (header.every((b) => b === 0)) {
        if (extStart !== undefined) throw bad(pos, 'end-of-archive block right after an extended header');
        break; // end of archive (an archive of nothing is valid, and simply has no entries)
      }
      if (!checksumOk(header)) {
        throw bad(pos, members === 0 && extStart === undefined ? 'not a tar archive (bad header checksum)' : 'bad tar header checksum');
      }
      const flag = header[156] === 0 ? '0' : String.fromCharCode(header[156]!);
      const rawSize = parseNumeric(header, 124, 12);
      if (rawSize === undefined) throw bad(pos, 'invalid size field in tar header');
      const headerOnly = '123456'.includes(flag);
      let size = rawSize;
      if (pax['size'] !== undefined && !'xgLK'.includes(flag)) {
        if (!/^\d+$/.test(pax['size']) || !Number.isSafeInteger(Number(pax['size']))) throw bad(pos, `invalid PAX size ${JSON.stringify(pax['size'])}`);
        size = Number(pax['size']);
      }
      const dataOffset = pos + BLOCK;
      const dataSize = headerOnly ? 0 : size;
      const next = dataOffset + Math.ceil(dataSize / BLOCK) * BLOCK;
      if (dataOffset + dataSize > fileSize) {
        throw bad(pos, `truncated: member needs ${dataSize} bytes of data at offset ${dataOffset}, but the archive ends at ${fileSize}`);
      }

      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (dataSize > MAX_EXTENSION) throw bad(pos, `extended header of ${dataSize} bytes is over the ${MAX_EXTENSION}-byte limit`);
        const data = Buffer.alloc(dataSize);
        if ((await readExact(data, dataOffset, dataSize)) < dataSize) throw bad(dataOffset, 'truncated extended header');
        extStart ??= pos;
        if (flag === 'x') {
          const recs = parsePax(data);
          if (!recs) throw bad(pos, 'malformed PAX extended header');
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
        entries.delete(norm); // a later member replaces an earlier one, and takes its place in order
        entries.set(norm, { name: norm, type, offset: dataOffset, size: dataSize, headerOffset: extStart ?? pos, ...(target !== undefined ? { target } : {}) });
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
  return entries;
}

/** Absolute targets are relative to the archive root; relative ones to `dir`. */
function normalizeLinkTarget(target: string, dir: string): string {
  if (target.startsWith('/')) return normalizeTarName(target);
  const joined = posix.normalize(posix.join(dir === '.' ? '' : dir, target));
  if (joined === '..' || joined.startsWith('../')) return joined;
  return normalizeTarName(joined);
}
