import { FerryError, isFerryError } from '../errors.js';

/** Maps a file-system failure on `path` to a FerryError naming it (ENOSPC → E_NO_SPACE, ENOENT →
 * E_NO_SUCH_FILE, the rest E_IO; never E_NOT_FOUND, whose exit status 4 means the registry); FerryErrors and errors without an errno code pass through. */
export function ioError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code || isFerryError(e)) return e;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new FerryError('E_NO_SPACE', `no space left writing ${path}`, { cause: e, hint: 'free some disk space or choose another output directory' });
  if (code === 'EACCES' || code === 'EPERM') return new FerryError('E_IO', `permission denied: ${path}`, { cause: e });
  if (code === 'ENOENT') return new FerryError('E_NO_SUCH_FILE', `no such file or directory: ${path}`, { cause: e });
  if (code === 'ENOTDIR' || code === 'EISDIR') return new FerryError('E_IO', `${path}: ${code === 'EISDIR' ? 'is a directory' : 'not a directory'}`, { cause: e });
  return new FerryError('E_IO', `${path}: ${(e as Error).message}`, { cause: e });
}
