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
 * - The helper runs through child-process.ts `runChild`: detached, as the leader of its own
 *   process group. Timeout (default 30 s) sends SIGKILL to the whole group (a shell-script
 *   helper's children too) and stops reading at once, even if a grandchild still holds the pipes;
 *   a helper that exited but left such a process behind is judged on what it wrote within 250 ms.
 *   Helpers still running when ferry exits are killed the same way.
 * - Secrets: a successful answer's text is never quoted in errors; a failing helper's message is
 *   quoted redacted (JSON secret fields, Bearer/Basic values) and truncated.
 * - Results (found / not found / missing) are cached for the life of the process per (helper, key,
 *   PATH); failures are not cached. Concurrent identical lookups share one child process.
 */
import { FerryError } from '../errors.js';
import { redactText } from '../util/redact.js';
import { lookPath, MAX_CHILD_OUTPUT, runChild } from './child-process.js';

export { lookPath } from './child-process.js';

export const HELPER_PREFIX = 'docker-credential-';
export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;
export const MAX_HELPER_OUTPUT = MAX_CHILD_OUTPUT;
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

/** Runs `docker-credential-<helper> get` for `serverKey` now, uncached (getFromHelper caches;
 * the cloud step keeps its own expiring cache). */
export async function runHelperGet(helper: string, serverKey: string, opts: HelperOptions): Promise<HelperResult> {
  const name = HELPER_PREFIX + helper;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const fail = (what: string, cause?: unknown): FerryError =>
    new FerryError('E_BAD_CONFIG', `credential helper ${name} failed for ${serverKey}: ${what}`, {
      hint: `check that ${name} works: echo ${serverKey} | ${name} get`,
      cause,
    });
  const r = await runChild(name, ['get'], { env: opts.env, input: serverKey, timeoutMs, maxOutput: MAX_HELPER_OUTPUT });
  switch (r.kind) {
    case 'missing':
      return { kind: 'missing' };
    case 'timeout':
      throw fail(`timed out after ${Math.round(timeoutMs / 100) / 10} s (killed)`);
    case 'too-large':
      throw fail(`output exceeds ${MAX_HELPER_OUTPUT} bytes`);
    case 'error':
      throw fail(r.message, r.error);
    default:
      break;
  }
  const { code, signal, stdout } = r;
  if (code !== 0) {
    if (stdout.trim() === NOT_FOUND_MESSAGE) return { kind: 'none' };
    const text = stdout.trim() || r.stderr.trim();
    const status = signal ? `killed by ${signal}` : `exit status ${code}`;
    throw fail(text ? `${status}: ${excerpt(text)}` : status);
  }
  // A successful answer carries the secret: its text is never quoted in an error.
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw fail(`output is not JSON (${Buffer.byteLength(stdout)} bytes, not shown: it may hold the secret)`);
  }
  if (typeof doc !== 'object' || doc === null) throw fail('output is not a JSON object');
  const o = doc as Record<string, unknown>;
  const username = typeof o['Username'] === 'string' ? o['Username'] : '';
  const secret = typeof o['Secret'] === 'string' ? o['Secret'] : '';
  if (username === TOKEN_USERNAME) return secret ? { kind: 'identity-token', token: secret } : { kind: 'none' };
  if (username === '' && secret === '') return { kind: 'none' };
  return { kind: 'basic', username, secret };
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
