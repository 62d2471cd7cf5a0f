import { isLow, lowRateLimitWarning, type RateLimit } from './rate-limit.js';

/**
 * The latest rate limit seen per registry, for one run (the CLI makes one per process and hands
 * it to every Session through `SessionOptions.rateLimits`). It also owns the low-budget warning,
 * so that warning is given once per registry per run, however many requests, repositories,
 * clients or sessions see a low budget.
 */
export class RateLimitLog {
  private readonly latest = new Map<string, RateLimit | undefined>();
  private readonly warned = new Set<string>();

  /** `warnLow: false` for a command that prints the budget itself (`ferry ratelimit`). */
  constructor(private readonly opts: { warnLow?: boolean } = {}) {}

  /**
   * A manifest response from `registry`, with the rate limit it announced (undefined: none).
   * Warns through `warn` the first time a registry's budget is under 10% of its limit.
   */
  record(registry: string, rl: RateLimit | undefined, warn?: (msg: string) => void): void {
    if (rl || !this.latest.has(registry)) this.latest.set(registry, rl ?? this.latest.get(registry));
    if (!rl || this.opts.warnLow === false || !isLow(rl) || this.warned.has(registry)) return;
    this.warned.add(registry);
    warn?.(lowRateLimitWarning(registry, rl));
  }

  /** The latest rate limit `registry` announced, if any. */
  get(registry: string): RateLimit | undefined {
    return this.latest.get(registry);
  }

  /** Every registry a manifest was asked of, in first-seen order, with its latest rate limit
   * (undefined when it sent none). */
  entries(): Array<[registry: string, rl: RateLimit | undefined]> {
    return [...this.latest.entries()];
  }
}
