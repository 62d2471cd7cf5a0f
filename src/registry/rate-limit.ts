/**
 * Registry rate limits as the registry announces them on manifest responses (protocol.md §1.9,
 * §3.1). Docker Hub sends `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 20;w=21600` and
 * `docker-ratelimit-source: <ip or account id>` on manifest GET and HEAD (HEAD does not count),
 * and none of them for an unlimited account. Registries that say when the budget returns do so
 * with `Retry-After` (seconds or an HTTP date), `ratelimit-reset` (IETF draft: seconds) or
 * `x-ratelimit-reset` (GitHub style: epoch seconds).
 *
 * Pure: parsing and wording only; nothing here throws on what a registry sends.
 */
import { parseRetryAfter } from '../util/backoff.js';

export interface RateLimit {
  /** Requests (Docker Hub: pulls) allowed per window. */
  limit: number;
  /** Requests left in the current window. */
  remaining: number;
  /** The window, from `;w=` (Docker Hub: 21600, 6 h); absent when the registry did not say. */
  windowSeconds?: number;
  /** `docker-ratelimit-source`: the IP address or account id the budget belongs to. */
  source?: string;
  /** When the headers were seen (ms since the epoch). */
  observedAt: number;
  /** When the registry said the budget returns (ms since the epoch), from a reset header. */
  resetAt?: number;
  /** Whether the request that carried the headers went without credentials (set by the client). */
  anonymous?: boolean;
}

/** A header getter (lower-case names), as `HttpResponse.header`. */
export type HeaderGetter = (name: string) => string | undefined;

/** Largest count or window taken seriously (beyond it the value is garbage, not a limit). */
const MAX_VALUE = 1e12;

/**
 * One `ratelimit-limit` / `ratelimit-remaining` value: `100`, `100;w=21600`, ` 100 ; w = 21600 `.
 * A list (older IETF drafts: `100, 100;w=21600`) gives its first item. Anything else: undefined.
 */
export function parseQuota(v: string | undefined): { value: number; windowSeconds?: number } | undefined {
  if (typeof v !== 'string') return undefined;
  const first = v.split(',')[0]!;
  const [head, ...params] = first.split(';');
  const value = whole(head);
  if (value === undefined) return undefined;
  for (const p of params) {
    const m = /^\s*w\s*=\s*"?([^"]*)"?\s*$/i.exec(p);
    if (!m) continue;
    const w = whole(m[1]);
    if (w !== undefined && w > 0) return { value, windowSeconds: w };
  }
  return { value };
}

function whole(s: string | undefined): number | undefined {
  const t = s?.trim();
  if (!t || !/^\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) && n <= MAX_VALUE ? n : undefined;
}

/**
 * When the budget returns, from the first reset header present: `Retry-After` (seconds or HTTP
 * date), `ratelimit-reset`, `x-ratelimit-reset`. The last two are read as epoch seconds when
 * they look like one (> 10^9: GitHub, GitLab) and as seconds from now otherwise (IETF draft).
 * Returns ms since the epoch, or undefined.
 */
export function parseResetAt(get: HeaderGetter, now = Date.now()): number | undefined {
  const after = parseRetryAfter(safe(get, 'retry-after'), now);
  if (after !== undefined) return now + after;
  for (const name of ['ratelimit-reset', 'x-ratelimit-reset']) {
    const n = whole(safe(get, name)?.split(',')[0]?.split(';')[0]);
    if (n === undefined) continue;
    return n > 1e9 ? n * 1000 : now + n * 1000;
  }
  return undefined;
}

function safe(get: HeaderGetter, name: string): string | undefined {
  try {
    const v = get(name);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The rate limit a response announces: both `ratelimit-limit` and `ratelimit-remaining` must
 * parse, else undefined (no headers: an unlimited account, or a registry that publishes none).
 */
export function parseRateLimit(get: HeaderGetter, now = Date.now()): RateLimit | undefined {
  const limit = parseQuota(safe(get, 'ratelimit-limit'));
  const remaining = parseQuota(safe(get, 'ratelimit-remaining'));
  if (!limit || !remaining) return undefined;
  const rl: RateLimit = { limit: limit.value, remaining: remaining.value, observedAt: now };
  const w = limit.windowSeconds ?? remaining.windowSeconds;
  if (w !== undefined) rl.windowSeconds = w;
  const source = safe(get, 'docker-ratelimit-source')?.trim();
  // Shown to users: printable ASCII only, bounded.
  if (source && /^[\x21-\x7e]{1,200}$/.test(source)) rl.source = source;
  const reset = parseResetAt(get, now);
  if (reset !== undefined) rl.resetAt = reset;
  return rl;
}

/** Under 10% of the limit left (the point at which ferry warns). */
export function isLow(rl: RateLimit): boolean {
  return rl.limit > 0 && rl.remaining < rl.limit * 0.1;
}

/** A window or wait as people say it: `6 h`, `90 min`, `45 s`, `1 h 30 min`. */
export function formatSpan(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) {
    const h = Math.floor(s / 3600);
    const m = Math.round((s - h * 3600) / 60);
    return m === 0 ? `${h} h` : m === 60 ? `${h + 1} h` : `${h} h ${m} min`;
  }
  if (s >= 60) {
    const m = Math.floor(s / 60);
    const r = s - m * 60;
    return r === 0 ? `${m} min` : `${m} min ${r} s`;
  }
  return `${s} s`;
}

/**
 * `87 of 100 pulls left per 6 h (source 203.0.113.7, anonymous)`: the budget, for inspect,
 * `--verbose`, `ferry ratelimit` and `auth explain`. Names no secret (the source is an IP
 * address or an account id).
 */
export function describeRateLimit(rl: RateLimit): string {
  const per = rl.windowSeconds ? ` per ${formatSpan(rl.windowSeconds)}` : '';
  const notes: string[] = [];
  if (rl.source) notes.push(`source ${rl.source}`);
  if (rl.anonymous !== undefined) notes.push(rl.anonymous ? 'anonymous' : 'authenticated');
  return `${rl.remaining} of ${rl.limit} pulls left${per}${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

/** The hint for a user who is running into a limit. */
export function rateLimitHint(registry: string, anonymous: boolean): string {
  return anonymous
    ? `log in for a higher limit: ferry login ${registry}`
    : 'wait for the window to reset, or use an account with a higher limit or a mirror';
}

/** The once-per-registry warning when under 10% of the limit remain. */
export function lowRateLimitWarning(registry: string, rl: RateLimit): string {
  return `${registry}: only ${describeRateLimit(rl)}${rl.anonymous ? `; ${rateLimitHint(registry, true)}` : ''}`;
}

/**
 * When a spent budget returns, for a 429: the reset time a header gave, else how the window
 * works (Docker Hub counts pulls over a rolling window, so budget returns gradually).
 */
export function describeReset(registry: string, rl: RateLimit | undefined, resetAt: number | undefined, now = Date.now()): string {
  const at = resetAt ?? rl?.resetAt;
  if (at !== undefined) {
    const wait = Math.max(0, (at - now) / 1000);
    return `the limit resets in ${formatSpan(Math.ceil(wait))} (at ${new Date(Math.ceil(at / 1000) * 1000).toISOString().replace('.000Z', 'Z')})`;
  }
  const who = registry === 'docker.io' ? 'Docker Hub' : 'the registry';
  if (rl?.windowSeconds) {
    return `${who} counts pulls over a rolling window of ${rl.windowSeconds} s (${formatSpan(rl.windowSeconds)}), so the budget returns gradually as earlier pulls age out`;
  }
  if (registry === 'docker.io') return 'Docker Hub counts pulls over a rolling window (6 h by its documentation), so the budget returns gradually as earlier pulls age out';
  return 'the registry did not say when the limit resets';
}
