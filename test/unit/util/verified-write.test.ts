import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import { writeVerifiedFile } from '../../../src/util/verified-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-vw-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const data = Buffer.from('x'.repeat(100_000));
const expected = { digest: `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest, size: data.length };
const bigData = Buffer.alloc(8 * (1 << 20) + 8, 3);
const big = { digest: `sha256:${createHash('sha256').update(bigData).digest('hex')}` as Digest, size: bigData.length };
const reset = (): Error => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const retryable = (e: unknown): boolean => (e as { code?: string }).code === 'ECONNRESET';

describe('writeVerifiedFile retries', () => {
  it('a body that breaks mid-way is resumed at the durable offset', async () => {
    const offsets: number[] = [];
    await writeVerifiedFile(join(dir, 'a'), expected, async (offset) => {
      offsets.push(offset);
      if (offsets.length === 1) {
        const r = new Readable({ read() {} });
        r.push(data.subarray(0, 40_000));
        setImmediate(() => r.destroy(reset()));
        return r;
      }
      return Readable.from([data.subarray(offset)]);
    }, { what: 'blob', isRetryable: retryable });
    expect(offsets).toEqual([0, 40_000]);
    expect(readFileSync(join(dir, 'a')).equals(data)).toBe(true);
  });

  it('a request that fails before any stream (the HTTP layer retried it already) is not retried again', async () => {
    let calls = 0;
    const e = await writeVerifiedFile(join(dir, 'b'), expected, async () => {
      calls++;
      throw reset();
    }, { what: 'blob', isRetryable: retryable }).then(() => new Error('resolved'), (x: unknown) => x as Error);
    expect(e.message).toBe('socket hang up');
    expect(calls).toBe(1);
  });
});

describe('writeVerifiedFile on a flaky body', () => {
  it('breaks that each move the blob forward by ≥ 1 MiB are not counted against the attempts', async () => {
    const offsets: number[] = [];
    const step = (1 << 20) + 1;
    // Seven breaks (more than the 5 attempts), each after 1 MiB more; the eighth answer ends it.
    await writeVerifiedFile(join(dir, 'c'), big, async (offset) => {
      offsets.push(offset);
      const r = new Readable({ read() {} });
      const end = offsets.length <= 8 ? offset + step : bigData.length;
      r.push(bigData.subarray(offset, end));
      // The break comes after the bytes were written (1 MiB to a temp dir: well under 200 ms).
      if (end < bigData.length) setTimeout(() => r.destroy(reset()), 200);
      else r.push(null);
      return r;
    }, { what: 'blob', isRetryable: retryable });
    expect(offsets).toHaveLength(8);
    expect(offsets.slice(0, 3)).toEqual([0, step, 2 * step]);
    expect(readFileSync(join(dir, 'c')).equals(bigData)).toBe(true);
  });

  it('breaks that bring only a few bytes each: given up after the attempts', async () => {
    let calls = 0;
    const e = await writeVerifiedFile(join(dir, 'd'), expected, async (offset) => {
      calls++;
      const r = new Readable({ read() {} });
      r.push(data.subarray(offset, offset + 1000));
      setTimeout(() => r.destroy(reset()), 20);
      return r;
    }, { what: 'blob', isRetryable: retryable }).then(() => new Error('resolved'), (x: unknown) => x as Error);
    expect(e.message).toBe('socket hang up');
    expect(calls).toBe(5);
  });
});

/** A source like http/bulk-get.ts's BulkBody: it hands chunks to a synchronous sink when one is
 * attached (each a view of one reused buffer, overwritten after the call), else it is a plain
 * stream. `breakAfter` destroys it (ECONNRESET) once that many bytes went out. */
class SinkSource extends Readable {
  private sink: ((c: Buffer) => void) | undefined;
  private readonly scratch = Buffer.alloc(64 * 1024);
  constructor(private readonly bytes: Buffer, private readonly breakAfter = Infinity) {
    super({ read() {} });
  }
  attachSyncSink(sink: (c: Buffer) => void): boolean {
    this.sink = sink;
    const pump = (at: number): void => {
      if (this.destroyed) return;
      if (at >= this.bytes.length) return void this.push(null);
      if (at >= this.breakAfter) return void this.destroy(reset());
      const n = Math.min(this.scratch.length, this.bytes.length - at, this.breakAfter - at);
      this.bytes.copy(this.scratch, 0, at, at + n);
      try {
        this.sink!(this.scratch.subarray(0, n));
      } catch (e) {
        return void this.destroy(e as Error);
      }
      this.scratch.fill(0xee); // the view is reused: a sink that kept it would see this
      setImmediate(() => pump(at + n));
    };
    this.resume();
    setImmediate(() => pump(0));
    return true;
  }
}

describe('writeVerifiedRegion with a synchronous-sink source', () => {
  it('writes every chunk at its offset before the buffer is reused; the digest is checked', async () => {
    const path = join(dir, 's');
    await writeVerifiedFile(path, big, async (offset) => new SinkSource(bigData.subarray(offset)), { what: 'blob', isRetryable: retryable });
    expect(readFileSync(path).equals(bigData)).toBe(true);
    const bad = Buffer.from(bigData);
    bad[12345] ^= 1;
    const e = await writeVerifiedFile(join(dir, 's2'), big, async () => new SinkSource(bad), { what: 'blob' }).then(() => undefined, (x: unknown) => x as { code?: string });
    expect(e?.code).toBe('E_DIGEST_MISMATCH');
  });

  it('a body that breaks mid-way resumes at the durable offset (through the sink again)', async () => {
    const offsets: number[] = [];
    await writeVerifiedFile(join(dir, 't'), big, async (offset) => {
      offsets.push(offset);
      return new SinkSource(bigData.subarray(offset), offsets.length === 1 ? 3 * 65536 + 100 : Infinity);
    }, { what: 'blob', isRetryable: retryable });
    expect(offsets).toEqual([0, 3 * 65536 + 100]);
    expect(readFileSync(join(dir, 't')).equals(bigData)).toBe(true);
  });

  it('more bytes than expected: E_SIZE_MISMATCH, before the extra bytes are written', async () => {
    const path = join(dir, 'u');
    const e = await writeVerifiedFile(path, expected, async () => new SinkSource(Buffer.concat([data, Buffer.alloc(70_000, 1)])), { what: 'blob' })
      .then(() => undefined, (x: unknown) => x as { code?: string });
    expect(e?.code).toBe('E_SIZE_MISMATCH');
    expect(readFileSync(path).length).toBeLessThanOrEqual(data.length);
  });

  it('a failed write is mapped by writeError, as on the stream path (not taken for a network error)', async () => {
    const { open: openFh } = await import('node:fs/promises');
    const path = join(dir, 'ro');
    await openFh(path, 'w').then((f) => f.close());
    const { writeVerifiedRegion } = await import('../../../src/util/verified-write.js');
    for (const source of [() => new SinkSource(data), () => Readable.from([data])]) {
      const fh = await openFh(path, 'r'); // writes fail with EBADF
      try {
        const e = await writeVerifiedRegion(fh, 0, expected, async () => source(), {
          path, what: 'blob', isRetryable: () => true, writeError: (x) => Object.assign(new Error('mapped'), { code: 'E_IO', cause: x }),
        }).then(() => undefined, (x: unknown) => x as { code?: string; cause?: { code?: string } });
        expect([e?.code, e?.cause?.code]).toEqual(['E_IO', 'EBADF']);
      } finally {
        await fh.close();
      }
    }
  });
});
