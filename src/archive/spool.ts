/**
 * Archives read from something that cannot seek (a pipe: `cat x.tar | ferry push - REF`,
 * `docker-archive:/dev/stdin`, a FIFO, a character device) are copied ONCE into a private temp
 * directory under os.tmpdir() (TMPDIR), and that copy is what the tar index reads at random.
 * The copy is made on first use of the path and shared by every later reader in the process
 * (sniffing the format and then reading it must not consume the pipe twice); it is removed at
 * process exit, or by releaseSpools(). `-` means stdin. A gzipped stream is copied as is (the
 * index then decompresses it once, as for a gzipped file).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { exitCleanup } from '../util/exit-cleanup.js';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isatty } from 'node:tty';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';

interface Spooled {
  file: string;
  dir: string;
  bytes: number;
}

const spools = new Map<string, Promise<Spooled>>();

/** The path as a readable file name: `-` is stdin. */
export function inputPath(path: string): string {
  return path === '-' ? '/dev/stdin' : path;
}

/**
 * A seekable file with the bytes of `path`: the path itself when it is a regular file (or a
 * directory / missing: the caller reports that), else its spooled copy. `onSpool` is told once
 * per copy (for --debug).
 */
export async function seekableFile(path: string, opts: { signal?: AbortSignal; onSpool?: (line: string) => void } = {}): Promise<string> {
  const name = inputPath(path);
  const key = resolve(name);
  const known = spools.get(key);
  if (known) return (await known).file;
  const st = await stat(name).catch(() => undefined);
  if (!st || st.isFile() || st.isDirectory()) return name;
  if (name === '/dev/stdin' && isatty(0)) {
    throw new FerryError('E_USAGE', 'refusing to read an archive from a terminal (stdin)', { hint: 'pipe one in (cat x.tar | ferry push - REF) or name the file' });
  }
  const p = spool(name, path, opts.signal);
  spools.set(key, p);
  p.catch(() => { if (spools.get(key) === p) spools.delete(key); });
  const s = await p;
  opts.onSpool?.(`${path === '-' ? 'stdin' : path} cannot seek: copied ${s.bytes} bytes to ${s.file} once, read from there`);
  return s.file;
}

/** Removes every spooled copy (tests; the CLI relies on process exit). */
export async function releaseSpools(): Promise<void> {
  const all = [...spools.values()];
  spools.clear();
  for (const p of all) {
    const s = await p.catch(() => undefined);
    if (s) {
      await rm(s.dir, { recursive: true, force: true });
      exitCleanup.delete(s.dir);
    }
  }
}

async function spool(name: string, shown: string, signal?: AbortSignal): Promise<Spooled> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-spool-')).catch((e: unknown) => {
    throw new FerryError('E_IO', `cannot create a temp directory under ${tmpdir()} to copy ${shown}: ${(e as Error).message}`, { cause: e, hint: 'set TMPDIR to a writable directory' });
  });
  exitCleanup.add(dir);
  const file = join(dir, 'input');
  let bytes = 0;
  try {
    const src = createReadStream(name, { highWaterMark: 1 << 20 });
    src.on('data', (c) => (bytes += c.length));
    const out = createWriteStream(file);
    await (signal ? pipeline(src, out, { signal }) : pipeline(src, out));
  } catch (e) {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
    exitCleanup.delete(dir);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new FerryError('E_NO_SPACE', `no space left in ${tmpdir()} to copy ${shown}`, { cause: e, hint: 'an archive read from a pipe is copied under TMPDIR; point it at a directory with more room' });
    }
    throw ioError(e, shown);
  }
  return { file, dir, bytes };
}

