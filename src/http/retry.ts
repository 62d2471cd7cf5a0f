import { FerryError } from '../errors.js';
import { backoffDelay, DEFAULT_BACKOFF, parseRetryAfter, sleep, type BackoffPolicy } from '../util/backoff.js';
import { isRetryableNetworkError } from './network-errors.js';
import type { DebugLog, Middleware } from './types.js';

/** Statuses worth another try (transient server-side trouble); 401/403/404 never are. */
export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Retries a whole request on connection resets/timeouts and on 408/429/5xx, with exponential
 * backoff + jitter, honouring Retry-After (capped by policy.maxRetryAfterMs: a longer wait is
 * surfaced as the error instead of hanging a CI job). Request bodies are bytes or factories, so a
 * retry re-opens the source rather than replaying a buffer.
 */
export function retryMiddleware(policy: BackoffPolicy = DEFAULT_BACKOFF, log?: DebugLog, random?: () => number): Middleware {
  return (next) => async (req) => {
    if (req.retry === false) return next(req);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= policy.attempts;
      let res;
      try {
        res = await next(req);
      } catch (e) {
        if (last || !isRetryableNetworkError(e) || req.signal?.aborted) throw e;
        const wait = backoffDelay(policy, attempt, random);
        log?.(`retry ${attempt}/${policy.attempts - 1} after ${wait}ms: ${(e as Error).message}`);
        await sleep(wait, req.signal);
        continue;
      }
      if (!RETRY_STATUSES.has(res.status) || last) return res;
      const retryAfter = parseRetryAfter(res.header('retry-after'));
      if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) {
        return res; // caller maps it (429 → E_RATE_LIMITED) with the Retry-After in the message
      }
      await res.dump();
      const wait = retryAfter ?? backoffDelay(policy, attempt, random);
      log?.(`retry ${attempt}/${policy.attempts - 1} after ${wait}ms: HTTP ${res.status}`);
      await sleep(wait, req.signal);
    }
  };
}

export function assertNever(x: never): never {
  throw new FerryError('E_INTERNAL', `unexpected value ${String(x)}`);
}
