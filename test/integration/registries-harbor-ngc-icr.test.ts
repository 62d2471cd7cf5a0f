/**
 * Harbor, NVIDIA NGC (nvcr.io) and IBM Cloud Registry (us.icr.io), emulated
 * (test/helpers/emulated-registry.ts) and reached by their real names through --resolve: every
 * credential source end to end (registries-support.ts), then each registry's quirk, checked in
 * what the emulation saw.
 */
import { describe, expect, it } from 'vitest';
import { HARBOR_ROBOT, HARBOR_ROBOT_SECRET, IBM_API_KEY, IBM_USER, NGC_USER } from '../helpers/emulated-registry.js';
import { expectFailure } from './support.js';
import { CREDENTIAL_SOURCES, frontGet, HAS_BINARIES, matrixCells, useEmulations, type CredentialSource } from './registries-support.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

const authsEntry = (entry: Record<string, string>): CredentialSource => ({
  name: 'custom', setup: (em, dir) => ({ env: { DOCKER_CONFIG: dir }, files: { [`${dir}/config.json`]: JSON.stringify({ auths: { [em.registry]: entry } }) } }),
});

describe.skipIf(!HAS_BINARIES)('emulated Harbor, NGC, IBM Cloud Registry', () => {
  const s = useEmulations(['harbor', 'ngc', 'icr']);

  matrixCells(s, 'harbor');
  matrixCells(s, 'ngc');
  matrixCells(s, 'icr');

  it('harbor: an entry with robot$ user, password and identity token: the realm takes no OAuth2 POST (405), so ferry, knowing Harbor by its challenge, asks with GET and the robot\'s Basic at once, and pulls', async () => {
    const em = s.ems.get('harbor')!;
    const from = em.tokens!.requests.length;
    const env = s.sourceEnv(em, authsEntry({ auth: b64(`${HARBOR_ROBOT}:${HARBOR_ROBOT_SECRET}`), identitytoken: 'harbor-has-no-oauth2-refresh-tokens' }));
    const r = await s.ferry(em, ['inspect', `${em.registry}/proj/auths:v1`], env);
    expect(r.code, r.stderr).toBe(0);
    const seen = em.tokens!.requests.slice(from).map((t) => [t.method, t.status, t.attemptedUser]);
    expect(seen[0]).toEqual(['GET', 200, HARBOR_ROBOT]);
    expect(seen.some(([m]) => m === 'POST')).toBe(false);
    // the emulated realm still refuses the POST, as Harbor does
    expect((await frontGet(em, 'harbor.example.com', '/service/token?service=harbor-registry', {}, 'POST')).status).toBe(405);
    expect(em.tokens!.requests.every((t) => t.path === '/service/token' && (t.query['service'] ?? ['harbor-registry']).join() === 'harbor-registry')).toBe(true);
  });

  it('harbor: the project is the first path component; pushing to a project that does not exist is denied (exit 3)', async () => {
    const em = s.ems.get('harbor')!;
    const env = s.sourceEnv(em, CREDENTIAL_SOURCES[0]!);
    const r = await s.ferry(em, ['push', '-q', `oci:${s.imageDir}:v1`, `${em.registry}/noproject/app:v1`], env);
    expectFailure(r, 3);
    expect(r.stderr).not.toContain(HARBOR_ROBOT_SECRET);
  });

  it('ngc: no challenge names a service, so no token request carries one; $oauthtoken reaches the realm; the public org is pulled anonymously', async () => {
    const em = s.ems.get('ngc')!;
    expect(String((await frontGet(em, 'nvcr.io', '/v2/')).headers['www-authenticate'])).toBe('Bearer realm="https://nvcr.io/proxy_auth"');
    const reqs = em.tokens!.requests;
    expect(reqs.length).toBeGreaterThan(0);
    expect(reqs.every((t) => t.path === '/proxy_auth' && t.query['service'] === undefined)).toBe(true);
    expect(reqs.some((t) => t.user === NGC_USER && t.status === 200)).toBe(true);
    expect(reqs.some((t) => !t.hasAuth && t.status === 200 && t.granted.some((g) => g.name === em.publicRepo))).toBe(true);
  });

  it('icr: the challenge is unquoted with ", " separators; iamapikey reaches /oauth/token; a wrong API key is a 400 there and exit 3 from ferry', async () => {
    const em = s.ems.get('icr')!;
    const ch = em.frontLog.find((f) => f.challenge?.includes('scope='))?.challenge;
    expect(ch).toMatch(/^Bearer realm=https:\/\/us\.icr\.io\/oauth\/token, service=registry, scope=/);
    expect(em.tokens!.requests.some((t) => t.path === '/oauth/token' && t.user === IBM_USER && t.status === 200)).toBe(true);
    const from = em.tokens!.requests.length;
    const env = s.sourceEnv(em, authsEntry({ auth: b64(`${IBM_USER}:${IBM_API_KEY}-wrong`) }));
    const r = await s.ferry(em, ['inspect', `${em.registry}/mynamespace/auths:v1`], env);
    expectFailure(r, 3);
    expect(r.stderr).not.toContain(IBM_API_KEY);
    expect(em.tokens!.requests.slice(from).map((t) => t.status)).toContain(400);
  });
});
