/**
 * Google Artifact Registry and gcr.io (`gcr.io`, `*.gcr.io`, `*-docker.pkg.dev`,
 * `docker.<region>.rep.pkg.dev`) credentials without a configured helper (protocol.md §3.6).
 *
 * Order, and why:
 * 1. `docker-credential-gcloud`, then `docker-credential-gcr`, when on PATH: what
 *    `gcloud auth configure-docker` / `docker-credential-gcr configure-docker` would have made
 *    docker use; docker-credential-gcr itself consults Application Default Credentials
 *    (GOOGLE_APPLICATION_CREDENTIALS included). They mint or refresh an access token per call.
 * 2. a service-account key file named by GOOGLE_APPLICATION_CREDENTIALS → Basic
 *    `_json_key:<the file's exact text>` (the registry accepts the key itself; nothing expires).
 *    Before gcloud because Google's own client libraries (Application Default Credentials) let
 *    an explicitly set GOOGLE_APPLICATION_CREDENTIALS win over the gcloud user login: a CI job
 *    that sets it means that identity. A file that is not a service-account key
 *    (`authorized_user`, `external_account`: they need an OAuth exchange ferry does not do) or
 *    cannot be read is skipped with a --debug line, never sent; if nothing else works the
 *    reason says so.
 * 3. `gcloud auth print-access-token` → Basic `oauth2accesstoken:<token>`.
 * Access tokens live about an hour and gcloud may hand out a cached one with less left: helper
 * and gcloud results are reused for 5 minutes only, then asked again.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Credential } from '../credential.js';
import { type CloudContext, type CloudResult, singleToken, viaCli, viaHelper } from './run.js';

const FIVE_MIN = 5 * 60_000;
const MAX_KEY_FILE = 64 * 1024;
const FIX = 'run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file)';

export function classifyGcloud(stderr: string): string | undefined {
  if (/do not currently have an active account selected/i.test(stderr)) return 'not logged in';
  if (/Reauthentication (failed|required)|refresh token has expired|invalid_grant/i.test(stderr)) return 'the gcloud login has expired';
  return undefined;
}

/** GOOGLE_APPLICATION_CREDENTIALS: a credential, or why it was skipped, or nothing (unset). */
function keyFileCredential(ctx: CloudContext): { credential: Credential } | { skipped: string } | undefined {
  const file = ctx.env['GOOGLE_APPLICATION_CREDENTIALS'];
  if (!file) return undefined;
  let text: string;
  try {
    if (statSync(file).size > MAX_KEY_FILE) return { skipped: `GOOGLE_APPLICATION_CREDENTIALS ${file} is larger than ${MAX_KEY_FILE} bytes, not a key file` };
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { skipped: `GOOGLE_APPLICATION_CREDENTIALS ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  let type: unknown;
  try {
    type = (JSON.parse(text) as { type?: unknown } | null)?.type;
  } catch {
    return { skipped: `GOOGLE_APPLICATION_CREDENTIALS ${file} is not JSON` };
  }
  if (type !== 'service_account') {
    return { skipped: `GOOGLE_APPLICATION_CREDENTIALS ${file} is ${typeof type === 'string' ? `an ${JSON.stringify(type)} file` : 'not a key file'}, not a service-account key; not sent` };
  }
  return { credential: { kind: 'basic', username: '_json_key', password: text, source: `GOOGLE_APPLICATION_CREDENTIALS (service-account key ${file})` } };
}

export async function gcpCredential(ctx: CloudContext): Promise<CloudResult> {
  for (const helper of ['gcloud', 'gcr']) {
    const r = await viaHelper(helper, ctx, FIX, FIVE_MIN, classifyGcloud);
    if (r) return r;
  }
  const key = keyFileCredential(ctx);
  if (key && 'credential' in key) {
    ctx.debug(`cloud credentials for ${ctx.registry}: using ${key.credential.source}`);
    return { kind: 'credential', credential: key.credential, ttlMs: Number.POSITIVE_INFINITY };
  }
  if (key) ctx.debug(`cloud credentials for ${ctx.registry}: ${key.skipped}`);
  const cli = await viaCli({
    cmd: 'gcloud', args: ['auth', 'print-access-token'], display: 'gcloud auth print-access-token', fix: FIX,
    classify: classifyGcloud, ttlMs: FIVE_MIN,
    parse: (stdout) => {
      const t = singleToken(stdout);
      if (typeof t !== 'string') return t;
      return { kind: 'basic', username: 'oauth2accesstoken', password: t, source: 'cloud CLI: gcloud auth print-access-token' };
    },
  }, ctx);
  if (cli) return cli.kind === 'failed' && key ? { kind: 'failed', reason: `${key.skipped}; ${cli.reason}` } : cli;
  // The user set GOOGLE_APPLICATION_CREDENTIALS and it could not be used: say so (one warning).
  if (key) return { kind: 'failed', reason: `${key.skipped}, and neither docker-credential-gcloud, docker-credential-gcr nor gcloud is on PATH` };
  return {
    kind: 'unavailable',
    reason: 'neither docker-credential-gcloud, docker-credential-gcr nor gcloud is on PATH, and GOOGLE_APPLICATION_CREDENTIALS is not set: install the Google Cloud CLI and run gcloud auth login, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file',
  };
}
