import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The cache directory when none is given: `$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ferry`, else
 * `~/.cache/ferry` (the XDG base-directory default). Undefined — no cache — when the base
 * directory (XDG_CACHE_HOME, else HOME) does not exist: batch and service accounts often run
 * with HOME=/nonexistent, and ferry must not create a home for them.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FERRY_CACHE_DIR) return env.FERRY_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith('/')) return existsSync(xdg) ? join(xdg, 'ferry') : undefined;
  const home = env.HOME || homedir();
  return home && existsSync(home) ? join(home, '.cache', 'ferry') : undefined;
}
