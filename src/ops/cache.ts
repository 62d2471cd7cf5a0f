/**
 * `ferry cache ls|du|prune|verify`: the blob cache of the context (`ctx.cacheDir`: --cache-dir,
 * FERRY_CACHE_DIR, the XDG default) looked after through store/maintenance.ts. A cache directory
 * that does not exist is an empty cache; no cache directory at all (no home, no flag) is E_USAGE.
 * Safe while pulls use the same cache (see maintenance.ts's contracts). Sends nothing.
 */
import { FerryError } from '../errors.js';
import {
  listCache, pruneCache, usageOf, verifyCache,
  type BadBlob, type CacheListing, type CacheUsage, type PruneOptions, type PruneResult, type VerifyResult,
} from '../store/maintenance.js';
import type { OpContext } from './context.js';

export function cacheDirOf(ctx: OpContext): string {
  if (!ctx.cacheDir) {
    throw new FerryError('E_USAGE', 'no cache directory: the home directory does not exist and neither --cache-dir nor FERRY_CACHE_DIR is set', {
      hint: 'name the cache: --cache-dir DIR or FERRY_CACHE_DIR=DIR',
    });
  }
  return ctx.cacheDir;
}

export async function cacheList(ctx: OpContext): Promise<CacheListing & { usage: CacheUsage }> {
  const l = await listCache(cacheDirOf(ctx));
  return { ...l, usage: usageOf(l) };
}

export async function cacheDu(ctx: OpContext): Promise<{ root: string; usage: CacheUsage }> {
  const root = cacheDirOf(ctx);
  return { root, usage: usageOf(await listCache(root)) };
}

export async function cachePrune(ctx: OpContext, opts: PruneOptions): Promise<PruneResult & { root: string }> {
  const root = cacheDirOf(ctx);
  return { root, ...(await pruneCache(root, opts)) };
}

export async function cacheVerify(ctx: OpContext, onBad?: (b: BadBlob) => void): Promise<VerifyResult & { root: string }> {
  const root = cacheDirOf(ctx);
  return { root, ...(await verifyCache(root, { ...(onBad ? { onBad } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) })) };
}
