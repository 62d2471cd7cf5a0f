/**
 * Writes a directory tree (an exported root filesystem) as one flattened tar: entries in walk
 * order, so every directory comes before its contents, and each hard-link group's first path is
 * the file, later ones links to it (a link always follows its target). Long names go in PAX
 * headers (tar-stream). Owners, modes and times are the tree's; names have no leading `./`.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

interface Pack extends NodeJS.ReadableStream {
  entry(h: object, cb: (e?: Error | null) => void): NodeJS.WritableStream;
  entry(h: object, data: Buffer | string, cb: (e?: Error | null) => void): void;
  finalize(): void;
  destroy(e?: Error): void;
}

export async function packTree(root: string, out: Writable, signal?: AbortSignal): Promise<void> {
  const { pack } = (await import('tar-stream')) as unknown as { pack: () => Pack };
  const p = pack();
  const piped = pipeline(p, out);
  const seen = new Map<string, string>(); // dev:ino → first path
  const add = (h: object, data?: Buffer | string): Promise<void> => new Promise((resolve, reject) => {
    p.entry(h, data ?? '', (e) => (e ? reject(e) : resolve()));
  });
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      signal?.throwIfAborted();
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = await lstat(abs);
      const base = { name: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        await add({ ...base, type: 'directory' });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await add({ ...base, type: 'symlink', linkname: await readlink(abs) });
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await add({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) seen.set(key, r);
        await new Promise<void>((resolve, reject) => {
          const w = p.entry({ ...base, type: 'file', size: st.size }, (e) => (e ? reject(e) : resolve()));
          pipeline(createReadStream(abs), w).catch(reject);
        });
      }
    }
  };
  try {
    await walk('');
    p.finalize();
    await piped;
  } catch (e) {
    p.destroy(e as Error);
    await piped.catch(() => {});
    throw e;
  }
}
