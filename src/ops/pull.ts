import { copyImage, type CopyResult } from '../copy/engine.js';
import type { CopyEvent } from '../copy/events.js';
import { FerryError } from '../errors.js';
import { hostPlatform, type Platform } from '../oci/platform.js';
import { formatLocation, openDestination, openSource, parseLocation } from '../transports/index.js';
import { type OpContext, withSession } from './context.js';

export interface PullOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  jobs?: number;
  onEvent?: (e: CopyEvent) => void;
}

export interface PullResult extends CopyResult {
  source: string;
  destination: string;
  ms: number;
}

/** Registry → local: the copy engine with a registry source and a local destination. */
export async function pull(source: string, destination: string, opts: PullOptions, ctx: OpContext): Promise<PullResult> {
  const src = parseLocation(source);
  if (src.transport !== 'docker') {
    throw new FerryError('E_USAGE', `pull reads from a registry, but "${source}" is a local ${src.transport}: location`, { hint: 'use ferry copy to move between local formats' });
  }
  const dst = parseLocation(destination);
  if (dst.transport === 'docker') {
    throw new FerryError('E_USAGE', `pull writes to a local location, but "${destination}" is a registry reference`, { hint: 'use oci:DIR[:tag], or ferry copy for registry to registry' });
  }
  if (opts.platform && opts.allPlatforms) throw new FerryError('E_USAGE', '--platform and --all-platforms cannot be used together');
  const defaults = src.ref.tag ? { tag: src.ref.tag } : {};
  const written = (dst.transport === 'oci' || dst.transport === 'oci-archive') && !dst.tag && defaults.tag ? { ...dst, tag: defaults.tag } : dst;
  const t0 = performance.now();
  return withSession(ctx, async (session) => {
    const result = await copyImage(
      openSource(src, session),
      openDestination(written, session),
      {
        platforms: opts.allPlatforms ? 'all' : [opts.platform ?? hostPlatform()],
        jobs: opts.jobs ?? 4,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      },
      {
        ...(written.transport === 'oci' || written.transport === 'oci-archive' ? (written.tag ? { refName: written.tag } : {}) : {}),
        repoTag: src.ref.tag ? src.ref.withTag(src.ref.tag).toString().replace(/@.*$/, '') : src.ref.name(),
      },
    );
    return { ...result, source: src.ref.toString(), destination: formatLocation(written), ms: performance.now() - t0 };
  });
}
