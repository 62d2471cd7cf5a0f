/**
 * The cloud step of resolveCredential (auth/keychain.ts): for a host the registry profiles table
 * (ref/registry-profiles.ts `cloud`) says belongs to AWS, Google or Azure, and for which no
 * earlier source had credentials, ask the cloud's own tools — a docker credential helper on PATH
 * that nobody configured, else the cloud CLI (aws.ts, gcp.ts, azure.ts say which and in what
 * order). No peer does this without a configured helper; ferry does.
 *
 * Contracts:
 * - Host matching is the profiles table's alone (no host patterns here).
 * - Every program runs through auth/child-process.ts `runChild` under `timeoutMs` (default
 *   60 s); a timeout SIGKILLs its whole process group.
 * - At most one run per process per (registry, environment): concurrent callers share one
 *   promise; a credential is reused until shortly before it expires (ECR 12 h, ACR 3 h, Google
 *   access tokens 5 min, a service-account key for ever), then asked again; a failure is kept
 *   for 60 s. `clearCloudCredentialCache()` forgets everything (tests, a long-lived process
 *   after a login).
 * - A failure (non-zero exit, timeout, empty or malformed output, a helper without credentials)
 *   is ONE `warn` line per process and reason, naming what ran and what to run or install; the
 *   result is `{ kind: 'none', reason }` and the caller falls through to anonymous with the
 *   reason in the anonymous `source`, which the 401 hint quotes. Nothing on PATH: no warning,
 *   the reason says what to install.
 * - `source` of a credential names what supplied it, never the secret; no message, warning or
 *   --debug line carries a secret (CLI output is redacted, first line, ≤ 200 characters).
 */
import { createHash } from 'node:crypto';
import { profileFor } from '../../ref/registry-profiles.js';
import type { Credential } from '../credential.js';
import { awsCredential } from './aws.js';
import { azureCredential } from './azure.js';
import { gcpCredential } from './gcp.js';
import { type CloudContext, type CloudResult, DEFAULT_CLOUD_TIMEOUT_MS } from './run.js';

export { DEFAULT_CLOUD_TIMEOUT_MS } from './run.js';

export interface CloudOptions {
  env: NodeJS.ProcessEnv;
  warn: (msg: string) => void;
  debug?: (msg: string) => void;
  /** Per program run; default 60 s. */
  timeoutMs?: number;
}

export type CloudOutcome =
  | { kind: 'credential'; credential: Credential }
  /** No cloud credential: why, for the anonymous source (and so the 401 hint). */
  | { kind: 'none'; reason: string };

const FAILURE_TTL_MS = 60_000;

interface Entry {
  promise: Promise<CloudResult>;
  /** Date.now() after which the entry is stale; set when the promise settles. */
  expiresAt: number;
}

const cache = new Map<string, Entry>();
const warned = new Set<string>();

/** Forgets cached cloud credentials and which failures were already warned about. */
export function clearCloudCredentialCache(): void {
  cache.clear();
  warned.clear();
}

function envFingerprint(env: NodeJS.ProcessEnv): string {
  const h = createHash('sha256');
  for (const k of Object.keys(env).sort()) h.update(`${k}\0${env[k] ?? ''}\0`);
  return h.digest('hex');
}

/** The host as the profiles table and the CLIs see it: lower case, without a port. */
function hostOf(registry: string): string {
  const h = registry.toLowerCase();
  if (h.startsWith('[')) return h;
  return h.replace(/:\d+$/, '');
}

/** Which cloud a registry host belongs to, if any (the profiles table's `cloud`). */
export function cloudOf(registry: string): 'aws' | 'aws-public' | 'gcp' | 'azure' | undefined {
  return profileFor(registry)?.cloud;
}

/** Cloud credentials for `registry`, or why there are none; undefined when it is no cloud host. */
export async function cloudCredential(registry: string, opts: CloudOptions): Promise<CloudOutcome | undefined> {
  const cloud = cloudOf(registry);
  if (!cloud) return undefined;
  const host = hostOf(registry);
  const debug = opts.debug ?? (() => {});
  const key = JSON.stringify([host, envFingerprint(opts.env)]);
  let entry = cache.get(key);
  if (entry && Date.now() >= entry.expiresAt) {
    debug(`cloud credentials for ${host}: the cached answer has expired; asking again`);
    cache.delete(key);
    entry = undefined;
  }
  if (!entry) {
    const ctx: CloudContext = { registry: host, env: opts.env, timeoutMs: opts.timeoutMs ?? DEFAULT_CLOUD_TIMEOUT_MS, debug };
    const run = cloud === 'gcp' ? gcpCredential(ctx) : cloud === 'azure' ? azureCredential(ctx) : awsCredential(ctx, cloud === 'aws-public');
    const e: Entry = { promise: run, expiresAt: Number.POSITIVE_INFINITY };
    run.then(
      (r) => { e.expiresAt = Date.now() + (r.kind === 'credential' ? r.ttlMs : FAILURE_TTL_MS); },
      () => { cache.delete(key); },
    );
    cache.set(key, e);
    entry = e;
  } else {
    debug(`cloud credentials for ${host}: reusing this process's earlier answer`);
  }
  let r: CloudResult;
  try {
    r = await entry.promise;
  } catch (e) {
    r = { kind: 'failed', reason: `cloud credentials failed: ${(e as Error).message}` };
  }
  if (r.kind === 'credential') return { kind: 'credential', credential: r.credential };
  if (r.kind === 'failed') {
    const w = JSON.stringify([host, r.reason]);
    if (!warned.has(w)) {
      warned.add(w);
      opts.warn(`cloud credentials for ${host}: ${r.reason}; continuing without credentials`);
    }
  }
  return { kind: 'none', reason: r.reason };
}
