import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TarIndex } from '../archive/tar-index.js';
import { FerryError } from '../errors.js';
import { parseLocation, type Location } from '../transports/index.js';

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

/** Which archive a file is, from its entry names (TarIndex reads headers only, PAX/GNU aware).
 * A gzip'd file is taken as `docker save | gzip` without decompressing it here. */
async function sniffFile(path: string): Promise<'docker-archive' | 'oci-archive'> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return 'docker-archive';
  } finally {
    await fh.close();
  }
  const tar = await TarIndex.open(path);
  try {
    if (tar.get('manifest.json')) return 'docker-archive';
    if (tar.get('index.json')) return 'oci-archive';
  } finally {
    await tar.close();
  }
  throw new FerryError('E_BAD_ARCHIVE', `${path} is neither a docker-archive nor an oci-archive tar`, { hint: `name the format: docker-archive:${path} or oci-archive:${path}` });
}

