/**
 * What every cloud provider shares: running a docker credential helper or a cloud CLI through
 * auth/child-process.ts `runChild` (own process group, whole group killed on timeout), timing it
 * for --debug, and turning a failure into one short, redacted reason.
 *
 * Contracts:
 * - `viaHelper` / `viaCli` give `undefined` when the program is not on PATH (the provider then
 *   tries its next source); otherwise a `CloudResult`.
 * - A failure's reason quotes at most the first non-empty line of the CLI's stderr (stdout for a
 *   helper, which writes its errors there), redacted (util/redact.ts plus anything long and
 *   token-shaped) and cut to 200 characters; a known message (not logged in, no credentials
 *   configured) is replaced by a plain phrase. A successful answer's text is never quoted.
 * - --debug names what ran, for which host, how long it took and how it ended; never output.
 * - Windows: `az` and `gcloud` are `.cmd` wrappers there, which Node refuses to spawn without a
 *   shell (since the CVE-2024-27980 fix); they then fail with a warning and ferry goes on
 *   anonymously. Not tested on Windows.
 */
import type { Credential } from '../credential.js';
import { runHelperGet, HELPER_PREFIX } from '../cred-helper.js';
import { lookPath, runChild } from '../child-process.js';
import { isFerryError } from '../../errors.js';
import { redactText } from '../../util/redact.js';

export const DEFAULT_CLOUD_TIMEOUT_MS = 60_000;

export interface CloudContext {
  registry: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  debug: (msg: string) => void;
}

export type CloudResult =
  /** `ttlMs`: how long the credential may be reused in this process. */
  | { kind: 'credential'; credential: Credential; ttlMs: number }
  /** Something ran (or was configured) and failed: warned once, then anonymous. */
  | { kind: 'failed'; reason: string }
  /** Nothing to run: no warning; the reason (what to install) goes into the anonymous source. */
  | { kind: 'unavailable'; reason: string };

/** First non-empty line, redacted, ≤ 200 characters. Long unbroken token-like runs (32+ letters
 * and digits: a JWT's parts, base64 a CLI might echo) are redacted too; host names and paths
 * (dots, slashes) are not. */
export function excerptLine(text: string, secrets: readonly string[] = []): string {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '';
  let t = redactText(line, secrets).replace(/[A-Za-z0-9+_=-]{32,}/g, (m) => (/\d/.test(m) && /[A-Za-z]/.test(m) ? '***' : m));
  t = t.replace(/("(?:secret|password|token|accessToken|access_token|refresh_token)"\s*:\s*")(?:[^"\\]|\\.)*$/i, '$1***');
  return t.length > 200 ? `${t.slice(0, 200)}…` : t;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A known failure message → a plain phrase (provider-specific table). */
export type Classifier = (stderr: string) => string | undefined;

/**
 * Runs `docker-credential-<helper> get` with the registry host as the server URL (what docker
 * passes for a credHelpers entry). undefined when the helper is not on PATH.
 */
export async function viaHelper(
  helper: string, ctx: CloudContext, fix: string, ttlMs: number, classify: Classifier, extra?: (c: Credential) => Credential,
): Promise<CloudResult | undefined> {
  const name = HELPER_PREFIX + helper;
  if (!lookPath(name, ctx.env)) return undefined;
  const source = `credential helper ${name} (cloud)`;
  const t0 = performance.now();
  const done = (how: string): void => ctx.debug(`cloud credentials for ${ctx.registry}: ran ${name} get (${seconds(performance.now() - t0)}, ${how})`);
  try {
    const r = await runHelperGet(helper, ctx.registry, { env: ctx.env, timeoutMs: ctx.timeoutMs });
    switch (r.kind) {
      case 'basic': {
        done('ok');
        const c: Credential = { kind: 'basic', username: r.username, password: r.secret, source };
        return { kind: 'credential', credential: extra ? extra(c) : c, ttlMs };
      }
      case 'identity-token': {
        done('ok');
        const c: Credential = { kind: 'identity-token', token: r.token, source };
        return { kind: 'credential', credential: extra ? extra(c) : c, ttlMs };
      }
      case 'none':
        done('no credentials');
        return { kind: 'failed', reason: `${name} found no credentials for ${ctx.registry}; ${fix}` };
      default:
        done('not on PATH');
        return undefined;
    }
  } catch (e) {
    done('failed');
    const msg = isFerryError(e) ? e.message : String(e);
    const known = classify(msg);
    return { kind: 'failed', reason: `${known ? `${name} failed: ${known}` : excerptLine(msg)}; ${fix}` };
  }
}

export interface CliSpec {
  cmd: string;
  args: string[];
  /** How the command is named in messages and sources (without secrets; may omit flags). */
  display: string;
  /** What to run or install when it fails. */
  fix: string;
  classify: Classifier;
  /** stdout of a successful run → the credential, or a reason it is unusable (never quoting it). */
  parse: (stdout: string) => Credential | { malformed: string };
  ttlMs: number;
}

/** Runs a cloud CLI; undefined when it is not on PATH. */
export async function viaCli(spec: CliSpec, ctx: CloudContext): Promise<CloudResult | undefined> {
  if (!lookPath(spec.cmd, ctx.env)) return undefined;
  const t0 = performance.now();
  const r = await runChild(spec.cmd, spec.args, { env: ctx.env, timeoutMs: ctx.timeoutMs });
  const took = seconds(performance.now() - t0);
  const failed = (why: string): CloudResult => {
    ctx.debug(`cloud credentials for ${ctx.registry}: ran ${spec.display} (${took}, failed: ${why})`);
    return { kind: 'failed', reason: `${spec.display} failed: ${why}; ${spec.fix}` };
  };
  switch (r.kind) {
    case 'missing':
      return undefined;
    case 'timeout':
      return failed(`timed out after ${Math.round(ctx.timeoutMs / 100) / 10} s (killed)`);
    case 'too-large':
      return failed('its output is too large');
    case 'error':
      return failed(excerptLine(r.message));
    default:
      break;
  }
  if (r.code !== 0) {
    const status = r.signal ? `killed by ${r.signal}` : `exit status ${r.code}`;
    const known = spec.classify(r.stderr);
    const line = excerptLine(r.stderr) || excerptLine(r.stdout);
    return failed(known ?? (line ? `${status}: ${line}` : status));
  }
  const c = spec.parse(r.stdout);
  if ('malformed' in c) return failed(c.malformed);
  ctx.debug(`cloud credentials for ${ctx.registry}: ran ${spec.display} (${took}, ok)`);
  return { kind: 'credential', credential: c, ttlMs: spec.ttlMs };
}

/** A CLI's stdout that must be one token: trimmed, non-empty, no inner whitespace. */
export function singleToken(stdout: string): string | { malformed: string } {
  const t = stdout.trim();
  if (t === '') return { malformed: 'it printed no token' };
  if (/\s/.test(t)) return { malformed: `its output is not a single token (${Buffer.byteLength(stdout)} bytes, not shown)` };
  return t;
}
