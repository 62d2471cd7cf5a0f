/**
 * Azure Container Registry (`<name>.azurecr.io`, `.cn`, `.us`) credentials without a configured
 * helper (protocol.md §3.5).
 *
 * Order:
 * 1. `docker-credential-acr-env` on PATH: its `get` verb; it answers Username `<token>` and an
 *    ACR refresh token (from AZURE_CLIENT_ID/SECRET/TENANT_ID, a federated token or MSI).
 * 2. else `az acr login --name <name> --expose-token --output json` → stdout
 *    `{"accessToken": "<ACR refresh token>", "loginServer": "<name>.azurecr.io"}` (az also prints
 *    a WARNING on stderr, ignored when it succeeds).
 * Either way the result is an identity token: auth/token.ts exchanges it at the registry's
 * `/oauth2/token` with the OAuth2 refresh-token POST, as docker does for a `<token>` helper
 * answer. It also carries user `00000000-0000-0000-0000-000000000000` with the token as the
 * password — the null GUID is how ACR recognises a refresh token sent as Basic — so token.ts's
 * GET fallback (a server refusing the POST) still authenticates. ACR refresh tokens are valid
 * about 3 h: reused for 2 h 45 min.
 */
import { acrName } from '../../ref/registry-profiles.js';
import type { Credential } from '../credential.js';
import { type CloudContext, type CloudResult, viaCli, viaHelper } from './run.js';

const NULL_GUID = '00000000-0000-0000-0000-000000000000';
const TTL = 2.75 * 3600_000;
const FIX = 'run az login';

export function classifyAz(stderr: string): string | undefined {
  if (/Please run 'az login'|az login/i.test(stderr)) return 'not logged in';
  return undefined;
}

/** An identity token usable both ways (module comment). */
function withNullGuid(c: Credential): Credential {
  if (c.kind !== 'identity-token') return c;
  return { ...c, username: NULL_GUID, password: c.token };
}

export async function azureCredential(ctx: CloudContext): Promise<CloudResult> {
  const helper = await viaHelper('acr-env', ctx, 'check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID (or run az login)', TTL, classifyAz, withNullGuid);
  if (helper) return helper;
  const name = acrName(ctx.registry);
  if (!name) return { kind: 'unavailable', reason: `no registry name in the host name ${ctx.registry}` };
  const display = `az acr login --name ${name} --expose-token`;
  const cli = await viaCli({
    cmd: 'az', args: ['acr', 'login', '--name', name, '--expose-token', '--output', 'json'], display, fix: FIX,
    classify: classifyAz, ttlMs: TTL,
    parse: (stdout) => {
      let doc: unknown;
      try {
        doc = JSON.parse(stdout);
      } catch {
        return { malformed: `its output is not JSON (${Buffer.byteLength(stdout)} bytes, not shown)` };
      }
      const token = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['accessToken'] : undefined;
      if (typeof token !== 'string' || token.trim() === '') return { malformed: 'its output has no accessToken' };
      return { kind: 'identity-token', token: token.trim(), username: NULL_GUID, password: token.trim(), source: `cloud CLI: ${display}` };
    },
  }, ctx);
  if (cli) return cli;
  return {
    kind: 'unavailable',
    reason: 'neither docker-credential-acr-env nor the az CLI is on PATH: install the Azure CLI and run az login, or install docker-credential-acr-env',
  };
}
