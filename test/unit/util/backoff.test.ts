import { describe, expect, it } from 'vitest';
import { backoffDelay, DEFAULT_BACKOFF, parseRetryAfter, sleep, type BackoffPolicy } from '../../../src/util/backoff.js';
import { mapLimit } from '../../../src/util/concurrency.js';

const P: BackoffPolicy = { attempts: 10, baseMs: 100, maxMs: 1000, maxRetryAfterMs: 5000 };

describe('backoffDelay', () => {
  // retry n: ceiling = min(maxMs, base·2^(n-1)); delay ∈ [ceiling/2, ceiling] (full-ish jitter).
  it.each([
    [1, 50, 100],
    [2, 100, 200],
    [3, 200, 400],
    [4, 400, 800],
    [5, 500, 1000], // 1600 capped at 1000
    [12, 500, 1000], // far past the cap
  ])('retry %i: random 0 → %i ms, random 1 → %i ms', (retry, lo, hi) => {
    expect(backoffDelay(P, retry, () => 0)).toBe(lo);
    expect(backoffDelay(P, retry, () => 1)).toBe(hi);
    const mid = backoffDelay(P, retry, () => 0.5);
    expect(mid).toBe(Math.round((lo + hi) / 2));
  });

  it('never exceeds maxMs nor drops below half of the ceiling, for any random value', () => {
    for (let retry = 1; retry <= 20; retry++) {
      const ceiling = Math.min(P.maxMs, P.baseMs * 2 ** (retry - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(P, retry);
        expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
        expect(d).toBeLessThanOrEqual(P.maxMs);
      }
    }
  });

  it('default policy: 5 attempts, starts around 250–500 ms and caps at 20 s', () => {
    expect(DEFAULT_BACKOFF.attempts).toBe(5);
    expect(backoffDelay(DEFAULT_BACKOFF, 1, () => 0)).toBe(250);
    expect(backoffDelay(DEFAULT_BACKOFF, 1, () => 1)).toBe(500);
    expect(backoffDelay(DEFAULT_BACKOFF, 30, () => 1)).toBe(20_000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it.each([
    ['0', 0],
    ['1', 1000],
    ['120', 120_000],
    [' 7 ', 7000],
  ])('delay-seconds %j → %i ms', (v, ms) => {
    expect(parseRetryAfter(v, now)).toBe(ms);
  });

  it('HTTP-date in the future → milliseconds until then', () => {
    expect(parseRetryAfter(new Date(now + 10_000).toUTCString(), now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:01:00 GMT', now)).toBe(60_000);
  });

  it('HTTP-date in the past → 0 (retry now), never negative', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now)).toBe(0);
  });

  it.each([[undefined], [null], [''], ['   '], ['soon'], ['10s'], ['0x10'], ['1e3']])('absent or junk %j → undefined', (v) => {
    expect(parseRetryAfter(v, now)).toBeUndefined();
  });

  // RFC 9110 §10.2.3: Retry-After is delay-seconds (1*DIGIT) or an HTTP-date. V8's Date.parse
  // accepts much more (e.g. "1.5" → 2001-01-05, "-1" → 2001-01-01), which would make ferry retry
  // immediately (0 ms) on a malformed header instead of falling back to its backoff.
  it.each([['1.5'], ['-1']])('malformed value %j that Date.parse happens to accept → undefined', (v) => {
    expect(parseRetryAfter(v, now)).toBeUndefined();
  });
});

describe('sleep', () => {
  it('rejects with the abort reason when aborted mid-way', async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    const p = sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(new Error('stop')), 10);
    await expect(p).rejects.toThrow('stop');
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('mapLimit', () => {
  it.each([1, 2, 3, 8])('limit %i: never more in flight, all used when there is work, results in input order', async (limit) => {
    let inFlight = 0;
    let max = 0;
    const items = Array.from({ length: 12 }, (_, i) => i);
    const out = await mapLimit(items, limit, async (x) => {
      inFlight++;
      max = Math.max(max, inFlight);
      await tick(((x * 7) % 5) + 1); // finish out of order
      inFlight--;
      return x * 10;
    });
    expect(out).toEqual(items.map((x) => x * 10));
    expect(max).toBe(Math.min(limit, items.length));
    expect(inFlight).toBe(0);
  });

  it('empty input → [] without calling fn', async () => {
    let calls = 0;
    expect(await mapLimit([], 4, async () => ++calls)).toEqual([]);
    expect(calls).toBe(0);
  });

  it('first error aborts siblings, stops starting new items, and is rethrown only after every started task settled', async () => {
    const started: number[] = [];
    const settled = new Set<number>();
    const abortedSeen: number[] = [];
    const boom = new Error('boom at 1');
    const p = mapLimit(Array.from({ length: 20 }, (_, i) => i), 3, async (i, _idx, signal) => {
      started.push(i);
      try {
        if (i === 1) {
          await tick(5);
          throw boom;
        }
        // siblings: wait until aborted (or a long time), then take a while to clean up
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            abortedSeen.push(i);
            resolve();
          }, { once: true });
        });
        await tick(30);
        return i;
      } finally {
        settled.add(i);
      }
    });
    const t0 = performance.now();
    const err = await p.catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(performance.now() - t0).toBeLessThan(2000); // siblings were aborted, not waited out
    // every task that started has settled by the time mapLimit rejected
    for (const i of started) expect(settled.has(i)).toBe(true);
    // no new work was started after the failure (limit 3: items 0, 1, 2 only)
    expect(started).toEqual([0, 1, 2]);
    expect(abortedSeen.sort()).toEqual([0, 2]);
  });

  it('the first error is the one rethrown (by time), even if a later one is thrown by an earlier item', async () => {
    const p = mapLimit([0, 1, 2], 3, async (i) => {
      await tick(i === 0 ? 40 : i === 1 ? 5 : 60);
      throw new Error(`fail ${i}`);
    });
    await expect(p).rejects.toThrow('fail 1');
  });

  it('a parent abort stops the run and rejects with the parent reason', async () => {
    const ac = new AbortController();
    let started = 0;
    const p = mapLimit(Array.from({ length: 10 }, (_, i) => i), 2, async (_x, _i, signal) => {
      started++;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return 1;
    }, ac.signal);
    setTimeout(() => ac.abort(new Error('cancelled by user')), 10);
    await expect(p).rejects.toThrow('cancelled by user');
    expect(started).toBe(2);
  });

  it('an already-aborted parent → rejects without calling fn', async () => {
    const ac = new AbortController();
    ac.abort(new Error('already'));
    let calls = 0;
    await expect(mapLimit([1, 2, 3], 2, async () => ++calls, ac.signal)).rejects.toThrow('already');
    expect(calls).toBe(0);
  });

  it('release() hands the slot on early: the next item starts while the released task finishes; at most limit hold a slot and 2×limit run', async () => {
    let holding = 0;
    let running = 0;
    let maxHolding = 0;
    let maxRunning = 0;
    const order: string[] = [];
    const out = await mapLimit(Array.from({ length: 10 }, (_, i) => i), 2, async (x, _i, _s, release) => {
      holding++;
      running++;
      maxHolding = Math.max(maxHolding, holding);
      maxRunning = Math.max(maxRunning, running);
      order.push(`start ${x}`);
      await tick(3); // the scarce part (a download)
      holding--;
      release();
      await tick(40); // the tail (fsync, hash finish): long, to make tails pile up
      order.push(`end ${x}`);
      running--;
      return x;
    });
    expect(out).toEqual([...Array(10).keys()]);
    expect(maxHolding).toBe(2);
    expect(maxRunning).toBe(4); // bounded at 2×limit
    // item 2 started before item 0 ended: the slot was handed on at release()
    expect(order.indexOf('start 2')).toBeLessThan(order.indexOf('end 0'));
  });

  it('a failure in a released tail aborts the others and is rethrown after all settled', async () => {
    const settled = new Set<number>();
    const started: number[] = [];
    const p = mapLimit(Array.from({ length: 50 }, (_, i) => i), 2, async (x, _i, signal, release) => {
      started.push(x);
      try {
        release();
        if (x === 1) {
          await tick(5);
          throw new Error('tail of 1 failed');
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 5000);
          signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        await tick(10);
      } finally {
        settled.add(x);
      }
    });
    const t0 = performance.now();
    await expect(p).rejects.toThrow('tail of 1 failed');
    expect(performance.now() - t0).toBeLessThan(2000);
    for (const i of started) expect(settled.has(i)).toBe(true);
    expect(started.length).toBe(4); // 2×limit ran; nothing started after the failure
  });
});
