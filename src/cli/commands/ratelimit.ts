import type { Command } from 'commander';
import { RATE_LIMIT_PROBE, rateLimit, type RateLimitResult } from '../../ops/ratelimit.js';
import { describeRateLimit, describeReset } from '../../registry/rate-limit.js';
import type { CliIO } from '../io.js';
import { document, rateLimitJson } from '../output/json.js';
import { runtimeFor } from '../runtime.js';

export function ratelimitCommand(program: Command, io: CliIO, signal: AbortSignal): void {
  program
    .command('ratelimit')
    .description('show the pull budget a registry announces (Docker Hub), with HEAD requests only: checking costs no pull')
    .argument('[reference]', `image to ask about (default: ${RATE_LIMIT_PROBE}, Docker's probe image on Docker Hub)`)
    .addHelpText('after', `
Credentials come from the usual places (--creds, --authfile, docker/podman config), so a logged-in
user sees the account's budget and an anonymous one the budget of their IP address.
A registry that sends no rate-limit headers (an unlimited account, or a registry that does not
publish them) is reported as such, with exit status 0.

Examples:
  ferry ratelimit
  ferry ratelimit --json | jq .rateLimit.remaining
  ferry ratelimit registry.example/team/app:1.0`)
    .action(async (reference: string | undefined, _opts: unknown, cmd: Command) => {
      const rt = await runtimeFor(cmd, io, signal);
      const r = await rateLimit(reference, rt.ctx);
      if (rt.g.json) return rt.outJson(ratelimitJson(r));
      rt.out(renderRateLimit(r));
    });
}

/** `{source, registry, anonymous, rateLimit?}` (docs/json.md "ratelimit"). */
export function ratelimitJson(r: RateLimitResult) {
  return document('ratelimit', {
    source: r.reference,
    registry: r.registry,
    anonymous: r.anonymous,
    ...(r.rateLimit ? { rateLimit: rateLimitJson(r.rateLimit) } : {}),
  });
}

export function renderRateLimit(r: RateLimitResult): string {
  if (!r.rateLimit) {
    return `${r.registry}: no rate-limit headers sent (an unlimited account, or a registry that does not publish them)`;
  }
  const line = `${r.registry}: ${describeRateLimit(r.rateLimit)}`;
  return r.rateLimit.remaining > 0 ? line : `${line}; ${describeReset(r.registry, r.rateLimit, undefined)}`;
}
