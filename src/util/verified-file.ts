import { open as openFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Digest } from '../oci/digest.js';
import { type RegionWriteOptions, writeVerifiedRegion } from './verified-write.js';
import { WriteBehind } from './write-behind.js';

/** The region writer's options, less the path (it is `tmpPath`) and the write-behind (its own). */
export type VerifiedWriteOptions = Omit<RegionWriteOptions, 'path' | 'writeBehind'>;

/**
 * Streams `open(offset)` into a new file `tmpPath` and resolves only when it holds exactly
 * `expected.size` bytes whose digest is `expected.digest`, fsynced. The file is the one region of
 * writeVerifiedRegion (verified-write.ts): positional writes, hashing while streaming (inline for
 * small blobs, on a worker thread tailing the file for large ones), and a broken stream resumed
 * at the durable offset. Writeback starts while it streams (write-behind.ts), so the closing
 * fsync is short. The caller renames tmpPath into place; nothing here makes it visible.
 */
export async function writeVerifiedFile(
  tmpPath: string,
  expected: { digest: Digest; size: number },
  open: (offset: number, signal?: AbortSignal) => Promise<Readable>,
  opts: VerifiedWriteOptions,
): Promise<void> {
  const fh = await openFile(tmpPath, 'w');
  const wb = new WriteBehind(fh);
  try {
    await writeVerifiedRegion(fh, 0, expected, open, { ...opts, path: tmpPath, writeBehind: wb });
    await wb.finish();
    // Durable before it can be renamed into place: after a crash a right-sized blob must never
    // be half zeros (resumed pulls skip blobs that are present with the right size).
    await fh.sync();
  } finally {
    await wb.finish().catch(() => {});
    await fh.close();
  }
}
