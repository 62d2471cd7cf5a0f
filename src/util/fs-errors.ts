import { FerryError, isFerryError } from '../errors.js';

/** Maps a file-system failure on `path` to a FerryError naming it (ENOSPC → E_NO_SPACE, ENOENT →
 * E_NOT_FOUND unless `missing` says otherwise, the rest E_IO); FerryErrors and errors without an
 * errno code pass through. A path the user named that is not there is a local problem (E_IO, exit
 * 8), not a registry's "not found" (exit 4): callers for user-named paths pass `missing: 'E_IO'`;
 * E_NOT_FOUND stays for files inside a layout whose absence a caller turns into "no such blob". */
export function ioError(e: unknown, path: string, opts: { missing?: 'E_IO' | 'E_NOT_FOUND' } = {}): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code || isFerryError(e)) return e;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new FerryError('E_NO_SPACE', `no space left writing ${path}`, { cause: e, hint: 'free some disk space or choose another output directory' });
  if (code === 'EACCES' || code === 'EPERM') return new FerryError('E_IO', `permission denied: ${path}`, { cause: e });
  if (code === 'ENOENT') return new FerryError(opts.missing ?? 'E_NOT_FOUND', `no such file or directory: ${path}`, { cause: e });
  if (code === 'ENOTDIR' || code === 'EISDIR') return new FerryError('E_IO', `${path}: ${code === 'EISDIR' ? 'is a directory' : 'not a directory'}`, { cause: e });
  return new FerryError('E_IO', `${path}: ${(e as Error).message}`, { cause: e });
}
