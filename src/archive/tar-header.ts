/**
 * POSIX tar (ustar, pax when needed) header encoding for the archives ferry writes. Only regular
 * files and directories: no links, devices or GNU extensions. Every field that could vary between
 * runs is fixed (uid/gid 0, empty user/group names, mtime `TAR_MTIME`), so the same content gives
 * the same bytes.
 *
 * A name longer than 100 bytes is split into ustar prefix/name at a '/' when possible, else a pax
 * extended header (`x`) carries `path`; a size of 8 GiB or more goes into a pax `size` record
 * (the octal field holds at most 11 digits). Go's archive/tar, GNU tar and bsdtar read both.
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
 */
export function encodeTarHeader(h: TarEntryHeader): Buffer {
  const name = entryName(h);
  validateName(name);
  if (!Number.isSafeInteger(h.size) || h.size < 0) throw new Error(`tar entry ${name}: invalid size ${h.size}`);
  if (h.type === 'directory' && h.size !== 0) throw new Error(`tar entry ${name}: a directory has no data`);
  const mode = h.mode ?? (h.type === 'directory' ? 0o755 : 0o644);
  const split = splitUstarName(name);
  const pax: Array<[string, string]> = [];
  if (!split) pax.push(['path', name]);
  if (h.size > MAX_OCTAL_SIZE) pax.push(['size', String(h.size)]);
  const main = ustarBlock({
    name: split?.name ?? truncateBytes(name, 100),
    prefix: split?.prefix ?? '',
    mode,
    size: h.size > MAX_OCTAL_SIZE ? 0 : h.size,
    typeflag: h.type === 'directory' ? '5' : '0',
  });
  if (pax.length === 0) return main;
  const records = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''), 'utf8');
  const paxHeader = ustarBlock({
    name: truncateBytes(`PaxHeaders.0/${lastComponent(name)}`, 100),
    prefix: '',
    mode: 0o644,
    size: records.length,
    typeflag: 'x',
  });
  const out = Buffer.alloc(TAR_BLOCK + paddedSize(records.length) + TAR_BLOCK);
  paxHeader.copy(out, 0);
  records.copy(out, TAR_BLOCK);
  main.copy(out, TAR_BLOCK + paddedSize(records.length));
  return out;
}

function validateName(name: string): void {
  if (name === '' || name.startsWith('/') || name.startsWith('./') || name.includes('\0')) {
    throw new Error(`invalid tar entry name ${JSON.stringify(name)}: names must be relative, without "./"`);
  }
  if (name.split('/').some((c) => c === '..')) throw new Error(`invalid tar entry name ${JSON.stringify(name)}: ".." is not allowed`);
}

/** ustar stores names up to 100 bytes, or prefix (≤155) + '/' + name (≤100), ASCII only here. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (!/^[\x20-\x7e]*$/.test(name)) return undefined;
  if (name.length <= 100) return { prefix: '', name };
  // A directory's trailing '/' belongs to the name part.
  for (let i = name.lastIndexOf('/', name.length - 2); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (rest.length > 100) break;
    if (prefix.length <= 155) return { prefix, name: rest };
  }
  return undefined;
}

function lastComponent(name: string): string {
  const parts = name.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? 'entry';
}

function truncateBytes(s: string, max: number): string {
  let b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  b = b.subarray(0, max);
  return b.toString('utf8').replace(/\uFFFD+$/, '');
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
  octal(b, 100, 8, f.mode & 0o7777);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, TAR_MTIME);
  b.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  b.write(f.typeflag, 156, 1, 'ascii');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  // uname/gname stay empty; devmajor/devminor as octal zeros like GNU tar writes them.
  octal(b, 329, 8, 0);
  octal(b, 337, 8, 0);
  b.write(f.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}

/** Zero-padded octal digits followed by a NUL, filling `width` bytes. */
function octal(b: Buffer, off: number, width: number, n: number): void {
  const s = n.toString(8);
  if (s.length > width - 1) throw new Error(`tar header: ${n} does not fit in ${width - 1} octal digits`);
  b.write(`${s.padStart(width - 1, '0')}\0`, off, width, 'ascii');
}
