import { setMaxListeners } from 'node:events';
import { CommanderError } from 'commander';
import { EXIT, FerryError, isAbortError, isFerryError } from '../errors.js';
import { redactText } from '../util/redact.js';
import { type CliIO, processIO } from './io.js';
import { buildProgram } from './program.js';

/**
 * Runs the CLI and returns the exit status. Errors become one `ferry: …` line (plus a hint);
 * stack traces only with --debug. SIGINT/SIGTERM abort the running operation, which removes its
 * temporary output, and exit 130/143; a second signal exits at once.
 */
export async function run(argv: string[], io: CliIO = processIO(), installSignals = false): Promise<number> {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // one listener per concurrent task and per session; all bounded
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) process.exit(sig === 'SIGINT' ? 130 : 143);
    signalled = sig;
    ac.abort(new FerryError('E_INTERRUPTED', `interrupted by ${sig}`));
  };
  if (installSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const debug = argv.includes('--debug');
  try {
    await buildProgram(io, ac.signal).parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (signalled || (isAbortError(e) && ac.signal.aborted)) {
      io.stderr.write(`ferry: interrupted by ${signalled ?? 'signal'}; partial output removed\n`);
      return signalled === 'SIGTERM' ? 143 : EXIT.interrupted;
    }
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage; // commander already printed `ferry: <message>`
    }
    return report(e, io, debug);
  } finally {
    if (installSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

function report(e: unknown, io: CliIO, debug: boolean): number {
  const err = isFerryError(e) ? e : new FerryError('E_INTERNAL', `unexpected error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  io.stderr.write(`ferry: ${redactText(err.message)}\n`);
  if (err.hint) io.stderr.write(`  hint: ${err.hint}\n`);
  if (err.code === 'E_INTERNAL' && !debug) io.stderr.write('  (this is a bug in ferry; rerun with --debug for a stack trace)\n');
  if (debug) {
    io.stderr.write(`  code: ${err.code}\n`);
    const stack = (err.cause as Error | undefined)?.stack ?? err.stack;
    if (stack) io.stderr.write(`${redactText(stack)}\n`);
  }
  return err.exitCode;
}

/** Entry point used by bin/ferry. */
export async function main(argv: string[]): Promise<void> {
  const code = await run(argv, processIO(), true);
  process.exitCode = code;
  if (argv.includes('--debug')) {
    // At exit, not here: work still finishing after main() (V8 compiling in the background,
    // streams closing) counts too.
    process.once('exit', (status) => {
      const u = process.resourceUsage();
      process.stderr.write(`debug: exit ${status}; peak RSS ${Math.round(u.maxRSS / 1024)} MiB; CPU ${(u.userCPUTime / 1e6).toFixed(2)} s user + ${(u.systemCPUTime / 1e6).toFixed(2)} s system\n`);
    });
  }
}
