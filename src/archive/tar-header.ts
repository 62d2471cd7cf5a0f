/**
 * POSIX tar (ustar, pax when needed) header encoding for the archives ferry writes. Only regular
 * files and directories: no links, devices or GNU extensions. Every field that could vary between
 * runs is fixed (uid/gid 0, empty user/group names, mtime `TAR_MTIME`), so the same content gives
 * the same bytes.
 *
 * Long names, non-ASCII names and sizes of 8 GiB or more: see encodeTarHeader.
 */
export const TAR_BLOCK = 512;
/** Two zero blocks end an archive. */
export const TAR_TRAILER = 2 * TAR_BLOCK;
/** Modification time written for every entry (seconds since the epoch). */
export const TAR_MTIME = 0;
/** Largest size the 11-digit octal field can hold (8 GiB − 1). */
const MAX_OCTAL_SIZE = 0o77777777777;

export interface TarEntryHeader {
  /** Relative name; a directory's trailing '/' is added when missing. */
  name: string;
  /** Only regular files and directories are ever written. */
  type: 'file' | 'directory';
  /** Data size in bytes (0 for directories). */
  size: number;
  /** Defaults: 0644 for files, 0755 for directories. */
  mode?: number;
}

/** Bytes `n` occupies in the archive once padded to a whole block. */
export function paddedSize(n: number): number {
  return Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;
}

/** The name as stored: directories end in '/'. */
export function entryName(h: TarEntryHeader): string {
  return h.type === 'directory' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
}

/**
 * Everything that precedes an entry's data: one 512-byte ustar header, or a pax extended header
 * (header + padded records) followed by the ustar header. The data starts right after.
 *
 * The bytes are exactly what tar-stream's `pack` emits for the same entry (name, type, size,
 * mode, uid/gid 0, mtime `TAR_MTIME`), so the positional file writer (archive-destination.ts)
 * and the sequential stream writer (tar-pack.ts, which uses `pack`) give identical archives;
 * writer-tar.test.ts holds the two side by side. tar-stream's conventions: octal fields are
 * digits then a space ("000644 "), a name over 100 bytes moves its leading components into the
 * ustar prefix, a name that still does not fit (or is not ASCII) goes into a pax `path` record
 * behind a `PaxHeader` entry, and a size of 8 GiB or more is stored base-256 (GNU) in the size
 * field, which Go's archive/tar, GNU tar, bsdtar and tar-scan.ts all read.
 */
export function encodeTarHeader(h: TarEntryHeader): Buffer {
  const name = entryName(h);
  validateName(name);
  if (!Number.isSafeInteger(h.size) || h.size < 0) throw new Error(`tar entry ${name}: invalid size ${h.size}`);
  if (h.type === 'directory' && h.size !== 0) throw new Error(`tar entry ${name}: a directory has no data`);
  const mode = h.mode ?? (h.type === 'directory' ? 0o755 : 0o644);
  const typeflag = h.type === 'directory' ? '5' : '0';
  const split = splitUstarName(name);
  if (split) return ustarBlock({ ...split, mode, size: h.size, typeflag });
  const records = Buffer.from(paxRecord('path', name), 'utf8');
  const out = Buffer.alloc(TAR_BLOCK + paddedSize(records.length) + TAR_BLOCK);
  ustarBlock({ name: 'PaxHeader', prefix: '', mode, size: records.length, typeflag: 'x' }).copy(out, 0);
  records.copy(out, TAR_BLOCK);
  ustarBlock({ name: 'PaxHeader', prefix: '', mode, size: h.size, typeflag }).copy(out, TAR_BLOCK + paddedSize(records.length));
  return out;
}

function validateName(name: string): void {
  if (name === '' || name.startsWith('/') || name.startsWith('./') || name.includes('\0')) {
    throw new Error(`invalid tar entry name ${JSON.stringify(name)}: names must be relative, without "./"`);
  }
  if (name.split('/').some((c) => c === '..')) throw new Error(`invalid tar entry name ${JSON.stringify(name)}: ".." is not allowed`);
}

/** ustar stores names up to 100 bytes, or prefix (≤155) + '/' + name (≤100), ASCII only here;
 * leading components move to the prefix until the name fits (tar-stream's rule). */
function splitUstarName(full: string): { prefix: string; name: string } | undefined {
  if (!/^[\x00-\x7f]*$/.test(full)) return undefined;
  let name = full;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i < 0) return undefined;
    prefix += prefix ? `/${name.slice(0, i)}` : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return undefined;
  return { prefix, name };
}

/** One pax record: "<len> <key>=<value>\n", where len counts the whole record, itself included. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let len = n + 1;
  while (n + String(len).length !== len) len = n + String(len).length;
  return `${len}${body}`;
}

function ustarBlock(f: { name: string; prefix: string; mode: number; size: number; typeflag: string }): Buffer {
  const b = Buffer.alloc(TAR_BLOCK);
  b.write(f.name, 0, 100, 'utf8');
  octal(b, 100, 6, f.mode & 0o7777);
  octal(b, 108, 6, 0); // uid
  octal(b, 116, 6, 0); // gid
  if (f.size > MAX_OCTAL_SIZE) base256(b, 124, 12, f.size);
  else octal(b, 124, 11, f.size);
  octal(b, 136, 11, TAR_MTIME);
  b.write(f.typeflag, 156, 1, 'ascii');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  // uname/gname stay empty.
  octal(b, 329, 6, 0); // devmajor
  octal(b, 337, 6, 0); // devminor
  if (f.prefix) b.write(f.prefix, 345, 155, 'utf8');
  // The checksum counts its own field as eight spaces; it is stored as six digits and a space.
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) if (i < 148 || i >= 156) sum += b[i]!;
  octal(b, 148, 6, sum);
  return b;
}

/** `digits` zero-padded octal digits followed by a space. */
function octal(b: Buffer, off: number, digits: number, n: number): void {
  const s = n.toString(8);
  if (s.length > digits) throw new Error(`tar header: ${n} does not fit in ${digits} octal digits`);
  b.write(`${s.padStart(digits, '0')} `, off, digits + 1, 'ascii');
}

/** GNU base-256: a 0x80 marker byte, then the number big-endian in the rest of the field. */
function base256(b: Buffer, off: number, width: number, n: number): void {
  b[off] = 0x80;
  for (let i = width - 1; i > 0; i--) {
    b[off + i] = n % 256;
    n = Math.floor(n / 256);
  }
}
