import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { seekableFile } from '../archive/spool.js';
import { TarIndex } from '../archive/tar-index.js';
import { FerryError } from '../errors.js';
import { parseLocation, type Location } from '../transports/index.js';

export interface ResolveOptions {
  /** --debug: told when a pipe or device is copied to a temp file before reading. */
  debug?: (line: string) => void;
}

/**
 * A location as typed, except that a bare path to something on disk is recognised by content:
 * a directory with `oci-layout` → oci:, a gzip file → docker-archive: (`docker save | gzip`), a
 * tar whose entries include `manifest.json` → docker-archive: (classic, hybrid and skopeo's),
 * else a tar with `index.json` → oci-archive:. Only plain paths (./x, /x, x.tar) are sniffed; a
 * string that parses as an image reference and does not exist on disk stays a reference, but
 * one that looks like a path (/x, ./x, x.tar) and does not exist is "no such file".
 *
 * `-` is stdin. A pipe, FIFO or device (`-`, /dev/stdin, `docker-archive:/dev/stdin`) cannot be
 * read twice or at random: it is copied once to a temp file (archive/spool.ts), which both the
 * sniffing here and the archive reader then use.
 */
export async function resolveLocalLocation(input: string, opts: ResolveOptions = {}): Promise<Location> {
  const spoolOpts = opts.debug ? { onSpool: opts.debug } : {};
  if (input === '-') {
    const kind = await sniffFile(await seekableFile('-', spoolOpts), 'stdin');
    return { transport: kind, path: '-' };
  }
  const looksLikePath = input.startsWith('/') || input.startsWith('./') || input.startsWith('../') || /\.(tar|tgz|tar\.gz)$/i.test(input);
  const st = await stat(input).catch(() => undefined);
  if (!st) {
    if (looksLikePath && !/^(oci|oci-archive|docker-archive|docker):/.test(input)) {
      throw new FerryError('E_IO', `no such file: ${input}`, { hint: 'check the path; a registry image is named like host/repo:tag' });
    }
    const loc = parseLocation(input);
    // docker-archive:/dev/stdin and friends: copy a pipe now, so --debug can say so.
    if (loc.transport === 'docker-archive' || loc.transport === 'oci-archive') await seekableFile(loc.path, spoolOpts);
    return loc;
  }
  if (!looksLikePath && !st.isDirectory() && !st.isFile()) return parseLocation(input);
  if (st.isDirectory()) {
    if (await stat(join(input, 'oci-layout')).then(() => true, () => false)) return { transport: 'oci', path: input };
    throw new FerryError('E_BAD_ARCHIVE', `${input} is a directory but not an OCI image layout (no oci-layout file)`);
  }
  const kind = await sniffFile(await seekableFile(input, spoolOpts), input);
  return kind === 'oci-archive' ? { transport: 'oci-archive', path: input } : { transport: 'docker-archive', path: input };
}

/** Which archive `file` (shown as `shown`) is, from its entry names (TarIndex reads headers only,
 * PAX/GNU aware). A gzip'd file is taken as `docker save | gzip` without decompressing it here. */
async function sniffFile(file: string, shown: string): Promise<'docker-archive' | 'oci-archive'> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    await fh.read(head, 0, 2, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) return 'docker-archive';
  } finally {
    await fh.close();
  }
  const tar = await TarIndex.open(file);
  try {
    if (tar.get('manifest.json')) return 'docker-archive';
    if (tar.get('index.json')) return 'oci-archive';
  } finally {
    await tar.close();
  }
  throw new FerryError('E_BAD_ARCHIVE', `${shown} is neither a docker-archive nor an oci-archive tar`, { hint: shown === 'stdin' ? 'name the format: docker-archive:/dev/stdin or oci-archive:/dev/stdin' : `name the format: docker-archive:${shown} or oci-archive:${shown}` });
}
