import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../errors.js';
import { type Digest, digestAlgorithm, hashAlgorithmFor } from '../oci/digest.js';

/**
 * A pass-through that hashes every byte and counts them. It fails the stream (so a pipeline
 * rejects and nothing downstream is committed) when more bytes than `size` arrive, and at the end
 * when the count or the digest differs. `startOffset`/`seed` support resumed downloads: the hash
 * must already contain the first `startOffset` bytes.
 */
export class VerifyStream extends Transform {
  private readonly hash: Hash;
  private count: number;

  constructor(
    private readonly expected: { digest: Digest; size: number },
    private readonly what: string,
    opts: { startOffset?: number; seed?: Hash } = {},
  ) {
    super();
    this.hash = opts.seed ?? createHash(hashAlgorithmFor(expected.digest));
    this.count = opts.startOffset ?? 0;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.expected.size) {
      cb(new FerryError('E_SIZE_MISMATCH', `${this.what}: received more than the expected ${this.expected.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      checkSize(this.count, this.expected, this.what);
      checkDigest(this.hash.digest('hex'), this.expected, this.what);
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb();
  }

  get bytes(): number {
    return this.count;
  }
}

/** Checks an in-memory body against a descriptor (size first, then digest). */
export function verifyBytes(bytes: Uint8Array, expected: { digest: Digest; size?: number }, what: string): void {
  if (expected.size !== undefined) checkSize(bytes.byteLength, { size: expected.size }, what);
  checkDigest(createHash(hashAlgorithmFor(expected.digest)).update(bytes).digest('hex'), expected, what);
}

/** E_SIZE_MISMATCH unless exactly `expected.size` bytes arrived. */
export function checkSize(count: number, expected: { size: number }, what: string): void {
  if (count !== expected.size) throw new FerryError('E_SIZE_MISMATCH', `${what}: received ${count} bytes, expected ${expected.size}`);
}

/** E_DIGEST_MISMATCH unless `hex`, a hash in the expected digest's algorithm, is that digest. */
export function checkDigest(hex: string, expected: { digest: Digest }, what: string): void {
  const got = `${digestAlgorithm(expected.digest)}:${hex}`;
  if (got !== expected.digest) throw new FerryError('E_DIGEST_MISMATCH', `${what}: content digest ${got} does not match ${expected.digest}`);
}
