import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { open, readdir, rename, rm, writeFile, readFile, stat, mkdir, statfs, lstat, readlink, realpath } from 'node:fs/promises';
import { dirname, join, basename, resolve } from 'node:path';
import { FerryError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { ioError } from '../util/fs-errors.js';
import { removeTree } from '../util/remove-tree.js';
import { pidAlive } from '../store/index.js';
import { parseLocation, type Location } from './location.js';

/** This machine, in temp names: a short hash of the host name (several machines may write
 * beside one target on a shared filesystem, and their pids mean nothing here). */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** A temp name beside `target` (same filesystem, so the final rename is atomic):
 * `.<name>.<host tag>-<pid>.<random>.partial`. */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${HOST_TAG}-${process.pid}.${randomBytes(4).toString('hex')}.partial`);
}

/**
 * Removes temp files and directories (tempNameFor) of `target` — or of every name in the directory when
 * `target` is a directory and `anyName` is set — left by processes of this machine that no
 * longer run (a SIGKILLed pull leaves its whole archive-sized temp file). Temps of live
 * processes and of other machines are left alone. Errors are ignored: this is tidying.
 */
export async function removeDeadTemps(target: string, anyName = false): Promise<number> {
  const dir = anyName ? target : dirname(target);
  const prefix = `.${basename(target)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const shape = new RegExp(`^${anyName ? '\\..+' : esc(prefix.slice(0, -1))}\\.([0-9a-f]{8})-(\\d+)\\.[0-9a-f]{8}\\.partial$`);
  let removed = 0;
  for (const n of names) {
    const m = shape.exec(n);
    if (!m || m[1] !== HOST_TAG || pidAlive(Number(m[2]))) continue;
    await removeTree(join(dir, n)).then(() => removed++, () => {}); // export stages a directory, maybe with read-only ones
  }
  return removed;
}

/** Writes a small file atomically: temp file, fsync, rename. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = tempNameFor(target);
  try {
    await writeFile(tmp, data, { mode });
    const fh = await open(tmp, 'r');
    await fh.sync().finally(() => fh.close());
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw ioError(e, target);
  }
}

export async function readJsonFile<T>(path: string, what: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(e, path);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new FerryError('E_BAD_ARCHIVE', `${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

export async function ensureDir(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (e) {
    throw ioError(e, path);
  }
}

export type StatFs = (dir: string) => Promise<{ bavail: number; bsize: number; blocks?: number }>;

/**
 * Fails with E_NO_SPACE before any download when `dir` (the filesystem `target` lands on) has
 * fewer than `need` bytes free. statfs does not see per-user quotas (common on HPC): a quota hit
 * while writing still maps to E_NO_SPACE through ioError.
 */
export async function ensureFreeSpace(dir: string, need: number, target: string, probe: StatFs = statfs): Promise<void> {
  let st: { bavail: number; bsize: number; blocks?: number };
  try {
    st = await probe(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FerryError('E_NO_SUCH_FILE', `directory ${dir} does not exist`, { cause: e, hint: `create it first, or choose another path for ${target}` });
    if (code === 'ENOSYS' || code === 'EOPNOTSUPP') return; // cannot tell; writes still map ENOSPC
    throw ioError(e, dir);
  }
  // A file system that reports no blocks at all (proc, sysfs, some FUSE) cannot tell: creating
  // the file says whether it is writable (notWritable below), writes still map ENOSPC.
  if (Number((st as { blocks?: number }).blocks ?? 1) === 0) return;
  const available = Number(st.bavail) * Number(st.bsize);
  if (available < need) {
    throw new FerryError('E_NO_SPACE', `not enough space for ${target}: need ${need} bytes, ${available} available`, {
      hint: `${target} needs ${formatBytes(need)} and ${dir} has ${formatBytes(available)} free; free some space or choose another output location`,
    });
  }
}

/**
 * Why a new file could not be created in `dir` (for `target`): EACCES/EPERM/EROFS, and ENOENT
 * while the directory exists (proc, sysfs), say "not writable"; the rest maps as ioError.
 */
export async function createError(e: unknown, dir: string, target: string): Promise<unknown> {
  const code = (e as NodeJS.ErrnoException)?.code;
  const dirExists = code === 'ENOENT' && await stat(dir).then((s) => s.isDirectory(), () => false);
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || dirExists) {
    return new FerryError('E_IO', `cannot write ${target}: ${dir} is not writable (${code === 'EROFS' ? 'read-only file system' : code === 'ENOENT' ? 'files cannot be created there' : 'permission denied'})`, {
      cause: e, hint: 'choose another output location',
    });
  }
  if (code === 'ENOENT') return new FerryError('E_IO', `cannot write ${target}: directory ${dir} does not exist`, { cause: e, hint: 'create it first, or choose another path' });
  return ioError(e, target);
}

/** Where an archive goes, from what is at its path (symlinks followed). */
export type OutputTarget =
  /** A regular file, or nothing yet: temp file beside `path` (symlinks resolved), renamed over it. */
  | { kind: 'file'; path: string; exists: boolean }
  /** A pipe, FIFO, character device, socket, or one of this process's descriptors (stdout, `-`):
   * the archive is written sequentially. `fd` is set for a descriptor we already hold. */
  | { kind: 'stream'; path: string; fd?: number }
  | { kind: 'directory'; path: string };

const MAX_LINK_HOPS = 40;

/** /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N (and this pid's): the descriptor, else undefined. */
export function descriptorPath(p: string): number | undefined {
  if (p === '-' || p === '/dev/stdout') return 1;
  if (p === '/dev/stderr') return 2;
  if (p === '/dev/stdin') return 0;
  const m = /^\/(?:dev\/fd|proc\/(?:self|thread-self|(\d+))\/fd)\/(\d+)$/.exec(p);
  if (!m || (m[1] !== undefined && Number(m[1]) !== process.pid)) return undefined;
  return Number(m[2]);
}

/**
 * Classifies an output path (see OutputTarget). `-` is stdout. A path naming one of this
 * process's descriptors, directly or through symlinks, is that descriptor: re-opening
 * /dev/stdout would truncate a file the shell opened for appending, and renaming over it would
 * replace /dev/stdout itself. Otherwise fs.stat (following symlinks) decides; a regular file's
 * path is its real path, so the rename replaces the file and keeps the link.
 */
export async function classifyOutput(path: string): Promise<OutputTarget> {
  if (path === '-') return { kind: 'stream', path: '-', fd: 1 };
  let p = resolve(path);
  for (let hops = 0; hops <= MAX_LINK_HOPS; hops++) {
    const fd = descriptorPath(p);
    if (fd !== undefined) return { kind: 'stream', path, fd };
    const l = await lstat(p).catch(() => undefined);
    if (!l?.isSymbolicLink()) break;
    p = resolve(dirname(p), await readlink(p));
  }
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw ioError(e, path);
    // Nothing there (or a dangling link): the file is created where the link chain ends.
    return { kind: 'file', path: p, exists: false };
  }
  if (st.isDirectory()) return { kind: 'directory', path: resolve(path) };
  if (st.isFile()) return { kind: 'file', path: await realpath(path), exists: true };
  return { kind: 'stream', path };
}

/** True when `destination` (a location string) is an archive written to this process's stdout
 * (`-`, /dev/stdout, /dev/fd/1…): the CLI then keeps its summary off stdout. */
export async function writesToStdout(destination: string): Promise<boolean> {
  let loc: Location;
  try {
    loc = parseLocation(destination);
  } catch {
    return false; // the operation reports the bad location
  }
  if (loc.transport !== 'docker-archive' && loc.transport !== 'oci-archive') return false;
  const out = await classifyOutput(loc.path).catch(() => undefined);
  return out?.kind === 'stream' && out.fd === 1;
}
