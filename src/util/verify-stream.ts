import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FerryError } from '../errors.js';
import { type Digest, hashAlgorithmFor } from '../oci/digest.js';

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
    if (this.count !== this.expected.size) {
      cb(new FerryError('E_SIZE_MISMATCH', `${this.what}: received ${this.count} bytes, expected ${this.expected.size}`));
      return;
    }
    const got = `${this.expected.digest.slice(0, this.expected.digest.indexOf(':'))}:${this.hash.digest('hex')}`;
    if (got !== this.expected.digest) {
      cb(new FerryError('E_DIGEST_MISMATCH', `${this.what}: content digest ${got} does not match ${this.expected.digest}`));
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
  if (expected.size !== undefined && bytes.byteLength !== expected.size) {
    throw new FerryError('E_SIZE_MISMATCH', `${what}: got ${bytes.byteLength} bytes, expected ${expected.size}`);
  }
  const alg = hashAlgorithmFor(expected.digest);
  const got = `${alg}:${createHash(alg).update(bytes).digest('hex')}`;
  if (got !== expected.digest) {
    throw new FerryError('E_DIGEST_MISMATCH', `${what}: content digest ${got} does not match ${expected.digest}`);
  }
}
