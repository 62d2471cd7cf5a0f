/** Pure parsers for tar header fields (POSIX ustar, PAX, GNU base-256), used by tar-index.ts. */

import { posix } from 'node:path';

const BLOCK = 512;
export function normalizeTarName(name: string): string {
  if (name === '') return '';
  let s = posix.normalize(name);
  s = s.replace(/^\/+/, '').replace(/\/+$/, '');
  return s === '.' ? '' : s;
}

export function cString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** Octal (NUL/space padded) or GNU base-256 (high bit set); undefined when malformed. */
export function parseNumeric(buf: Buffer, off: number, len: number): number | undefined {
  const first = buf[off]!;
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative
    let n = first & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + buf[off + i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const s = buf.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  const n = parseInt(s, 8);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The stored checksum matches the unsigned (or, as some old tars wrote, signed) byte sum. */
export function checksumOk(h: Buffer): boolean {
  const stored = parseNumeric(h, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/** PAX records: `<len> <key>=<value>\n`, `len` counting the whole record in bytes. */
export function parsePax(data: Buffer): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // NUL padding
    const sp = data.indexOf(0x20, i);
    if (sp < 0) return undefined;
    const lenText = data.toString('latin1', i, sp);
    if (!/^\d+$/.test(lenText)) return undefined;
    const len = Number(lenText);
    if (len <= sp - i + 1 || i + len > data.length || data[i + len - 1] !== 0x0a) return undefined;
    const rec = data.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq <= 0) return undefined;
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

