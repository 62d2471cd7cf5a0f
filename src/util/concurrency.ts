import { setMaxListeners } from 'node:events';

/**
 * Runs `fn` over `items` with at most `limit` in flight. The first failure aborts the shared
 * controller (so siblings stop promptly) and is rethrown after every started task settled: no
 * task is left running behind the caller's back.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  parent?: AbortSignal,
): Promise<R[]> {
  const ac = new AbortController();
  // Every task hangs a few abort listeners (request, pipeline, sleep) on this one signal; with
  // --jobs above ~3 that passes Node's default of 10 and prints a bogus leak warning.
  setMaxListeners(Math.max(10, limit * 8), ac.signal);
  const onParentAbort = () => ac.abort(parent!.reason);
  if (parent?.aborted) ac.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  const results = new Array<R>(items.length);
  let next = 0;
  let firstError: { e: unknown } | undefined;
  const worker = async () => {
    while (!ac.signal.aborted) {
      const i = next++;
      if (i >= items.length) return;
      try {
        results[i] = await fn(items[i]!, i, ac.signal);
      } catch (e) {
        if (!firstError) firstError = { e };
        ac.abort(e);
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    parent?.removeEventListener('abort', onParentAbort);
  }
  if (firstError) throw firstError.e;
  if (ac.signal.aborted) throw ac.signal.reason;
  return results;
}
