import { FerryError } from '../errors.js';
import { RateLimitLog } from '../registry/rate-limit-log.js';
import type { RateLimit } from '../registry/rate-limit.js';
import { parseLocation } from '../transports/index.js';
import { type OpContext, withSession } from './context.js';

/** Docker's documented probe image for the pull budget (docs.docker.com, "Docker Hub usage"). */
export const RATE_LIMIT_PROBE = 'ratelimitpreview/test:latest';

export interface RateLimitResult {
  /** The reference probed, normalised (`docker.io/ratelimitpreview/test:latest`). */
  reference: string;
  registry: string;
  /** Whether the probe went without credentials (none configured, or the registry never asked). */
  anonymous: boolean;
  /** What the registry announced; absent when it sent no rate-limit headers. */
  rateLimit?: RateLimit;
}

/**
 * The pull budget a registry announces, read with one manifest HEAD (Docker Hub does not count
 * HEADs against the limit; a GET would spend a pull). Credentials come from the usual chain, so a
 * logged-in user sees the account's budget and an anonymous one the address's.
 */
export async function rateLimit(reference: string | undefined, ctx: OpContext): Promise<RateLimitResult> {
  const loc = parseLocation(reference ?? RATE_LIMIT_PROBE);
  if (loc.transport !== 'docker') {
    throw new FerryError('E_USAGE', `ratelimit asks a registry, but "${reference}" is a local ${loc.transport}: location`);
  }
  const ref = loc.ref;
  // The budget is this command's output: no low-budget warning on top of it.
  return withSession({ ...ctx, rateLimits: new RateLimitLog({ warnLow: false }) }, async (session) => {
    const client = session.registry(ref);
    const probe = await client.repository(ref.repository).probeManifest(ref.reference(), ctx.signal);
    const anonymous = !(client.opts.hasCredentials?.() ?? false);
    return {
      reference: ref.toString(), registry: ref.registry, anonymous,
      ...(probe.rateLimit ? { rateLimit: probe.rateLimit } : {}),
    };
  });
}
