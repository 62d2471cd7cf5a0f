import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Removes a tree ferry built (an export's staged root filesystem), also as a user other than
 * root when some of its directories are read-only (rm alone cannot empty those): directories
 * are made the owner's to write first, never through a symlink. A missing `root` is not an error.
 */
export async function removeTree(root: string): Promise<void> {
  const open = async (dir: string): Promise<void> => {
    await chmod(dir, 0o700).catch(() => {});
    const children = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const c of children) if (c.isDirectory()) await open(join(dir, c.name));
  };
  const st = await lstat(root).catch(() => undefined);
  if (!st) return;
  if (st.isDirectory()) await open(root);
  await rm(root, { recursive: true, force: true });
}

