/**
 * The region writer's path for a source with a synchronous sink (http/bulk-get.ts BulkBody):
 * used by verified-write.ts instead of its batching receive() when the source offers one.
 */
import { writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { FerryError } from '../errors.js';

/** A source that can hand its chunks to a synchronous sink (http/bulk-get.ts BulkBody): each
 * chunk is valid only during the call, and the next one is read only after it returns. */
export interface SyncSinkSource {
  attachSyncSink(sink: (chunk: Buffer) => void): boolean;
}

/**
 * receive() for a source with a synchronous sink: each chunk is written at its offset with
 * writeSync before the source reads into its buffer again: no copy, no batch, no write in
 * flight (a 1 GiB pull: 3.29 → 2.32 s, CPU 4.08 → 2.80 s; docs/performance.md).
 * A failed write is kept in `state.failure` (the caller maps it with writeError; the source is
 * destroyed with it). False when the source would not take a sink (then receive() reads it).
 */
export async function receiveSync(
  src: Readable & SyncSinkSource, fd: number, at: number, start: number, size: number,
  state: { failure?: unknown }, onDurable: (bufs: Buffer[], n: number) => void, what: string,
): Promise<boolean> {
  let received = start;
  let pos = at;
  const attached = src.attachSyncSink((chunk) => {
    if (received + chunk.length > size) throw new FerryError('E_SIZE_MISMATCH', `${what}: received more than the expected ${size} bytes`);
    try {
      for (let o = 0; o < chunk.length;) {
        const n = writeSync(fd, chunk, o, chunk.length - o, pos + o);
        if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
        o += n;
      }
    } catch (e) {
      state.failure = e;
      throw e;
    }
    received += chunk.length;
    pos += chunk.length;
    onDurable([chunk], chunk.length);
  });
  if (!attached) return false;
  await finished(src);
  return true;
}
