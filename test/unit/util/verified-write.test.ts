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
