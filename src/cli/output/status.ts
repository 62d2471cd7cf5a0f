import type { ChalkInstance } from 'chalk';
import type { Ora } from 'ora';
import type { CopyEvent } from '../../copy/events.js';
import { formatPlatform } from '../../oci/platform.js';
import { formatBytes, formatDuration, shortDigest } from '../../util/format.js';

/** ora's default spinner (cli-spinners "dots"). */
const DOTS = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export type StatusMode = 'tty' | 'plain' | 'json' | 'none';

export interface StatusOptions {
  mode: StatusMode;
  stream: NodeJS.WritableStream;
  intervalMs: number;
  colors: ChalkInstance;
  label: string;
}

/**
 * Renders copy-engine events on stderr. tty: one ora spinner line (blobs done/total, bytes,
 * rate, ETA) plus one persisted line per finished blob; plain (CI): one line per finished blob
 * and a progress line every interval, no escape codes; json: NDJSON events; none: silent.
 */
export class StatusReporter {
  private spinner: Ora | undefined;
  private timer: NodeJS.Timeout | undefined;
  private total = { blobs: 0, bytes: 0 };
  private done = { blobs: 0, bytes: 0 };
  private started = performance.now();
  private readonly o: StatusOptions;

  constructor(o: StatusOptions) {
    this.o = o;
  }

  private line(s: string): void {
    if (this.spinner) {
      this.spinner.clear();
      this.o.stream.write(`${s}\n`);
      this.spinner.render();
    } else this.o.stream.write(`${s}\n`);
  }

  private summary(): string {
    const secs = (performance.now() - this.started) / 1000;
    const rate = secs > 0 ? this.done.bytes / secs : 0;
    const left = this.total.bytes - this.done.bytes;
    const eta = rate > 0 && left > 0 ? ` · ETA ${formatDuration((left / rate) * 1000)}` : '';
    return `${this.o.label}: blobs ${this.done.blobs}/${this.total.blobs} · ${formatBytes(this.done.bytes)}/${formatBytes(this.total.bytes)} · ${formatBytes(rate)}/s${eta}`;
  }

  readonly onEvent = (e: CopyEvent): void => {
    const { mode, colors: c } = this.o;
    if (mode === 'none') return;
    if (mode === 'json') {
      this.track(e);
      if (e.type === 'blob-progress') return; // aggregated into the periodic progress events
      this.emitJson(jsonEvent(e));
      if (e.type === 'blob-done' || e.type === 'blob-mounted' || e.type === 'blob-skip') this.active.delete(e.descriptor.digest);
      if (e.type === 'plan') this.startTimer(() => this.emitJson({ event: 'progress', bytes: this.done.bytes, totalBytes: this.total.bytes, blobs: this.done.blobs, totalBlobs: this.total.blobs, active: [...this.active.entries()].map(([digest, a]) => ({ digest, bytes: a.bytes, size: a.size })) }));
      this.count(e);
      return;
    }
    switch (e.type) {
      case 'resolved':
        this.line(`${c.bold(this.o.label)} ${e.kind} ${e.descriptor.digest}${e.platform ? ` (${formatPlatform(e.platform)})` : ''}`);
        break;
      case 'plan':
        this.total = { blobs: e.blobs, bytes: e.bytes };
        this.started = performance.now();
        if (mode === 'tty') void this.startSpinner();
        else this.startTimer(() => this.o.stream.write(`${this.summary()}\n`));
        break;
      case 'blob-progress':
        this.done.bytes += e.delta;
        if (this.spinner) this.spinner.text = this.summary();
        break;
      case 'blob-skip':
        this.done.blobs++;
        this.done.bytes += e.descriptor.size;
        this.line(`  ${c.dim('skipped')}    ${shortDigest(e.descriptor.digest)} ${formatBytes(e.descriptor.size)} (already present)`);
        break;
      case 'blob-mounted':
        this.done.blobs++;
        this.done.bytes += e.descriptor.size;
        this.line(`  ${c.cyan('mounted')}    ${shortDigest(e.descriptor.digest)} ${formatBytes(e.descriptor.size)} from ${e.from}`);
        break;
      case 'blob-done':
        this.done.blobs++;
        this.line(`  ${c.green('verified')}   ${shortDigest(e.descriptor.digest)} ${formatBytes(e.descriptor.size)} in ${formatDuration(e.ms)}`);
        if (this.spinner) this.spinner.text = this.summary();
        break;
      default:
        break;
    }
  };

  /** --progress json: the blobs in flight and the bytes each has moved so far. */
  private readonly active = new Map<string, { bytes: number; size: number }>();

  private track(e: CopyEvent): void {
    if (e.type === 'blob-start') this.active.set(e.descriptor.digest, { bytes: 0, size: e.descriptor.size });
    if (e.type === 'blob-progress') {
      this.done.bytes += e.delta;
      const a = this.active.get(e.descriptor.digest);
      if (a) a.bytes += e.delta;
    }
  }

  /** One NDJSON event, stamped with `ts` (milliseconds since the Unix epoch). */
  private emitJson(ev: Record<string, unknown>): void {
    const { event, ...rest } = ev;
    this.o.stream.write(`${JSON.stringify({ event, ts: Date.now(), ...rest })}\n`);
  }

  private count(e: CopyEvent): void {
    if (e.type === 'plan') this.total = { blobs: e.blobs, bytes: e.bytes };
    if (e.type === 'blob-done') this.done.blobs++;
    if (e.type === 'blob-skip' || e.type === 'blob-mounted') {
      this.done.blobs++;
      this.done.bytes += e.descriptor.size;
    }
  }

  /** ora (and its dependencies) load only on a terminal: ~0.1 s saved on every CI invocation. */
  private async startSpinner(): Promise<void> {
    const { default: ora } = await import('ora');
    if (this.stopped) return;
    // ora colours its frames with its own chalk, which ignores NO_COLOR and sees no colour under
    // any CI: the frames come coloured by ours. And ora turns itself off when CI is set at all
    // (is-interactive), CI=false too: whether this is a terminal was decided already (runtime.ts).
    const frames = DOTS.map((f) => this.o.colors.cyan(f));
    this.spinner = ora({
      text: this.summary(), stream: withKnownWidth(this.o.stream), discardStdin: false,
      spinner: { interval: 80, frames }, color: false, isEnabled: (this.o.stream as { isTTY?: boolean }).isTTY === true,
    }).start();
  }

  private stopped = false;

  private startTimer(fn: () => void): void {
    this.timer = setInterval(fn, this.o.intervalMs);
    this.timer.unref();
  }

  /** Stops the spinner/timer; `ok` false leaves a failure mark on a TTY. */
  stop(ok: boolean): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.spinner) {
      if (ok) this.spinner.stop();
      // Not spinner.fail(): its red ✖ comes from log-symbols, which colours by its own rules.
      else this.spinner.stopAndPersist({ symbol: this.o.colors.red('✖'), text: this.summary() });
      this.spinner = undefined;
    }
  }
}

/**
 * The NDJSON form of an event (docs/json.md, "Progress events"). Blob events carry the blob's
 * `digest`, `size` and `bytes` (bytes of it moved so far: 0 at the start and for skipped and
 * mounted blobs, `size` when done); the periodic `progress` event lists the blobs in flight.
 */
export function jsonEvent(e: CopyEvent): Record<string, unknown> {
  switch (e.type) {
    case 'resolved':
      return { event: 'resolved', digest: e.descriptor.digest, mediaType: e.descriptor.mediaType, kind: e.kind, ...(e.platform ? { platform: formatPlatform(e.platform) } : {}) };
    case 'plan':
      return { event: 'plan', blobs: e.blobs, bytes: e.bytes, manifests: e.manifests };
    case 'blob-mounted':
      return { event: 'blob-mounted', digest: e.descriptor.digest, size: e.descriptor.size, bytes: 0, from: e.from };
    case 'blob-skip':
    case 'blob-start':
      return { event: e.type, digest: e.descriptor.digest, size: e.descriptor.size, bytes: 0 };
    case 'blob-done':
      return { event: 'blob-done', digest: e.descriptor.digest, size: e.descriptor.size, bytes: e.descriptor.size, ms: Math.round(e.ms) };
    case 'manifest-done':
      return { event: 'manifest-done', digest: e.descriptor.digest, mediaType: e.descriptor.mediaType };
    case 'committed':
      return { event: 'committed' };
    case 'blob-progress':
      return { event: 'blob-progress', digest: e.descriptor.digest, delta: e.delta };
  }
}

/**
 * A terminal that reports 0 columns (a pty nobody sized: script(1), some CI runners, `docker run
 * -t` before the first resize) made ora count Infinity lines to clear and loop forever writing
 * cursor-up escapes (regression test in test/integration/cli-output.test.ts). Such a stream is
 * shown to ora as 80 columns wide, ora's own default for an unknown width.
 */
export function withKnownWidth(stream: NodeJS.WritableStream & { columns?: number }): NodeJS.WritableStream {
  if (typeof stream.columns === 'number' && stream.columns > 0) return stream;
  return new Proxy(stream, {
    get(target, key) {
      if (key === 'columns') return 80;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
