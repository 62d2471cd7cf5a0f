import { setMaxListeners } from 'node:events';
import { CommanderError } from 'commander';
import { EXIT, FerryError, isAbortError, isFerryError } from '../errors.js';
import { redactText } from '../util/redact.js';
import { closedStatus, watchOutput } from './closed-output.js';
import { type CliIO, processIO } from './io.js';
import { type CommandName, errorJson } from './output/json.js';
import { buildProgram } from './program.js';

/**
 * Runs the CLI and returns the exit status. Errors become one `ferry: …` line (plus a hint);
 * stack traces only with --debug. SIGINT/SIGTERM abort the running operation, which removes its
 * temporary output, and exit 130/143; a second signal exits at once. With --json a failure also
 * prints `{"error": {code, message, hint, exitCode}}` on stdout. A closed stdout/stderr ends the
 * run quietly with 141 (closed-output.ts).
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
  const json = argv.includes('--json');
  const unwatch = watchOutput([io.stdout, io.stderr], ac, () => new FerryError('E_IO', 'output closed'),
    installSignals ? (status) => { process.exitCode = status; } : undefined);
  const program = buildProgram(io, ac.signal);
  const command = commandOf(program, argv);
  try {
    await program.parseAsync(argv);
    return closedStatus(io.stdout, io.stderr) ?? EXIT.ok;
  } catch (e) {
    const closed = closedStatus(io.stdout, io.stderr);
    if (closed !== undefined) return closed; // nowhere to say anything
    if (signalled || (isAbortError(e) && ac.signal.aborted)) {
      const status = signalled === 'SIGTERM' ? 143 : EXIT.interrupted;
      const msg = `interrupted by ${signalled ?? 'signal'}; partial output removed`;
      io.stderr.write(`ferry: ${msg}\n`);
      if (json && !io.stdoutIsData) writeJson(io, errorJson(command, new FerryError('E_INTERRUPTED', msg), status));
      return status;
    }
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      // commander already printed `ferry: <message>` on stderr
      if (json) writeJson(io, errorJson(command, new FerryError('E_USAGE', e.message.replace(/^error: /, ''))));
      return EXIT.usage;
    }
    return report(e, io, debug, json ? command : undefined);
  } finally {
    unwatch();
    if (installSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

/** The command argv names (its canonical name, for an alias), if any: the first word that is one. */
function commandOf(program: ReturnType<typeof buildProgram>, argv: string[]): CommandName | null {
  const args = argv.slice(2);
  for (const [i, a] of args.entries()) {
    if (a === '--') break;
    const c = program.commands.find((x) => x.name() === a || x.aliases().includes(a));
    if (!c) continue;
    if (c.commands.length === 0) return c.name() as CommandName;
    // a command group (`auth explain`): its subcommand names the document
    const sub = args.slice(i + 1).find((w) => c.commands.some((x) => x.name() === w));
    return sub ? (`${c.name()} ${sub}` as CommandName) : null;
  }
  return null;
}

function writeJson(io: CliIO, v: unknown): void {
  io.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** The one-line message (and hint) on stderr; with --json (`command` given) the error document. */
function report(e: unknown, io: CliIO, debug: boolean, command?: CommandName | null): number {
  const err = isFerryError(e) ? e : new FerryError('E_INTERNAL', `unexpected error: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  if (command !== undefined && !io.stdoutIsData) writeJson(io, errorJson(command, err));
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
  // A pipe that failed between the end of run() and here counts too (later ones: watchOutput).
  process.exitCode = closedStatus(process.stdout, process.stderr) ?? code;
  if (argv.includes('--debug')) {
    // At exit, not here: work still finishing after main() (V8 compiling in the background,
    // streams closing) counts too.
    process.once('exit', (status) => {
      const u = process.resourceUsage();
      process.stderr.write(`debug: exit ${status}; peak RSS ${Math.round(u.maxRSS / 1024)} MiB; CPU ${(u.userCPUTime / 1e6).toFixed(2)} s user + ${(u.systemCPUTime / 1e6).toFixed(2)} s system\n`);
    });
  }
}
