import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError, isAbortError } from '../errors.js';
import { type Digest, hashAlgorithmFor } from '../oci/digest.js';

export interface VerifiedWriteOptions {
  signal?: AbortSignal;
  onProgress?: (delta: number) => void;
  /** Attempts for a stream that breaks mid-way (each resumes at the written offset). */
  attempts?: number;
  isRetryable?: (e: unknown) => boolean;
  what: string;
}

/**
 * Streams `open(offset)` into `tmpPath`, hashing while writing, and resolves only when the file
 * holds exactly `expected.size` bytes with digest `expected.digest`. A broken stream is resumed
 * from the bytes already on disk (re-hashing them from the file, since bytes in flight when a
 * write stream is torn down may not have reached it). The caller renames tmpPath into place.
 */
export async function writeVerifiedFile(
  tmpPath: string,
  expected: { digest: Digest; size: number },
  open: (offset: number, signal?: AbortSignal) => Promise<NodeJS.ReadableStream>,
  opts: VerifiedWriteOptions,
): Promise<void> {
  const alg = hashAlgorithmFor(expected.digest);
  const attempts = opts.attempts ?? 5;
  let hash: Hash = createHash(alg);
  let written = 0; // bytes durably in the file and in `hash`
  let count = 0; // bytes hashed and reported so far in this attempt
  for (let attempt = 1; ; attempt++) {
    try {
      const src = await open(written, opts.signal);
      count = written;
      const meter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          count += chunk.length;
          if (count > expected.size) return cb(new FerryError('E_SIZE_MISMATCH', `${opts.what}: received more than the expected ${expected.size} bytes`));
          hash.update(chunk);
          opts.onProgress?.(chunk.length);
          cb(null, chunk);
        },
      });
      await pipeline(src, meter, createWriteStream(tmpPath, { flags: written > 0 ? 'r+' : 'w', start: written }), { signal: opts.signal });
      written = count;
      break;
    } catch (e) {
      if (isAbortError(e) || opts.signal?.aborted || attempt >= attempts || !(opts.isRetryable?.(e) ?? false)) throw e;
      // Resume from what is durably in the file; rebuild the hash from those bytes.
      const onDisk = Math.min(await stat(tmpPath).then((s) => s.size, () => 0), count);
      hash = createHash(alg);
      written = 0;
      if (onDisk > 0) {
        await pipeline(createReadStream(tmpPath, { end: onDisk - 1 }), new Transform({
          transform(c: Buffer, _e, cb) { hash.update(c); written += c.length; cb(); },
        }));
      }
      opts.onProgress?.(written - count); // ≤ 0: un-count bytes that will be fetched again
    }
  }
  if (written !== expected.size) {
    throw new FerryError('E_SIZE_MISMATCH', `${opts.what}: received ${written} bytes, expected ${expected.size}`);
  }
  const got = `${alg}:${hash.digest('hex')}`;
  if (got !== expected.digest) {
    throw new FerryError('E_DIGEST_MISMATCH', `${opts.what}: content digest ${got} does not match ${expected.digest}`);
  }
}
