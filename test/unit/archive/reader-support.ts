/**
 * Tar builders for the archive READER tests: tar-stream pack for ordinary members, plus a raw
 * header writer for what tar-stream cannot produce (GNU long names, PAX size overrides, base-256
 * sizes).
 */
import { createHash } from 'node:crypto';
import { pack } from 'tar-stream';

export interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  data?: Buffer | string;
  linkname?: string;
  /** Force a PAX header with these records (tar-stream also adds `path`). */
  pax?: Record<string, string>;
}

/** A tar built by tar-stream's pack (ustar; PAX when a name does not fit). */
export async function packTar(members: Member[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  const mtime = new Date(946684800_000);
  for (const m of members) {
    const type = m.type ?? 'file';
    const header = { name: m.name, type, mtime, ...(m.linkname !== undefined ? { linkname: m.linkname } : {}), ...(m.pax ? { pax: m.pax } : {}) };
    const body = type === 'file' ? Buffer.from(m.data ?? '') : Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => p.entry(header, body, (e) => (e ? reject(e) : resolve())));
  }
  p.finalize();
  return done;
}

/** One raw 512-byte header. `magic` 'gnu' writes `ustar  \0` (no prefix field). */
export function rawHeader(opts: { name: string; type: string; size: number; linkname?: string; magic?: 'ustar' | 'gnu'; base256Size?: boolean; prefix?: string }): Buffer {
  const h = Buffer.alloc(512);
  const oct = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, '0')}\0`;
  h.write(opts.name, 0, 100, 'utf8');
  h.write(oct(0o644, 8), 100, 8, 'ascii');
  h.write(oct(0, 8), 108, 8, 'ascii');
  h.write(oct(0, 8), 116, 8, 'ascii');
  if (opts.base256Size) {
    h[124] = 0x80;
    let n = opts.size;
    for (let i = 135; i > 124; i--) {
      h[i] = n % 256;
      n = Math.floor(n / 256);
    }
  } else {
    h.write(oct(opts.size, 12), 124, 12, 'ascii');
  }
  h.write(oct(946684800, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(opts.type, 156, 1, 'ascii');
  if (opts.linkname) h.write(opts.linkname, 157, 100, 'utf8');
  if (opts.magic === 'gnu') h.write('ustar  \0', 257, 8, 'latin1');
  else {
    h.write('ustar\0', 257, 6, 'latin1');
    h.write('00', 263, 2, 'ascii');
  }
  if (opts.prefix) h.write(opts.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return h;
}

/** Header + data + padding. */
export function rawMember(header: Buffer, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const d = Buffer.from(data);
  return Buffer.concat([header, d, Buffer.alloc((512 - (d.length % 512)) % 512)]);
}

export const END = Buffer.alloc(1024);

/** A PAX record block: `<len> key=value\n` with the self-inclusive length. */
export function paxRecords(recs: Record<string, string>): Buffer {
  let out = '';
  for (const [k, v] of Object.entries(recs)) {
    const body = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len++;
    out += `${len}${body}`;
  }
  return Buffer.from(out, 'utf8');
}

export const sha256 = (b: Buffer | string | Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hex = (d: string): string => d.slice(d.indexOf(':') + 1);

export async function collect(s: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}
