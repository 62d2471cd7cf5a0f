/**
 * A closed stdout or stderr (`ferry --help | head -1`, `ferry tags … | head -1`, a terminal that
 * went away) ends ferry quietly: no stack trace, no message (there is nowhere to print it), exit
 * status 141 = 128 + SIGPIPE, which is what git and docker report in the same pipeline (they die
 * of SIGPIPE; node ignores that signal, so ferry sees EPIPE and exits with the same status). A
 * running operation is aborted first, so its temporary output is removed as on Ctrl-C.
 */
export const EXIT_PIPE = 141;

type Stream = NodeJS.WritableStream;

const watched = new WeakSet<Stream>();
const closed = new WeakMap<Stream, number>();
const runs = new Map<Stream, Set<AbortController>>();

/** True once `s` failed a write; later writes are dropped by the stream (destroyed). */
export function closedStatus(...streams: Stream[]): number | undefined {
  for (const s of streams) {
    const c = closed.get(s);
    if (c !== undefined) return c;
  }
  return undefined;
}

/**
 * Listens for write errors on `streams` (once per stream) and aborts `ac` when one closes while
 * the run is going. Returns the unregister function for the end of the run. `onLate` is called
 * when a stream fails after every run ended (bin/ferry sets the process exit status there).
 */
export function watchOutput(streams: Stream[], ac: AbortController, abortReason: () => unknown, onLate?: (status: number) => void): () => void {
  for (const s of streams) {
    let set = runs.get(s);
    if (!set) runs.set(s, (set = new Set()));
    set.add(ac);
    if (watched.has(s)) continue;
    watched.add(s);
    s.on('error', (e: NodeJS.ErrnoException) => {
      const status = e?.code === 'EPIPE' || e?.code === 'ERR_STREAM_DESTROYED' ? EXIT_PIPE : 8;
      if (!closed.has(s)) closed.set(s, status);
      const active = runs.get(s);
      if (active?.size) for (const a of active) a.abort(abortReason());
      else onLate?.(closed.get(s)!);
    });
  }
  return () => {
    for (const s of streams) runs.get(s)?.delete(ac);
  };
}
