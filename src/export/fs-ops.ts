/**
 * The filesystem calls of the layer applier that are not about layers: removing a built tree
 * (util/remove-tree.ts, re-exported), device nodes and FIFOs through coreutils `mknod`
 * (node has no mknod), best-effort times, a directory listing that tolerates absence.
 */
import { spawn } from 'node:child_process';
import { lutimesSync, readdirSync, utimesSync } from 'node:fs';
import { FerryError } from '../errors.js';
export { removeTree } from '../util/remove-tree.js';

/** `mknod -m 0600 PATH ARGS…`: a device node or FIFO at `path` (which does not exist: mknod
 * never follows a symlink there). */
export function mknod(path: string, args: string[], layer: string, entry: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mknod', ['-m', '0600', '--', path, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (err.length < 500) err += d; });
    child.on('error', (e: NodeJS.ErrnoException) => reject(new FerryError(e.code === 'ENOENT' ? 'E_UNSUPPORTED' : 'E_IO', `${layer}: cannot create ${JSON.stringify(entry)}: ${e.code === 'ENOENT' ? 'mknod (coreutils) is not on PATH' : e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new FerryError('E_IO', `${layer}: cannot create ${JSON.stringify(entry)}: ${err.trim().split('\n')[0] || `mknod exited ${code}`}`))));
  });
}

/** Sets an entry's times as tar does: a failure (a filesystem without symlink times) is not one. */
export function bestEffortTimes(path: string, mtime: Date | null | undefined, isLink: boolean): void {
  if (!mtime) return;
  try {
    (isLink ? lutimesSync : utimesSync)(path, mtime, mtime);
  } catch {
    /* best effort */
  }
}

/** A directory's names, or none when it cannot be read (it is not there). */
export function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
