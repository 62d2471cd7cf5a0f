import { setMaxListeners } from 'node:events';

/**
 * Runs `fn` over `items` with at most `limit` in flight. The first failure aborts the shared
 * controller (so siblings stop promptly) and is rethrown after every started task settled: no
 * task is left running behind the caller's back.
 *
 * A task may call `release()` to hand its slot to the next item before it finishes, when what is
 * left of it no longer uses the scarce resource the limit protects (a download whose bytes all
 * arrived and that is only fsyncing and finishing its hash). Released tasks still count against
 * a second bound, `limit` more, so slow tails cannot pile up without end.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number, signal: AbortSignal, release: () => void) => Promise<R>,
  parent?: AbortSignal,
): Promise<R[]> {
  const ac = new AbortController();
  const slots = Math.max(1, limit);
  // Every task hangs a few abort listeners (request, pipeline, sleep) on this one signal; with
  // --jobs above ~3 that passes Node's default of 10 and prints a bogus leak warning.
  setMaxListeners(Math.max(10, slots * 16), ac.signal);
  const onParentAbort = () => ac.abort(parent!.reason);
  if (parent?.aborted) ac.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  const results = new Array<R>(items.length);
  let firstError: { e: unknown } | undefined;
  let holding = 0; // tasks that hold a slot
  let running = 0; // every unfinished task, released or not
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onAbort = () => poke();
  ac.signal.addEventListener('abort', onAbort);
  const tasks: Promise<void>[] = [];
  const start = (i: number) => {
    let held = true;
    holding++;
    running++;
    const release = () => {
      if (!held) return;
      held = false;
      holding--;
      poke();
    };
    tasks.push((async () => {
      try {
        results[i] = await fn(items[i]!, i, ac.signal, release);
      } catch (e) {
        if (!firstError) firstError = { e };
        ac.abort(e);
      } finally {
        release();
        running--;
        poke();
      }
    })());
  };
  try {
    for (let next = 0; next < items.length && !ac.signal.aborted;) {
      if (holding >= slots || running >= 2 * slots) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      start(next++);
    }
    await Promise.all(tasks);
  } finally {
    ac.signal.removeEventListener('abort', onAbort);
    parent?.removeEventListener('abort', onParentAbort);
  }
  if (firstError) throw firstError.e;
  if (ac.signal.aborted) throw ac.signal.reason;
  return results;
}
