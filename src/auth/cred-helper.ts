/**
 * Docker credential-helper client (`docker-credential-<name> get`), following
 * docker/docker-credential-helpers `client/client.go` + `credentials/error.go` and docker/cli
 * `cli/config/credentials/native_store.go`.
 *
 * Contracts:
 * - Runs `docker-credential-<name> get` via spawn (no shell) with the caller's env; PATH lookup uses
 *   that env's PATH. stdin = the server key, raw, no newline (as `client.Get`).
 * - exit 0: stdout must be JSON `{ServerURL, Username, Secret}`. Username `<token>` means Secret is
 *   an identity token (native_store `tokenUsername`); otherwise Username/Secret are basic creds;
 *   both empty = no credentials.
 * - exit ≠ 0 with stdout (trimmed) `credentials not found in native keychain` = no credentials,
 *   not an error (`IsErrCredentialsNotFoundMessage`).
 * - Binary not found (spawn ENOENT) → { kind: 'missing' }; the caller decides (docker errors; ferry
 *   warns and continues anonymously).
 * - Anything else (other exit text, bad JSON, timeout, stdout over 1 MiB, EACCES) → FerryError
 *   ('E_BAD_CONFIG'), one line naming the helper and the server key.
 * - The helper runs detached, as the leader of its own process group. Timeout (default 30 s) sends
 *   SIGKILL to the whole group (a shell-script helper's children too) and stops reading at once,
 *   even if a grandchild still holds the pipes; a helper that exited but left such a process
 *   behind is judged on what it wrote within 250 ms. Helpers still running when ferry exits are
 *   killed the same way.
 * - Secrets: a successful answer's text is never quoted in errors; a failing helper's message is
 *   quoted redacted (JSON secret fields, Bearer/Basic values) and truncated.
 * - Results (found / not found / missing) are cached for the life of the process per (helper, key,
 *   PATH); failures are not cached. Concurrent identical lookups share one child process.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FerryError } from '../errors.js';
import { redactText } from '../util/redact.js';

export const HELPER_PREFIX = 'docker-credential-';
export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
export const MAX_HELPER_OUTPUT = 1024 * 1024;
const NOT_FOUND_MESSAGE = 'credentials not found in native keychain';
/** docker/cli native_store.go `tokenUsername`. */
export const TOKEN_USERNAME = '<token>';

export type HelperResult =
  | { kind: 'basic'; username: string; secret: string }
  | { kind: 'identity-token'; token: string }
  | { kind: 'none' }
  | { kind: 'missing' };

export interface HelperOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

const cache = new Map<string, Promise<HelperResult>>();

/** Forgets every cached helper result (tests, or a long-lived process after `login`). */
export function clearCredentialHelperCache(): void {
  cache.clear();
}

/** Runs `docker-credential-<helper> get` for `serverKey`, cached per (helper, key, PATH). */
export function getFromHelper(helper: string, serverKey: string, opts: HelperOptions): Promise<HelperResult> {
  const ck = JSON.stringify([helper, serverKey, pathOf(opts.env)]);
  const hit = cache.get(ck);
  if (hit) return hit;
  const p = runHelperGet(helper, serverKey, opts);
  cache.set(ck, p);
  p.catch(() => cache.delete(ck));
  return p;
}

function pathOf(env: NodeJS.ProcessEnv): string {
  return env['PATH'] ?? env['Path'] ?? '';
}

/** A failing helper's message, redacted; a `"Secret": "…` cut before its closing quote (which
 * redactText's JSON rule would miss) is redacted to the end. */
function excerpt(s: string): string {
  const t = redactText(s.trim()).replace(/("(?:secret|password|token)"\s*:\s*")(?:[^"\\]|\\.)*$/i, '$1***');
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

/** How long a helper that exited may keep its stdout open (a grandchild holding it) before
 * ferry stops reading and takes what it has. */
const EXIT_GRACE_MS = 250;

/** Helpers still running, by pid: killed (their whole process group) if ferry exits first. */
const live = new Set<number>();
let exitHookInstalled = false;

/** SIGKILL to the helper's process group (it was spawned detached, as its group leader), so a
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
  child.kill('SIGKILL');
}

function runHelperGet(helper: string, serverKey: string, opts: HelperOptions): Promise<HelperResult> {
  const name = HELPER_PREFIX + helper;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const fail = (what: string, cause?: unknown): FerryError =>
    new FerryError('E_BAD_CONFIG', `credential helper ${name} failed for ${serverKey}: ${what}`, {
      hint: `check that ${name} works: echo ${serverKey} | ${name} get`,
      cause,
    });
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const pid of live) killGroup(pid, { kill: () => false });
    });
  }

  return new Promise<HelperResult>((resolve, reject) => {
    let child;
    try {
      // detached: its own process group (POSIX setsid), so a timeout can kill every process the
      // helper started, not just the shell that a script-based helper runs in.
      child = spawn(name, ['get'], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true, detached: process.platform !== 'win32' });
    } catch (e) {
      reject(fail((e as Error).message, e));
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
    /** Stops reading: our ends of the pipes are closed, so a grandchild that still holds them
     * keeps neither this promise nor the process waiting. */
    const stopReading = (): void => {
      child.stdout.destroy();
      child.stderr.destroy();
      child.stdin.destroy();
      child.unref();
    };
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      f();
    };
    const timer = setTimeout(() => {
      finish(() => {
        killGroup(pid, child);
        stopReading();
        reject(fail(`timed out after ${Math.round(timeoutMs / 100) / 10} s (killed)`));
      });
    }, timeoutMs);
    timer.unref?.();

    child.on('error', (e: NodeJS.ErrnoException) => {
      // ENOENT also comes from a script whose interpreter is missing: tell the two apart.
      if (e.code === 'ENOENT' && !lookPath(name, opts.env)) finish(() => resolve({ kind: 'missing' }));
      else finish(() => reject(fail(e.code === 'ENOENT' ? `cannot be executed (${e.message})` : e.message, e)));
    });
    child.stdout.on('data', (c: Buffer) => {
      outLen += c.length;
      if (outLen > MAX_HELPER_OUTPUT) {
        finish(() => {
          killGroup(pid, child);
          stopReading();
          reject(fail(`output exceeds ${MAX_HELPER_OUTPUT} bytes`));
        });
        return;
      }
      out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errLen < 64 * 1024) err.push(c);
      errLen += c.length;
    });
    // A helper that exits without reading stdin makes our write fail with EPIPE: harmless.
    child.stdin.on('error', () => {});
    child.stdout.on('error', () => {});
    child.stderr.on('error', () => {});
    child.stdin.end(serverKey);

    const conclude = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(() => {
        const stdout = Buffer.concat(out).toString('utf8');
        if (code !== 0) {
          if (stdout.trim() === NOT_FOUND_MESSAGE) return resolve({ kind: 'none' });
          const text = stdout.trim() || Buffer.concat(err).toString('utf8').trim();
          const status = signal ? `killed by ${signal}` : `exit status ${code}`;
          return reject(fail(text ? `${status}: ${excerpt(text)}` : status));
        }
        // A successful answer carries the secret: its text is never quoted in an error.
        let doc: unknown;
        try {
          doc = JSON.parse(stdout);
        } catch {
          return reject(fail(`output is not JSON (${Buffer.byteLength(stdout)} bytes, not shown: it may hold the secret)`));
        }
        if (typeof doc !== 'object' || doc === null) return reject(fail('output is not a JSON object'));
        const o = doc as Record<string, unknown>;
        const username = typeof o['Username'] === 'string' ? o['Username'] : '';
        const secret = typeof o['Secret'] === 'string' ? o['Secret'] : '';
        if (username === TOKEN_USERNAME) return resolve(secret ? { kind: 'identity-token', token: secret } : { kind: 'none' });
        if (username === '' && secret === '') return resolve({ kind: 'none' });
        resolve({ kind: 'basic', username, secret });
      });
    };
    child.on('exit', (code, signal) => {
      if (pid !== undefined) live.delete(pid);
      // Normally 'close' follows at once; if a process the helper left behind holds stdout open,
      // stop reading after a short grace, kill the leftovers and judge what arrived.
      grace = setTimeout(() => {
        killGroup(pid, child);
        stopReading();
        conclude(code, signal);
      }, EXIT_GRACE_MS);
      grace.unref?.();
    });
    child.on('close', (code, signal) => conclude(code, signal));
  });
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

/**
 * docker/cli `credentials.DetectDefaultStore` (used only when config.json has no auths, credsStore
 * or credHelpers): macOS `osxkeychain`, Windows `wincred`, Linux `pass` if the `pass` binary is on
 * PATH else `secretservice` — and only if `docker-credential-<that>` is on PATH.
 */
export function detectDefaultStore(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string | undefined {
  let def: string;
  if (platform === 'darwin') def = 'osxkeychain';
  else if (platform === 'win32') def = 'wincred';
  else if (platform === 'linux') def = lookPath('pass', env) ? 'pass' : 'secretservice';
  else return undefined;
  return lookPath(HELPER_PREFIX + def, env) ? def : undefined;
}
