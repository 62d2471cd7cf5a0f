/**
 * Writes a directory tree (an exported root filesystem) as one flattened tar: entries in walk
 * order, so every directory comes before its contents, and each hard-link group's first path is
 * the file, later ones links to it (a link always follows its target). Long names go in PAX
 * headers (tar-stream). Owners, modes and times are the tree's; names have no leading `./`.
 * Character and block devices and FIFOs become device entries (devmajor/devminor from st_rdev,
 * glibc's encoding; numbers past tar-stream's 6 octal digits are refused, E_UNSUPPORTED, rather
 * than cut); sockets are left out (tar has no type for them).
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../errors.js';

interface Pack extends NodeJS.ReadableStream {
  entry(h: object, cb: (e?: Error | null) => void): NodeJS.WritableStream;
  entry(h: object, data: Buffer | string, cb: (e?: Error | null) => void): void;
  finalize(): void;
  destroy(e?: Error): void;
}

const READ_CHUNK = 1024 * 1024;

/** tar-stream writes devmajor/devminor as 6 octal digits. */
const MAX_DEV = 0o777777;

export async function packTree(root: string, out: Writable, signal?: AbortSignal): Promise<void> {
  const { pack } = (await import('tar-stream')) as unknown as { pack: () => Pack };
  const p = pack();
  const piped = pipeline(p, out);
  const seen = new Map<string, string>(); // dev:ino → first path
  const add = (h: object, data?: Buffer | string): Promise<void> => new Promise((resolve, reject) => {
    p.entry(h, data ?? '', (e) => (e ? reject(e) : resolve()));
  });
  /** A file's content with synchronous reads (one per MiB; an async read per 64 KiB and a
   * pipeline per file cost a threadpool round trip each and an AbortError per file); at most
   * one MiB is held, the pack's backpressure respected. */
  const addFile = async (h: object, abs: string, size: number): Promise<void> => {
    const fd = openSync(abs, 'r');
    try {
      if (size <= READ_CHUNK) {
        const buf = Buffer.allocUnsafe(size);
        let got = 0;
        while (got < size) {
          const n = readSync(fd, buf, got, size - got, got);
          if (n === 0) throw new FerryError('E_IO', `${abs}: shorter than its size while packing`);
          got += n;
        }
        return await add(h, buf);
      }
      let w!: NodeJS.WritableStream;
      const entryDone = new Promise<void>((resolve, reject) => {
        w = p.entry(h, (e) => (e ? reject(e) : resolve()));
      });
      entryDone.catch(() => {});
      let pos = 0;
      while (pos < size) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, size - pos));
        const n = readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) {
          w.end();
          throw new FerryError('E_IO', `${abs}: shorter than its size while packing`);
        }
        pos += n;
        if (!w.write(n === buf.length ? buf : buf.subarray(0, n))) await new Promise<void>((r) => (w as unknown as NodeJS.EventEmitter).once('drain', () => r()));
      }
      w.end();
      await entryDone;
    } finally {
      closeSync(fd);
    }
  };
  const walk = async (rel: string): Promise<void> => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      signal?.throwIfAborted();
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = lstatSync(abs);
      const base = { name: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) {
        await add({ ...base, type: 'directory' });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await add({ ...base, type: 'symlink', linkname: readlinkSync(abs) });
      } else if (st.isFile() || st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? seen.get(key) : undefined;
        if (first !== undefined) {
          await add({ ...base, type: 'link', linkname: first });
          continue;
        }
        if (st.nlink > 1) seen.set(key, r);
        if (!st.isFile()) {
          const type = st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'character-device' : 'block-device';
          const devmajor = devMajor(st.rdev);
          const devminor = devMinor(st.rdev);
          if (devmajor > MAX_DEV || devminor > MAX_DEV) throw new FerryError('E_UNSUPPORTED', `${r}: device ${devmajor}:${devminor} does not fit a tar header (at most ${MAX_DEV} each)`);
          await add({ ...base, type, devmajor, devminor });
          continue;
        }
        await addFile({ ...base, type: 'file', size: st.size }, abs, st.size);
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

/** glibc's gnu_dev_major/gnu_dev_minor of a dev_t (as a number: exact below 2^53). */
export function devMajor(rdev: number): number {
  const r = BigInt(rdev);
  return Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
}

export function devMinor(rdev: number): number {
  const r = BigInt(rdev);
  return Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
}
