/**
 * The writing side of the docker credential-helper protocol: `docker-credential-<name> store`,
 * `erase` and `list` (reading, `get`, is cred-helper.ts). Follows
 * docker/docker-credential-helpers `client/client.go` (`Store`, `Erase`, `List`) and docker/cli
 * `cli/config/credentials/native_store.go` (`Store`, `Erase`, `GetAll`).
 *
 * Contracts:
 * - `store`: stdin = JSON `{"ServerURL","Username","Secret"}`; an identity token is stored with
 *   Username `<token>` (native_store `storeCredentialsInStore`).
 * - `erase`: stdin = the server key, raw. The helper's "credentials not found in native keychain"
 *   answer means there was nothing to erase: returns false, not an error.
 * - `list`: stdin = `unused` (as docker writes); stdout = JSON `{"<serverURL>": "<username>"}`.
 * - Binary not on PATH → E_BAD_CONFIG naming it (writing must not silently go nowhere). Any other
 *   failure (exit ≠ 0, bad JSON, output over 1 MiB, timeout) → E_BAD_CONFIG naming the helper and
 *   verb, with its output (stdout, else stderr) redacted, stripped of the secret it was given and
 *   cut to 300 characters. Secrets are only ever written to the helper's stdin.
 * - The helper runs through child-process.ts `runChild`, in its own process group; on timeout
 *   (default 30 s) or runaway output the whole group is SIGKILLed, so a helper's own children
 *   (a `pass` → gpg → pinentry chain) die with it, and ferry's pipe ends are closed at once. Not
 *   on Windows, where the child alone is killed.
 * - Every successful store/erase clears cred-helper.ts's `get` cache.
 */
import { FerryError } from '../errors.js';
import { redactText } from '../util/redact.js';
import { lookPath, runChild } from './child-process.js';
import {
  clearCredentialHelperCache, DEFAULT_HELPER_TIMEOUT_MS, HELPER_PREFIX, MAX_HELPER_OUTPUT, TOKEN_USERNAME,
} from './cred-helper.js';

const NOT_FOUND_MESSAGE = 'credentials not found in native keychain';

export interface HelperRunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** What to store: basic credentials, or an identity token (stored as Username `<token>`). */
export type HelperSecret = { username: string; secret: string } | { identityToken: string };

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function fail(helper: string, verb: string, what: string, secrets: string[], cause?: unknown): FerryError {
  const name = HELPER_PREFIX + helper;
  let text = what;
  for (const s of secrets) if (s) text = text.split(s).join('***');
  text = redactText(text.trim());
  if (text.length > 300) text = `${text.slice(0, 300)}…`;
  return new FerryError('E_BAD_CONFIG', `credential helper ${name} ${verb} failed: ${text}`, {
    hint: `check that ${name} works (${name} ${verb})`,
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** Runs `docker-credential-<helper> <verb>` with `input` on stdin (the secrets only there). */
export async function runHelperVerb(helper: string, verb: string, input: string, opts: HelperRunOptions, secrets: string[] = []): Promise<RunResult> {
  const name = HELPER_PREFIX + helper;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  if (!lookPath(name, opts.env)) {
    throw new FerryError('E_BAD_CONFIG', `credential helper ${name} not found on PATH`, {
      hint: 'install it, or remove the credsStore/credHelpers entry that names it from the docker config',
    });
  }
  const r = await runChild(name, [verb], { env: opts.env, input, timeoutMs, maxOutput: MAX_HELPER_OUTPUT });
  switch (r.kind) {
    case 'exited':
      return { code: r.code, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    case 'timeout':
      throw fail(helper, verb, `timed out after ${Math.round(timeoutMs / 100) / 10} s`, secrets);
    case 'too-large':
      throw fail(helper, verb, `output exceeds ${MAX_HELPER_OUTPUT} bytes`, secrets);
    case 'missing':
      throw fail(helper, verb, 'not found on PATH', secrets);
    default:
      throw fail(helper, verb, r.message, secrets, r.error);
  }
}

function statusText(r: RunResult): string {
  const status = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
  const text = r.stdout.trim() || r.stderr.trim();
  return text ? `${status}: ${text}` : status;
}

/** `store`: saves credentials for `serverURL` (docker's key: Hub `https://index.docker.io/v1/`). */
export async function storeInHelper(helper: string, serverURL: string, s: HelperSecret, opts: HelperRunOptions): Promise<void> {
  const body = 'identityToken' in s
    ? { ServerURL: serverURL, Username: TOKEN_USERNAME, Secret: s.identityToken }
    : { ServerURL: serverURL, Username: s.username, Secret: s.secret };
  const r = await runHelperVerb(helper, 'store', JSON.stringify(body), opts, [body.Secret]);
  if (r.code !== 0) throw fail(helper, 'store', statusText(r), [body.Secret]);
  clearCredentialHelperCache();
}

/** `erase`: true if the helper removed something, false if it had nothing for `serverURL`. */
export async function eraseFromHelper(helper: string, serverURL: string, opts: HelperRunOptions): Promise<boolean> {
  const r = await runHelperVerb(helper, 'erase', serverURL, opts);
  clearCredentialHelperCache();
  if (r.code === 0) return true;
  if (r.stdout.trim() === NOT_FOUND_MESSAGE) return false;
  throw fail(helper, 'erase', statusText(r), []);
}

/** `list`: server URL → user name of every credential the helper holds. */
export async function listHelper(helper: string, opts: HelperRunOptions): Promise<Record<string, string>> {
  const r = await runHelperVerb(helper, 'list', 'unused', opts);
  if (r.code !== 0) throw fail(helper, 'list', statusText(r), []);
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout.trim() === '' ? '{}' : r.stdout);
  } catch {
    throw fail(helper, 'list', 'output is not JSON', []);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail(helper, 'list', 'output is not a JSON object', []);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : '';
  return out;
}
