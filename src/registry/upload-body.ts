/**
 * Request bodies for blob uploads: a window of a re-openable source, counted (and optionally
 * hashed) on the way out, plus progress by absolute position. No bytes are buffered beyond the
 * one piece a final slice holds back until its source has ended.
 */
import type { Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Digest } from '../oci/digest.js';

/** Reports progress by absolute position, so retried or resumed ranges are not counted twice. */
export function progressReporter(onProgress: ((delta: number) => void) | undefined): (position: number) => void {
  let high = 0;
  return (position) => {
    if (position <= high) return;
    const delta = position - high;
    high = position;
    onProgress?.(delta);
  };
}

export interface SliceOptions {
  /** Absolute offset of the slice within the blob (for progress and messages). */
  start: number;
  length: number;
  total: number;
  /** Whether the slice ends the blob: then the source must end exactly there. */
  final: boolean;
  what: string;
  report: (position: number) => void;
  verify?: { digest: Digest; hash: Hash };
}

/**
 * `length` bytes of `src` as a request body. A non-final slice stops (and destroys the source)
 * after `length` bytes. A final slice holds back its last piece until the source has ended, so a
 * source that is longer, shorter, or (with `verify`) has the wrong digest fails the request
 * before the registry has received the whole body: nothing wrong is ever committed.
 */
export function slice(src: Readable, o: SliceOptions): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let got = 0;
    let held: Buffer | undefined;
    const longer = () => new FerryError('E_SIZE_MISMATCH', `${o.what}: the source has more than the expected ${o.total} bytes`);
    try {
      for await (const raw of src as AsyncIterable<Buffer | string>) {
        let c = typeof raw === 'string' ? Buffer.from(raw) : raw;
        if (c.length === 0) continue;
        if (got + c.length > o.length) {
          if (o.final) throw longer();
          c = c.subarray(0, o.length - got);
        }
        got += c.length;
        o.verify?.hash.update(c);
        if (got < o.length) {
          yield c;
          o.report(o.start + got);
          continue;
        }
        if (!o.final) {
          yield c;
          o.report(o.start + got);
          return;
        }
        held = c; // wait for the end of the source before releasing the last bytes
      }
    } finally {
      if (!src.destroyed) src.destroy();
    }
    if (got < o.length) {
      throw new FerryError('E_SIZE_MISMATCH', `${o.what}: the source ended after ${o.start + got} of the expected ${o.total} bytes`);
    }
    if (o.verify) {
      const actual = `${o.verify.digest.slice(0, o.verify.digest.indexOf(':'))}:${o.verify.hash.digest('hex')}`;
      if (actual !== o.verify.digest) {
        throw new FerryError('E_DIGEST_MISMATCH', `${o.what}: the source's content digest is ${actual}`);
      }
    }
    if (held) {
      yield held;
      o.report(o.start + got);
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
