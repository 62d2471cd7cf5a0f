/**
 * Amazon ECR (private, `<acct>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]`) and ECR Public
 * (`public.ecr.aws`) credentials without a configured helper (protocol.md §3.4).
 *
 * Order:
 * 1. `docker-credential-ecr-login` on PATH: its `get` verb with the host as the server URL (the
 *    helper protocol, as docker runs it for a credHelpers entry). It caches on disk and refreshes
 *    at half the 12 h validity, so what it hands out has ≥ 6 h left: reused for 6 h. It reports
 *    every failure as "credentials not found", so that is a failure here, not "none".
 * 2. else `aws ecr get-login-password --region <region from the host>` (ECR Public:
 *    `aws ecr-public get-login-password --region us-east-1`, the only region its API is in) →
 *    Basic `AWS:<stdout trimmed>`. The token is valid 12 h: reused for 11 h 45 min.
 * 3. neither on PATH: unavailable (no warning; the 401 hint says what to install).
 */
import { ecrRegion } from '../../ref/registry-profiles.js';
import type { Credential } from '../credential.js';
import { type CloudContext, type CloudResult, singleToken, viaCli, viaHelper } from './run.js';

const HOUR = 3600_000;
const FIX = 'run aws configure (or aws sso login)';

/** Known `aws` failures, as a phrase. */
export function classifyAws(stderr: string): string | undefined {
  if (/Unable to locate credentials/i.test(stderr)) return 'no AWS credentials are configured';
  if (/(SSO session|token).*(has expired|is expired)|expired.*(token|SSO)/i.test(stderr)) return 'the AWS login has expired';
  if (/could not be found|profile .* not found/i.test(stderr)) return 'the AWS profile is not configured';
  return undefined;
}

export async function awsCredential(ctx: CloudContext, isPublic: boolean): Promise<CloudResult> {
  const helper = await viaHelper('ecr-login', ctx, FIX, 6 * HOUR, classifyAws);
  if (helper) return helper;
  const region = isPublic ? 'us-east-1' : ecrRegion(ctx.registry);
  if (!region) return { kind: 'unavailable', reason: `no AWS region in the host name ${ctx.registry}` };
  const sub = isPublic ? 'ecr-public' : 'ecr';
  const display = `aws ${sub} get-login-password --region ${region}`;
  const cli = await viaCli({
    cmd: 'aws', args: [sub, 'get-login-password', '--region', region], display, fix: FIX, classify: classifyAws,
    ttlMs: 11.75 * HOUR,
    parse: (stdout): Credential | { malformed: string } => {
      const t = singleToken(stdout);
      if (typeof t !== 'string') return t;
      return { kind: 'basic', username: 'AWS', password: t, source: `cloud CLI: aws ${sub} get-login-password (region ${region})` };
    },
  }, ctx);
  if (cli) return cli;
  return {
    kind: 'unavailable',
    reason: 'neither docker-credential-ecr-login nor the aws CLI is on PATH: install the AWS CLI and run aws configure, or install docker-credential-ecr-login',
  };
}
