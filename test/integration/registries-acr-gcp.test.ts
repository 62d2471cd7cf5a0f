/**
 * Azure Container Registry, gcr.io and Artifact Registry (us-docker.pkg.dev), emulated
 * (test/helpers/emulated-registry.ts) and reached by their real names through --resolve: every
 * credential source end to end (registries-support.ts; each source holds a different kind of
 * credential), then each registry's quirk, checked in what the emulation saw.
 */
import { describe, expect, it } from 'vitest';
import {
  ACR_ADMIN, ACR_EXPIRED_REFRESH_TOKEN, ACR_NULL_GUID, ACR_REFRESH_TOKEN, GCP_SERVICE_ACCOUNT_KEY_JSON,
} from '../helpers/emulated-registry.js';
import { expectFailure } from './support.js';
import { frontGet, HAS_BINARIES, matrixCells, useEmulations, type CredentialSource } from './registries-support.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A docker config holding one `auths` entry for the registry. */
const authsEntry = (entry: Record<string, string>): CredentialSource => ({
  name: 'custom', setup: (em, dir) => ({ env: { DOCKER_CONFIG: dir }, files: { [`${dir}/config.json`]: JSON.stringify({ auths: { [em.registry]: entry } }) } }),
});

describe.skipIf(!HAS_BINARIES)('emulated ACR, gcr.io, Artifact Registry', () => {
  const s = useEmulations(['acr', 'gcr', 'artifact-registry']);

  matrixCells(s, 'acr');
  matrixCells(s, 'gcr');
  matrixCells(s, 'artifact-registry');

  it('acr: the refresh token is POSTed to /oauth2/token (grant_type=refresh_token), the null GUID and admin go by Basic GET; never as a password to /v2/', async () => {
    const em = s.ems.get('acr')!;
    const reqs = em.tokens!.requests;
    expect(reqs.every((t) => t.path === '/oauth2/token')).toBe(true);
    // auths identitytoken and the helper's <token> user:
    expect(reqs.some((t) => t.method === 'POST' && t.grantType === 'refresh_token' && t.status === 200 && t.user === 'aad-user@example.com')).toBe(true);
    // podman's null GUID + refresh token, credsStore's admin:
    expect(reqs.some((t) => t.method === 'GET' && t.attemptedUser === ACR_NULL_GUID && t.status === 200)).toBe(true);
    expect(reqs.some((t) => t.method === 'GET' && t.attemptedUser === ACR_ADMIN.username && t.status === 200)).toBe(true);
    expect(em.frontLog.filter((f) => f.path.startsWith('/v2/')).some((f) => f.auth?.startsWith('basic:'))).toBe(false);
  });

  it('acr: an expired refresh token is refused with 401 and ferry says the identity token was rejected (exit 3), not "permission denied"', async () => {
    const em = s.ems.get('acr')!;
    const from = em.tokens!.requests.length;
    const env = s.sourceEnv(em, authsEntry({ auth: b64(`${ACR_NULL_GUID}:`), identitytoken: ACR_EXPIRED_REFRESH_TOKEN }));
    const r = await s.ferry(em, ['inspect', `${em.registry}/team/auths:v1`], env);
    expectFailure(r, 3, 'identity token', 'myreg.azurecr.io');
    expect(r.stderr).not.toContain(ACR_EXPIRED_REFRESH_TOKEN);
    expect(r.stderr).not.toContain(ACR_REFRESH_TOKEN);
    expect(em.tokens!.requests.slice(from).map((t) => [t.method, t.grantType, t.status])).toContainEqual(['POST', 'refresh_token', 401]);
  });

  for (const profile of ['gcr', 'artifact-registry'] as const) {
    it(`${profile}: the /v2/ challenge has no service (repository ones do); oauth2accesstoken, _dcgcloud_token and _json_key users all reach the realm; a different key JSON is refused (exit 3)`, async () => {
      const em = s.ems.get(profile)!;
      const host = em.host;
      const ping = await frontGet(em, host, '/v2/');
      expect(String(ping.headers['www-authenticate'])).toBe(`Bearer realm="https://${host}/v2/token"`);
      const repo = await frontGet(em, host, `/v2/${em.namespace}/auths/tags/list`);
      expect(String(repo.headers['www-authenticate'])).toContain(`service="${host}"`);
      const reqs = em.tokens!.requests;
      expect(reqs.every((t) => t.path === '/v2/token')).toBe(true);
      for (const user of ['oauth2accesstoken', '_dcgcloud_token', '_json_key']) {
        expect(reqs.some((t) => t.user === user && t.status === 200 && t.granted.some((g) => g.actions.includes('push'))), user).toBe(true);
      }
      const otherKey = GCP_SERVICE_ACCOUNT_KEY_JSON.replace('0123456789abcdef', 'fedcba9876543210');
      const env = s.sourceEnv(em, authsEntry({ auth: b64(`_json_key:${otherKey}`) }));
      const r = await s.ferry(em, ['inspect', `${host}/${em.namespace}/auths:v1`], env);
      expectFailure(r, 3);
      expect(r.stderr).not.toContain('PRIVATE KEY');
    });
  }
});
