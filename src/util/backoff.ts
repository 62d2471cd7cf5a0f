/** Retry timing: exponential backoff with full jitter, capped, and Retry-After honoured. */
export interface BackoffPolicy {
  attempts: number; // total tries, including the first
  baseMs: number;
  maxMs: number;
  /** Longest Retry-After ferry is willing to wait; beyond it the error is surfaced. */
  maxRetryAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { attempts: 5, baseMs: 500, maxMs: 20_000, maxRetryAfterMs: 120_000 };

/** Delay before retry number `retry` (1-based). `random` is injectable for tests. */
export function backoffDelay(p: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(p.maxMs, p.baseMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Parses Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Undefined if absent/bad. */
export function parseRetryAfter(v: string | null | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  // Only an HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms, all of which start
  // with a day name); V8's lenient Date.parse would read "1.5" or "-1" as dates in 2001.
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(s)) return undefined;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
