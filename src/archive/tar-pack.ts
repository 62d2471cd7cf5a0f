/**
 * The sequential tar writer: entries go through tar-stream's `pack` one after another into a
 * byte sink (a pipe, a FIFO, a character device, stdout). tar-header.ts encodes headers exactly
 * as `pack` does, so for the same entries this writes the same bytes as the positional file
 * writer lays out with layoutTar (writer-tar.test.ts compares them).
 *
 * Backpressure runs end to end: a slow consumer stops `pack`, which stops the entry's data
 * source. `abort()` stops writing at once: whatever was written is a truncated tar (no trailer),
 * never one that looks complete.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pack, type Header } from 'tar-stream';
import { entryName, TAR_MTIME, type TarEntryHeader } from './tar-header.js';

/** Where the archive bytes go. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
  /** Everything was written: flush (and close what we opened). */
  end(): Promise<void>;
  /** Stop now (failure): close without flushing what is queued. */
  destroy(): void;
}

/**
 * A Node Writable as a ByteSink. `end: false` for a stream we did not open (process.stdout):
 * end() then waits for the queued bytes to be written instead of closing it.
 */
export function writableSink(w: Writable, opts: { end: boolean }): ByteSink {
  let failed: Error | undefined;
  const onError = (e: Error): void => {
    failed ??= e;
  };
  w.on('error', onError);
  const check = (): void => {
    if (failed) throw failed;
  };
  const untilDrainOrError = (): Promise<void> => new Promise<void>((resolve, reject) => {
    const done = (e?: Error): void => {
      w.off('drain', onDrain);
      w.off('error', onErr);
      w.off('close', onClose);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = (): void => done();
    const onErr = (e: Error): void => done(e);
    const onClose = (): void => done(failed ?? new Error('output closed'));
    w.on('drain', onDrain).on('error', onErr).on('close', onClose);
  });
  return {
    async write(chunk) {
      check();
      if (!w.write(chunk)) await untilDrainOrError();
      check();
    },
    async end() {
      check();
      if (opts.end) {
        w.end();
        await once(w, 'finish');
        check();
        return;
      }
      // Not ours to close: resolve once everything queued so far has been written.
      await new Promise<void>((resolve, reject) => w.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
      check();
    },
    destroy() {
      if (opts.end) w.destroy();
      w.off('error', onError);
      w.on('error', () => {}); // late EPIPE after we gave up
    },
  };
}

/** Writes tar entries in order to a ByteSink; see the file comment. */
export class TarPackWriter {
  private readonly pack = pack();
  private readonly pump: Promise<void>;
  private failure: unknown;

  constructor(private readonly sink: ByteSink) {
    this.pump = (async () => {
      for await (const chunk of this.pack as AsyncIterable<Buffer>) await sink.write(chunk);
    })();
    this.pump.catch((e: unknown) => {
      this.failure ??= e;
      this.pack.destroy();
    });
  }

  /** One entry: `data` is its content (exactly `h.size` bytes), absent for a directory. */
  async add(h: TarEntryHeader, data?: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    this.check();
    const header: Partial<Header> & { name: string } = {
      name: entryName(h), type: h.type, size: h.size, mode: h.mode ?? (h.type === 'directory' ? 0o755 : 0o644),
      uid: 0, gid: 0, mtime: new Date(TAR_MTIME * 1000),
    };
    let settled: (e?: unknown) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      settled = (e) => (e ? reject(e) : resolve());
    });
    done.catch(() => {}); // add() may leave early (check() below); the failure is reported there
    const cb = (e?: Error | null): void => settled(e ?? undefined);
    if (data === undefined) {
      this.pack.entry(header, cb).on('error', () => {}); // a directory: no body
    } else if (data instanceof Uint8Array) {
      this.pack.entry(header, Buffer.from(data.buffer, data.byteOffset, data.byteLength), cb).on('error', () => {}); // pack wants a Buffer
    } else {
      const entry = this.pack.entry(header, cb);
      entry.on('error', () => {}); // reported through cb; an aborted pack destroys its entry
      for await (const chunk of data) {
        this.check();
        if (!entry.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
          await new Promise<void>((resolve) => {
            entry.once('drain', resolve);
            entry.once('close', resolve);
          });
        }
      }
      (entry as unknown as { end(): void }).end();
    }
    await Promise.race([done, this.pump.then(() => done)]);
    this.check();
  }

  /** The trailer, then the sink is flushed/closed. */
  async finish(): Promise<void> {
    this.check();
    this.pack.finalize();
    await this.pump;
    this.check();
    await this.sink.end();
  }

  /** Stops writing now; the consumer sees a truncated archive. */
  abort(): void {
    this.failure ??= new Error('archive stream aborted');
    this.pack.destroy();
    this.sink.destroy();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }
}
