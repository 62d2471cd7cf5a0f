/**
 * Docker Hub, GHCR, Quay and ECR, emulated (test/helpers/emulated-registry.ts) and reached by
 * their real names through --resolve: every credential source end to end (registries-support.ts),
 * then each registry's quirk, checked in what the emulation saw.
 */
import { describe, expect, it } from 'vitest';
import { ECR_PASSWORD, GHCR_USER, QUAY_ROBOT } from '../helpers/emulated-registry.js';
import { expectFailure, ferryJson } from './support.js';
import { CREDENTIAL_SOURCES, frontGet, HAS_BINARIES, matrixCells, useEmulations } from './registries-support.js';

describe.skipIf(!HAS_BINARIES)('emulated Docker Hub, GHCR, Quay, ECR', () => {
  const s = useEmulations(['dockerhub', 'ghcr', 'quay', 'ecr']);
  const auths = CREDENTIAL_SOURCES[0]!;

  matrixCells(s, 'dockerhub');
  matrixCells(s, 'ghcr');
  matrixCells(s, 'quay');
  matrixCells(s, 'ecr');

  it('dockerhub: the realm is on auth.docker.io; anonymous pulls get an anonymous token; only manifest GETs spend the budget, and the headers say so', async () => {
    const em = s.ems.get('dockerhub')!;
    const rl = em.rateLimit!;
    rl.reset(50);
    const from = em.tokens!.requests.length;
    const repo = `docker.io/${em.publicRepo!}`;
    const tags = await s.ferry(em, ['tags', repo]);
    expect(tags.code, tags.stderr).toBe(0);
    expect(rl.gets).toBe(0); // tag listing touches no manifest
    const r = await s.ferry(em, ['--debug', 'pull', '-q', `${repo}:v1`, `oci:${s.dir('hub-pull')}:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`connect registry-1.docker.io:443 → 127.0.0.1:${em.port} (--resolve)`);
    expect(r.stderr).toContain(`connect auth.docker.io:443 → 127.0.0.1:${em.port} (--resolve)`);
    expect(rl.gets).toBeGreaterThan(0);
    expect(rl.remaining).toBe(50 - rl.gets);
    expect(r.stderr).toMatch(new RegExp(`"ratelimit-remaining":"${rl.remaining};w=21600"`));
    const tokenReqs = em.tokens!.requests.slice(from);
    expect(tokenReqs.length).toBeGreaterThan(0);
    for (const t of tokenReqs) {
      expect(t).toMatchObject({ method: 'GET', path: '/token', hasAuth: false, status: 200 });
      expect(t.query['service']).toEqual(['registry.docker.io']);
    }
    expect(tokenReqs.some((t) => t.granted.some((g) => g.name === em.publicRepo && g.actions.includes('pull')))).toBe(true);
    // The token endpoint lives on auth.docker.io only; the API host has none.
    expect(em.frontLog.filter((f) => f.path === '/token').every((f) => f.host === 'auth.docker.io')).toBe(true);
    // A HEAD is free and carries the headers too; at 0 a GET is a 429 TOOMANYREQUESTS.
    rl.reset(1);
    const path = `/v2/${em.publicRepo!}/manifests/v1`;
    const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
    const head = await frontGet(em, 'registry-1.docker.io', path, accept, 'HEAD');
    expect([head.status, head.headers['ratelimit-limit'], head.headers['ratelimit-remaining'], head.headers['docker-ratelimit-source']]).toEqual([401, '1;w=21600', '1;w=21600', '127.0.0.1']);
    const insp = await ferryJson<{ digest: string }>([...em.resolveArgs, 'inspect', `${repo}:v1`], { env: em.env });
    expect(insp.digest).toBe(s.image.digest);
    expect(rl.remaining).toBe(0);
    const over = await frontGet(em, 'registry-1.docker.io', path, accept);
    expect(over.status).toBe(429);
    expect(JSON.parse(over.body)).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS', message: expect.stringContaining('You have reached your pull rate limit') }] });
    expect(over.headers['ratelimit-remaining']).toBe('0;w=21600');
  });

  it('ghcr: token responses carry no expires_in, the /v2/ challenge a placeholder scope; ferry uses the PAT as Basic at the realm', async () => {
    const em = s.ems.get('ghcr')!;
    const ping = await frontGet(em, 'ghcr.io', '/v2/');
    expect(ping.status).toBe(401);
    expect(String(ping.headers['www-authenticate'])).toBe('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"');
    const tok = await frontGet(em, 'ghcr.io', `/token?service=ghcr.io&scope=repository:${GHCR_USER}/auths:pull`, { authorization: `Basic ${Buffer.from(`${em.login.username}:${em.login.password}`).toString('base64')}` });
    expect(tok.status).toBe(200);
    const doc = JSON.parse(tok.body) as Record<string, unknown>;
    expect(typeof doc['token']).toBe('string');
    expect(doc).not.toHaveProperty('expires_in');
    // ferry ran every cell on such tokens, as the user, and never asked for the placeholder.
    const reqs = em.tokens!.requests.filter((t) => t.user === GHCR_USER && t.status === 200);
    expect(reqs.length).toBeGreaterThan(4);
    expect(reqs.every((t) => t.hasAuth && t.method === 'GET')).toBe(true);
    expect(em.tokens!.requests.flatMap((t) => t.scopes)).not.toContain('repository:user/image:pull');
  });

  it('quay: realm /v2/auth on quay.io; the robot org+name authenticates; anonymous reads of a public repo get a pull token', async () => {
    const em = s.ems.get('quay')!;
    const reqs = em.tokens!.requests;
    expect(reqs.every((t) => t.path === '/v2/auth')).toBe(true);
    expect(reqs.some((t) => t.attemptedUser === QUAY_ROBOT && t.user === QUAY_ROBOT && t.granted.some((g) => g.actions.includes('push')))).toBe(true);
    expect(reqs.some((t) => !t.hasAuth && t.granted.some((g) => g.name === em.publicRepo && g.actions.join() === 'pull'))).toBe(true);
    // A robot of myorg cannot push elsewhere.
    const env = s.sourceEnv(em, auths);
    const r = await s.ferry(em, ['push', '-q', `oci:${s.imageDir}:v1`, 'quay.io/otherorg/app:v1'], env);
    expectFailure(r, 3);
  });

  it('ecr: Basic only, user AWS with the long get-login-password token; a wrong token is ECR\'s plain-text 401 and exit 3', async () => {
    const em = s.ems.get('ecr')!;
    expect(em.tokens).toBeUndefined();
    const api = em.frontLog.filter((f) => f.path.startsWith('/v2/'));
    expect(api.some((f) => f.auth === 'basic:AWS' && f.status < 300)).toBe(true);
    expect(api.some((f) => f.auth === 'bearer')).toBe(false);
    const challenge = api.find((f) => f.status === 401)?.challenge;
    expect(challenge).toBe('Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"');
    const body = await frontGet(em, em.host, '/v2/');
    expect(body.status).toBe(401);
    expect(body.body).toBe('Not Authorized\n');
    const wrong = s.sourceEnv(em, { name: 'wrong', setup: (_e, dir) => ({ env: { DOCKER_CONFIG: dir }, files: { [`${dir}/config.json`]: JSON.stringify({ auths: { [em.host]: { auth: Buffer.from(`AWS:${ECR_PASSWORD.slice(0, -4)}AAAA`).toString('base64') } } }) } }) });
    const r = await s.ferry(em, ['inspect', `${em.host}/team/auths:v1`], wrong);
    expectFailure(r, 3);
    expect(r.stderr).not.toContain(ECR_PASSWORD.slice(0, 40));
  });
});
