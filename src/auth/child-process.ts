/**
 * The one way auth/ runs an external program: credential helpers (`get`, `store`, `erase`,
 * `list`: cred-helper.ts, cred-helper-store.ts) and cloud CLIs (`aws`, `gcloud`, `az`: cloud/).
 *
 * Contracts:
 * - spawn without a shell, with the caller's env (PATH lookup uses that env's PATH); `input` is
 *   written to stdin and stdin closed.
 * - The program runs detached, as the leader of its own process group (POSIX setsid). A timeout
 *   sends SIGKILL to the whole group (a shell script's children too) and closes ferry's pipe ends
 *   at once, so a grandchild still holding stdout keeps neither the promise nor the process
 *   waiting. A program that exited but left such a process behind is judged on what it wrote
 *   within `exitGraceMs` (default 250 ms); the leftovers are killed. Programs still running when
 *   ferry exits are killed the same way. Windows: the child alone is killed.
 * - stdout over `maxOutput` bytes (default 1 MiB) kills the group: `too-large`. stderr is kept up
 *   to 64 KiB.
 * - Never rejects: the outcome says what happened. `missing` = not on PATH (spawn ENOENT and no
 *   executable of that name on PATH); an ENOENT for a binary that is there (a script whose
 *   interpreter is missing) is an `error` saying it cannot be executed.
 * - Nothing here logs or quotes output: callers decide what of it may be shown (redacted).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const MAX_CHILD_OUTPUT = 1024 * 1024;
const MAX_STDERR = 64 * 1024;
const EXIT_GRACE_MS = 250;

export interface RunChildOptions {
  env: NodeJS.ProcessEnv;
  /** Written to stdin (then closed); default nothing. */
  input?: string;
  timeoutMs: number;
  maxOutput?: number;
  exitGraceMs?: number;
}

export type ChildOutcome =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }
  | { kind: 'missing' }
  | { kind: 'timeout'; stderr: string }
  | { kind: 'too-large' }
  | { kind: 'error'; message: string; error: Error };

/** Programs still running, by pid: killed (their whole process group) if ferry exits first. */
const live = new Set<number>();
let exitHookInstalled = false;

/** SIGKILL to the child's process group (it was spawned detached, as its group leader), so a
 * shell script's children die with it; falls back to the child alone (Windows, or a group
 * already gone). */
function killGroup(pid: number | undefined, child: { kill(sig: NodeJS.Signals): boolean }): void {
  if (pid !== undefined && process.platform !== 'win32') {
    try {
      process.kill(-pid, 'SIGKILL');
      return;
    } catch {
      /* group already gone */
    }
  }
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone */
  }
}

function pathOf(env: NodeJS.ProcessEnv): string {
  return env['PATH'] ?? env['Path'] ?? '';
}

/** exec.LookPath: first executable regular file called `name` on the env's PATH. */
export function lookPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const exts = process.platform === 'win32' ? (env['PATHEXT'] ?? '.EXE;.CMD;.BAT;.COM').split(';') : [''];
  for (const dir of pathOf(env).split(delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const p = join(dir, name + ext);
      try {
        if (!statSync(p).isFile()) continue;
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        /* not here */
      }
    }
  }
  return undefined;
}

/** Runs `cmd args…` in its own process group under a timeout (module comment). */
export function runChild(cmd: string, args: readonly string[], opts: RunChildOptions): Promise<ChildOutcome> {
  const maxOutput = opts.maxOutput ?? MAX_CHILD_OUTPUT;
  const graceMs = opts.exitGraceMs ?? EXIT_GRACE_MS;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const pid of live) killGroup(pid, { kill: () => false });
    });
  }
  return new Promise<ChildOutcome>((resolve) => {
    let child;
    try {
      // detached: its own process group, so a timeout can kill every process the program
      // started, not just the shell a script runs in.
      child = spawn(cmd, [...args], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, detached: process.platform !== 'win32' });
    } catch (e) {
      resolve({ kind: 'error', message: (e as Error).message, error: e as Error });
      return;
    }
    const pid = child.pid;
    if (pid !== undefined) live.add(pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const stderrText = (): string => Buffer.concat(err).toString('utf8');
    /** Stops reading: our ends of the pipes are closed, so a grandchild that still holds them
     * keeps neither this promise nor the process waiting. */
    const stopReading = (): void => {
      child.stdout.destroy();
      child.stderr.destroy();
      child.stdin.destroy();
      child.unref();
    };
    const finish = (o: ChildOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      resolve(o);
    };
    const timer = setTimeout(() => {
      if (settled) return;
      killGroup(pid, child);
      stopReading();
      finish({ kind: 'timeout', stderr: stderrText() });
    }, opts.timeoutMs);
    timer.unref?.();

    child.on('error', (e: NodeJS.ErrnoException) => {
      if (pid !== undefined) live.delete(pid);
      // ENOENT also comes from a script whose interpreter is missing: tell the two apart.
      if (e.code === 'ENOENT' && !lookPath(cmd, opts.env)) finish({ kind: 'missing' });
      else finish({ kind: 'error', message: e.code === 'ENOENT' ? `cannot be executed (${e.message})` : e.message, error: e });
    });
    child.stdout.on('data', (c: Buffer) => {
      outLen += c.length;
      if (outLen > maxOutput) {
        if (settled) return;
        killGroup(pid, child);
        stopReading();
        finish({ kind: 'too-large' });
        return;
      }
      out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errLen < MAX_STDERR) err.push(c);
      errLen += c.length;
    });
    // A program that exits without reading stdin makes our write fail with EPIPE: harmless.
    child.stdin.on('error', () => {});
    child.stdout.on('error', () => {});
    child.stderr.on('error', () => {});
    child.stdin.end(opts.input ?? '');

    const conclude = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish({ kind: 'exited', code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: stderrText() });
    };
    child.on('exit', (code, signal) => {
      if (pid !== undefined) live.delete(pid);
      // Normally 'close' follows at once; if a process the program left behind holds stdout
      // open, stop reading after a short grace, kill the leftovers and judge what arrived.
      grace = setTimeout(() => {
        killGroup(pid, child);
        stopReading();
        conclude(code, signal);
      }, graceMs);
      grace.unref?.();
    });
    child.on('close', (code, signal) => conclude(code, signal));
  });
}
