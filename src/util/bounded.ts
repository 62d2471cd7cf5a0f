import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';

/** Reads a stream fully into memory, failing with E_SIZE_MISMATCH beyond `max` bytes. */
export async function readBounded(stream: Readable | AsyncIterable<Uint8Array>, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Uint8Array>) {
    n += c.byteLength;
    if (n > max) {
      (stream as Readable).destroy?.();
      throw new FerryError('E_SIZE_MISMATCH', `${what} is larger than the ${max}-byte limit`);
    }
    chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  return Buffer.concat(chunks, n);
}

/** Like readBounded but truncates instead of failing (for error bodies shown to users). */
export async function readTruncated(stream: AsyncIterable<Uint8Array>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of stream) {
      if (n < max) chunks.push(Buffer.from(c).subarray(0, max - n));
      n += c.byteLength;
      if (n >= max) break;
    }
  } catch {
    /* an error body that fails mid-way is still worth showing in part */
  }
  return Buffer.concat(chunks).toString('utf8');
}
