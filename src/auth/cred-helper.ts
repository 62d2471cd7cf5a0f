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
 *   ('E_BAD_CONFIG') naming the helper, with its output redacted and truncated.
 * - Timeout (default 30 s) kills the child with SIGKILL.
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

function excerpt(s: string): string {
  const t = redactText(s.trim());
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

function runHelperGet(helper: string, serverKey: string, opts: HelperOptions): Promise<HelperResult> {
  const name = HELPER_PREFIX + helper;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const fail = (what: string, cause?: unknown): FerryError =>
    new FerryError('E_BAD_CONFIG', `credential helper ${name} failed for ${serverKey}: ${what}`, {
      hint: `check that ${name} works: echo ${serverKey} | ${name} get`,
      cause,
    });

  return new Promise<HelperResult>((resolve, reject) => {
    let child;
    try {
      child = spawn(name, ['get'], { env: opts.env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    } catch (e) {
      reject(fail((e as Error).message, e));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(fail(`timed out after ${Math.round(timeoutMs / 100) / 10} s`)));
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
        child.kill('SIGKILL');
        finish(() => reject(fail(`output exceeds ${MAX_HELPER_OUTPUT} bytes`)));
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
    child.stdin.end(serverKey);

    child.on('close', (code, signal) => {
      finish(() => {
        const stdout = Buffer.concat(out).toString('utf8');
        if (code !== 0) {
          if (stdout.trim() === NOT_FOUND_MESSAGE) return resolve({ kind: 'none' });
          const text = stdout.trim() || Buffer.concat(err).toString('utf8').trim();
          const status = signal ? `killed by ${signal}` : `exit status ${code}`;
          return reject(fail(text ? `${status}: ${excerpt(text)}` : status));
        }
        let doc: unknown;
        try {
          doc = JSON.parse(stdout);
        } catch {
          return reject(fail(`output is not JSON: ${excerpt(stdout)}`));
        }
        if (typeof doc !== 'object' || doc === null) return reject(fail('output is not a JSON object'));
        const o = doc as Record<string, unknown>;
        const username = typeof o['Username'] === 'string' ? o['Username'] : '';
        const secret = typeof o['Secret'] === 'string' ? o['Secret'] : '';
        if (username === TOKEN_USERNAME) return resolve(secret ? { kind: 'identity-token', token: secret } : { kind: 'none' });
        if (username === '' && secret === '') return resolve({ kind: 'none' });
        resolve({ kind: 'basic', username, secret });
      });
    });
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
