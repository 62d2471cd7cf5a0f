import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors.js';
import { formatLocation, parseLocation, type Location } from '../transports/index.js';

/**
 * A location as typed, except that a bare path to something on disk is recognised by content:
 * a directory with `oci-layout` → oci:, a gzip file → docker-archive: (`docker save | gzip`), a
 * tar whose entries include `manifest.json` → docker-archive: (classic, hybrid and skopeo's),
 * else a tar with `index.json` → oci-archive:. Only plain paths (./x, /x, x.tar) are sniffed; a
 * string that parses as an image reference and does not exist on disk stays a reference.
 */
export async function resolveLocalLocation(input: string): Promise<Location> {
  const looksLikePath = input.startsWith('/') || input.startsWith('./') || input.startsWith('../') || /\.(tar|tgz|tar\.gz)$/i.test(input);
  const st = await stat(input).catch(() => undefined);
  if (!st || (!looksLikePath && !st.isDirectory() && !st.isFile())) return parseLocation(input);
  if (st.isDirectory()) {
    if (await stat(join(input, 'oci-layout')).then(() => true, () => false)) return { transport: 'oci', path: input };
    throw new FerryError('E_BAD_ARCHIVE', `${input} is a directory but not an OCI image layout (no oci-layout file)`);
  }
  const kind = await sniffFile(input);
  return kind === 'oci-archive' ? { transport: 'oci-archive', path: input } : { transport: 'docker-archive', path: input };
}

/** Reads tar headers only (positional reads; no data) until it knows which archive this is. */
async function sniffFile(path: string): Promise<'docker-archive' | 'oci-archive'> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'docker-archive';
    let pos = 0;
    let sawIndex = false;
    for (let i = 0; i < 100_000; i++) {
      const { bytesRead: n } = await fh.read(head, 0, 512, pos);
      if (n < 512 || head.every((b) => b === 0)) break;
      const name = head.toString('utf8', 0, 100).replace(/\0.*$/s, '').replace(/^\.\//, '');
      const size = parseInt(head.toString('ascii', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
      if (head.toString('ascii', 257, 262) !== 'ustar' && i === 0) break;
      if (name === 'manifest.json') return 'docker-archive';
      if (name === 'index.json') sawIndex = true;
      pos += 512 + Math.ceil(size / 512) * 512;
    }
    if (sawIndex) return 'oci-archive';
    throw new FerryError('E_BAD_ARCHIVE', `${path} is neither a docker-archive nor an oci-archive tar`, { hint: `name the format: docker-archive:${path} or oci-archive:${path}` });
  } finally {
    await fh.close();
  }
}

export { formatLocation };
