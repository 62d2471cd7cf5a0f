import { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import { backoffDelay, DEFAULT_BACKOFF, parseRetryAfter, sleep, type BackoffPolicy } from '../util/backoff.js';
import { readBounded } from '../util/bounded.js';
import { isRetryableNetworkError, mapBodyErrors } from './network-errors.js';
import type { DebugLog, HttpRequest, HttpResponse, Middleware } from './types.js';

/** Statuses worth another try (transient server-side trouble); 401/403/404 never are. */
export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Retries a whole request on connection resets/timeouts and on 408/429/5xx, with exponential
 * backoff + jitter, honouring Retry-After (capped by policy.maxRetryAfterMs: a longer wait is
 * surfaced as the error instead of hanging a CI job); a 429 whose `ratelimit-remaining` is 0 (Docker
 * Hub's spent pull budget, which returns over hours) is surfaced at once. Request bodies are bytes or factories, so a
 * retry re-opens the source rather than replaying a buffer.
 *
 * Response bodies: every body that leaves this layer fails only with FerryErrors (E_NETWORK from
 * bodyReadError, never undici's raw SocketError). For a request marked `small` (manifests, tokens,
 * tag pages) the 2xx body is read whole here, so a body cut after the headers is retried by
 * re-issuing the request, under the same attempts and backoff; the last failure is E_NETWORK
 * naming what was read, the host and the attempts. Blob bodies stay streams: their consumers
 * resume them by Range (util/verified-write.ts).
 */
export function retryMiddleware(policy: BackoffPolicy = DEFAULT_BACKOFF, log?: DebugLog, random?: () => number): Middleware {
  return (next) => async (req) => {
    if (req.retry === false) return withMappedBody(await next(req), req);
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= policy.attempts;
      let res;
      try {
        res = withMappedBody(await next(req), req);
      } catch (e) {
        if (last || !isRetryableNetworkError(e) || req.signal?.aborted) throw e;
        const wait = backoffDelay(policy, attempt, random);
        log?.(`retry ${attempt}/${policy.attempts - 1} after ${wait}ms: ${(e as Error).message}`);
        await sleep(wait, req.signal);
        continue;
      }
      if (RETRY_STATUSES.has(res.status) && !last) {
        const retryAfter = parseRetryAfter(res.header('retry-after'));
        if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) {
          return res; // caller maps it (429 → E_RATE_LIMITED) with the Retry-After in the message
        }
        if (res.status === 429 && budgetSpent(res)) {
          return res; // Docker Hub's pull budget returns over hours: a retry in seconds only fails again
        }
        await res.dump();
        const wait = retryAfter ?? backoffDelay(policy, attempt, random);
        log?.(`retry ${attempt}/${policy.attempts - 1} after ${wait}ms: HTTP ${res.status}`);
        await sleep(wait, req.signal);
        continue;
      }
      if (!req.small || res.status < 200 || res.status > 299) return res;
      const declared = Number(res.header('content-length'));
      if (Number.isFinite(declared) && declared > req.small.max) {
        res.body.on('error', () => {}).destroy(); // not read: the cap is known from the headers
        throw new FerryError('E_SIZE_MISMATCH', `${req.small.what} is ${declared} bytes, over the ${req.small.max}-byte limit`);
      }
      try {
        return withBytes(res, await readBounded(res.body, req.small.max, req.small.what));
      } catch (e) {
        if (!isRetryableNetworkError(e) || req.signal?.aborted) throw e;
        if (last) {
          const f = e as FerryError;
          throw new FerryError('E_NETWORK', `${f.message} (gave up after ${policy.attempts} attempts)`, {
            cause: f.cause ?? e, ...(f.url ? { url: f.url } : {}), ...(f.hint ? { hint: f.hint } : {}),
          });
        }
        const wait = backoffDelay(policy, attempt, random);
        log?.(`retry ${attempt}/${policy.attempts - 1} after ${wait}ms: ${(e as Error).message}`);
        await sleep(wait, req.signal);
      }
    }
  };
}

/** A 429 saying its rate-limit budget is spent (`ratelimit-remaining: 0;w=21600`). */
function budgetSpent(res: HttpResponse): boolean {
  return /^\s*0\s*(?:[;,]|$)/.test(res.header('ratelimit-remaining') ?? '');
}

function withMappedBody(res: HttpResponse, req: HttpRequest): HttpResponse {
  mapBodyErrors(res.body, res.url, req.small?.what);
  return res;
}

/** The response with its body held in memory (a fresh stream over the same bytes, for callers
 * that read `body` rather than `bytes`). */
function withBytes(res: HttpResponse, bytes: Buffer): HttpResponse {
  const body = Readable.from([bytes], { objectMode: false });
  return { ...res, body, bytes, dump: async () => void body.resume() };
}

export function assertNever(x: never): never {
  throw new FerryError('E_INTERNAL', `unexpected value ${String(x)}`);
}
