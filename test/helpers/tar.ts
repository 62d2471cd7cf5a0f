import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  data: Buffer;
}

/** Every entry of a tar file in archive order, parsed with tar-stream (an independent reader). */
export async function readTar(path: string): Promise<TarEntry[]> {
  const extract = tar.extract();
  const out: TarEntry[] = [];
  Readable.from([await readFile(path)]).pipe(extract);
  for await (const entry of extract) {
    const parts: Buffer[] = [];
    for await (const c of entry) parts.push(c as Buffer);
    const h = entry.header;
    out.push({ name: h.name, type: String(h.type), size: h.size ?? 0, mode: h.mode ?? 0, uid: h.uid ?? -1, gid: h.gid ?? -1, mtime: h.mtime?.getTime() ?? -1, data: Buffer.concat(parts) });
  }
  return out;
}
