import type { Command } from 'commander';
import type { OpContext } from '../ops/context.js';
import { describeRateLimit } from '../registry/rate-limit.js';
import { colorsFor } from './output/colors.js';
import { StatusReporter, type StatusMode } from './output/status.js';
import { contextFrom, type GlobalOptions } from './options.js';
import type { CliIO } from './io.js';

/** What a command handler gets: parsed global flags, an OpContext, and output helpers. */
export interface Runtime {
  io: CliIO;
  g: GlobalOptions;
  ctx: OpContext;
  /** Writes a result line to stdout. */
  out(s: string): void;
  /** Writes a JSON document to stdout. */
  outJson(v: unknown): void;
  /** Status/log line to stderr (suppressed by --quiet). */
  info(s: string): void;
  warn(s: string): void;
  /** Informational line on stderr, only with --verbose (and not with --quiet). */
  verbose(s: string): void;
  /** With --verbose: each registry's last seen rate-limit budget (end of pull, push, copy,
   * inspect, tags; also after a failure). */
  reportRateLimits(): void;
  status(label: string): StatusReporter;
}

export async function runtimeFor(cmd: Command, io: CliIO, signal: AbortSignal): Promise<Runtime> {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const warned = new Set<string>();
  const warn = (s: string) => {
    if (warned.has(s)) return;
    warned.add(s);
    io.stderr.write(`ferry: warning: ${s}\n`);
  };
  const ctx = await contextFrom(g, io, signal, warn, cmd);
  const verbose = (s: string) => void (g.verbose && !g.quiet ? io.stderr.write(`${s}\n`) : undefined);
  return {
    io, g, ctx, warn, verbose,
    reportRateLimits: () => {
      for (const [registry, rl] of ctx.rateLimits?.entries() ?? []) {
        verbose(`rate limit: ${registry}: ${rl ? describeRateLimit(rl) : 'no rate-limit headers sent'}`);
      }
    },
    out: (s) => void io.stdout.write(`${s}\n`),
    outJson: (v) => void io.stdout.write(`${JSON.stringify(v, null, 2)}\n`),
    info: (s) => void (g.quiet ? undefined : io.stderr.write(`${s}\n`)),
    status: (label) => new StatusReporter({
      mode: statusMode(g, io),
      stream: io.stderr,
      intervalMs: g.progressInterval * 1000,
      colors: colorsFor(io.stderr, io.env),
      label,
    }),
  };
}

function statusMode(g: GlobalOptions, io: CliIO): StatusMode {
  if (g.quiet) return 'none';
  if (g.progress === 'auto') return io.stderr.isTTY && !isCI(io.env) && io.env['TERM'] !== 'dumb' ? 'tty' : 'plain';
  return g.progress;
}

/** CI=true, CI=1 or any other non-empty value means CI; unset, empty, `false` and `0` do not. */
export function isCI(env: NodeJS.ProcessEnv): boolean {
  const v = env['CI']?.trim().toLowerCase();
  return !!v && v !== 'false' && v !== '0';
}
