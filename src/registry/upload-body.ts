/**
 * Request bodies for blob uploads: a window of a re-openable source, counted (and optionally
 * hashed) on the way out, plus progress by absolute position. No bytes are buffered beyond the
 * one piece a final slice holds back until its source has ended.
 */
import type { Hash } from 'node:crypto';
import { finished, Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { checkDigest } from '../util/verify-stream.js';

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
 * The source is read with 'data' events and paused when the request is not taking bytes (no
 * async iteration: a promise per chunk costs ~0.2 s of CPU per GiB); destroying the body
 * destroys the source.
 */
export function slice(src: Readable, o: SliceOptions): Readable {
  return new SliceBody(src, o);
}

class SliceBody extends Readable {
  private got = 0;
  private held: Buffer | undefined;
  private done = false;

  constructor(private readonly src: Readable, private readonly o: SliceOptions) {
    super();
    src.pause();
    src.on('data', (raw: Buffer | string) => this.onChunk(typeof raw === 'string' ? Buffer.from(raw) : raw));
    src.on('end', () => this.onEnd());
    // Errors, and a close without an end (a dropped connection), fail the body.
    finished(src, (err) => {
      if (!this.done && err) this.destroy(err);
    });
  }

  override _read(): void {
    if (!this.done) this.src.resume();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.done = true;
    if (!this.src.destroyed) this.src.destroy();
    cb(err);
  }

  private onChunk(chunk: Buffer): void {
    if (this.done || chunk.length === 0) return;
    const o = this.o;
    let c = chunk;
    if (this.got + c.length > o.length) {
      if (o.final) {
        this.destroy(new FerryError('E_SIZE_MISMATCH', `${o.what}: the source has more than the expected ${o.total} bytes`));
        return;
      }
      c = c.subarray(0, o.length - this.got);
    }
    this.got += c.length;
    o.verify?.hash.update(c);
    if (this.got < o.length) {
      if (!this.push(c)) this.src.pause();
      o.report(o.start + this.got);
      return;
    }
    if (!o.final) {
      this.done = true;
      this.push(c);
      o.report(o.start + this.got);
      this.push(null);
      this.src.destroy(); // the rest of the source is another slice's
      return;
    }
    this.held = c; // wait for the end of the source before releasing the last bytes
  }

  private onEnd(): void {
    if (this.done) return;
    const o = this.o;
    if (this.got < o.length) {
      this.destroy(new FerryError('E_SIZE_MISMATCH', `${o.what}: the source ended after ${o.start + this.got} of the expected ${o.total} bytes`));
      return;
    }
    if (o.verify) {
      try {
        checkDigest(o.verify.hash.digest('hex'), o.verify, o.what);
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
    }
    this.done = true;
    if (this.held) {
      this.push(this.held);
      o.report(o.start + this.got);
    }
    this.push(null);
  }
}
