import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile, readFile, stat, mkdir, statfs } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { FerryError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import { ioError } from '../util/fs-errors.js';

/** A temp name beside `target` (same filesystem, so the final rename is atomic). */
export function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.partial`);
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

export type StatFs = (dir: string) => Promise<{ bavail: number; bsize: number }>;

/**
 * Fails with E_NO_SPACE before any download when `dir` (the filesystem `target` lands on) has
 * fewer than `need` bytes free. statfs does not see per-user quotas (common on HPC): a quota hit
 * while writing still maps to E_NO_SPACE through ioError.
 */
export async function ensureFreeSpace(dir: string, need: number, target: string, probe: StatFs = statfs): Promise<void> {
  let st: { bavail: number; bsize: number };
  try {
    st = await probe(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new FerryError('E_NO_SUCH_FILE', `directory ${dir} does not exist`, { cause: e, hint: `create it first, or choose another path for ${target}` });
    if (code === 'ENOSYS' || code === 'EOPNOTSUPP') return; // cannot tell; writes still map ENOSPC
    throw ioError(e, dir);
  }
  const available = Number(st.bavail) * Number(st.bsize);
  if (available < need) {
    throw new FerryError('E_NO_SPACE', `not enough space for ${target}: need ${need} bytes, ${available} available`, {
      hint: `${target} needs ${formatBytes(need)} and ${dir} has ${formatBytes(available)} free; free some space or choose another output location`,
    });
  }
}
