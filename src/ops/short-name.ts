/**
 * Short names in the read path (containers-registries.conf(5), config/short-names.ts): a name
 * that is not fully qualified (`team/app:1`, `alpine`) becomes the reference ferry reads.
 * - qualified, `short-name-mode = disabled`, or nothing configured: docker's rule (docker.io), as
 *   parsed;
 * - an alias: its target;
 * - `unqualified-search-registries`: each registry in order (permissive; enforcing with more than
 *   one is E_USAGE before any request), asked with a manifest HEAD (free on Docker Hub) through
 *   the same endpoints a pull uses (`Session.endpoints(ref, 'pull')`: its mirrors first, then the
 *   origin, as transports' EndpointsRegistrySource tries them), so a search registry reachable
 *   only through its mirror still resolves; the first that has it wins, and the image is named
 *   after it (the origin's name, never the mirror's). A registry that is down, refuses, lacks it or
 *   is blocked is passed over; none having it is E_NOT_FOUND listing what was tried.
 */
import { resolveShortName } from '../config/index.js';
import { FerryError, isAbortError, isFerryError } from '../errors.js';
import type { ImageReference } from '../ref/index.js';
import type { Session } from '../registry/session.js';
import { openSource } from '../transports/index.js';
import type { OpContext } from './context.js';

const PASS_OVER = new Set(['E_NETWORK', 'E_TLS', 'E_REGISTRY', 'E_NOT_FOUND', 'E_UNAUTHORIZED', 'E_DENIED', 'E_RATE_LIMITED', 'E_UNSUPPORTED', 'E_BLOCKED']);

export async function qualifyShortName(input: string, parsed: ImageReference, session: Session, ctx: OpContext): Promise<ImageReference> {
  const rules = await session.networkRules();
  const r = resolveShortName(input.replace(/^docker:\/\//, ''), rules.registries, ctx.networkConfig?.shortNameMode);
  if (r.rationale === 'qualified' || r.rationale === 'docker') return parsed;
  const why = `${r.rationale === 'alias' ? 'alias' : 'unqualified-search-registries'} at ${r.origin ?? '?'}`;
  if (r.candidates.length === 1) {
    ctx.debug?.(`short name ${input} → ${r.candidates[0]!.toString()} (${why})`);
    return r.candidates[0]!;
  }
  const tried: string[] = [];
  for (const c of r.candidates) {
    try {
      // The pull's endpoints (mirrors, then the origin); each HEAD first, GET when a HEAD lacks
      // the digest header (RegistrySource.resolve).
      await openSource({ transport: 'docker', ref: c }, session, 'pull').resolve(ctx.signal);
      ctx.debug?.(`short name ${input} → ${c.toString()} (${why}; tried ${[...tried, c.toString()].join(', ')})`);
      return c;
    } catch (e) {
      if (isAbortError(e) || !isFerryError(e) || !PASS_OVER.has(e.code)) throw e;
      tried.push(`${c.toString()}: ${e.message.split('\n', 1)[0]}`);
    }
  }
  throw new FerryError('E_NOT_FOUND', `short name ${input}: none of the search registries has it (${tried.join('; ')})`, {
    hint: `qualify the name (${r.candidates[0]!.toString()}), or add an alias under [aliases] (${why})`,
  });
}
