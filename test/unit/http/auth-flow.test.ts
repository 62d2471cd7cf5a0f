import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seedImage, type MemRegistry } from '../../helpers/mem-registry.js';
import { basicCred, hexOf, newSession, pullToLayout, rejection, repoOf, sha256, startReg, tempDir } from './support.js';

const PASSWORD = 'alice-pw-93jd';
const users = {
  alice: { password: PASSWORD, pull: ['*'], push: ['*'] },
  bob: { password: 'bob-pw-1234', pull: ['public/*'] },
};

const tokenRequests = (reg: MemRegistry) => reg.requests.filter((r) => r.path === '/token');
const scopesOf = (query: string) => new URLSearchParams(query).getAll('scope').sort();

describe('token auth', () => {
  it('anonymous pull of an anonymousPull repository: anonymous token, verified files', async () => {
    const reg = await startReg({ auth: 'token', users, anonymousPull: ['library/*'] });
    const seeded = seedImage(reg, 'library/alpine', '3.20');
    const { session } = newSession();
    const dir = tempDir();

    const result = await pullToLayout(session, reg.host, 'library/alpine', '3.20', dir);

    expect(result.root.digest).toBe(seeded.digest);
    const tr = tokenRequests(reg);
    expect(tr).toHaveLength(1);
    expect(tr[0]!.hasAuth).toBe(false);
    expect(scopesOf(tr[0]!.query)).toEqual(['repository:library/alpine:pull']);
    for (const d of seeded.blobs) expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hexOf(d))))).toBe(d);
  });

  it('anonymous pull of a private repository → E_UNAUTHORIZED naming it, with a login hint', async () => {
    const reg = await startReg({ auth: 'token', users, anonymousPull: ['library/*'] });
    seedImage(reg, 'private/app', 'v1');
    const { session } = newSession();
    const { source } = repoOf(session, reg.host, 'private/app', 'v1');
    const e = await rejection(source.resolve());
    expect(e.code).toBe('E_UNAUTHORIZED');
    expect(e.message).toContain(`${reg.host}/private/app:v1`);
    expect(e.hint).toMatch(/--creds|login/);
  });

  it('alice pulls a private repo with exactly one token request for its one scope set', async () => {
    const reg = await startReg({ auth: 'token', users });
    const seeded = seedImage(reg, 'private/app', 'v1', { layers: 4 });
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });

    const result = await pullToLayout(session, reg.host, 'private/app', 'v1', tempDir(), { jobs: 4 });

    expect(result.root.digest).toBe(seeded.digest);
    expect(result.blobs.transferred).toBe(5);
    const tr = tokenRequests(reg);
    expect(tr).toHaveLength(1);
    expect(tr[0]).toMatchObject({ method: 'GET', hasAuth: true, authScheme: 'Basic', status: 200 });
    expect(scopesOf(tr[0]!.query)).toEqual(['repository:private/app:pull']);
    expect(new URLSearchParams(tr[0]!.query).get('service')).toBe('mem-registry');
    // only the very first API request went without a token
    const api = reg.requests.filter((r) => r.path.startsWith('/v2/'));
    expect(api.filter((r) => !r.hasAuth)).toHaveLength(1);
    expect(api.filter((r) => r.status === 401)).toHaveLength(1);
    expect(api.slice(1).every((r) => r.authScheme === 'Bearer' && r.status === 200)).toBe(true);
  });

  it('two repositories → one token request per scope set, each reused', async () => {
    const reg = await startReg({ auth: 'token', users });
    seedImage(reg, 'team/a', 'v1');
    seedImage(reg, 'team/b', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    for (const repo of ['team/a', 'team/b', 'team/a', 'team/b']) {
      await repoOf(session, reg.host, repo, 'v1').client.getManifest('v1');
    }
    expect(tokenRequests(reg).map((r) => scopesOf(r.query))).toEqual([['repository:team/a:pull'], ['repository:team/b:pull']]);
  });

  it('insufficient_scope from the registry → one re-ask with the merged scopes, then success', async () => {
    const reg = await startReg({ auth: 'token', users });
    const a = seedImage(reg, 'team/a', 'v1');
    const b = seedImage(reg, 'team/b', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'team/a', 'v1');
    expect((await client.getManifest('v1')).descriptor.digest).toBe(a.digest); // token for team/a
    // a request whose declared scopes (team/a) do not cover what it touches (team/b)
    const res = await client.registry.request({ method: 'GET', url: client.registry.url('/v2/team/b/manifests/v1'), scopes: ['repository:team/a:pull'] });

    expect(res.status).toBe(200);
    expect(res.header('docker-content-digest')).toBe(b.digest);
    await res.dump();
    const tr = tokenRequests(reg);
    expect(tr).toHaveLength(2);
    expect(scopesOf(tr[1]!.query)).toEqual(['repository:team/a:pull', 'repository:team/b:pull']);
    const bGets = reg.requests.filter((r) => r.path === '/v2/team/b/manifests/v1');
    expect(bGets.map((r) => r.status)).toEqual([401, 200]);
  });

  it('insufficient_scope is re-asked only once: a second 401 is final (no loop)', async () => {
    const reg = await startReg({ auth: 'token', users });
    seedImage(reg, 'team/a', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'team/a', 'v1');
    await client.getManifest('v1');
    const before = tokenRequests(reg).length;
    reg.faults.push({
      match: { method: 'GET', path: /\/v2\/team\/a\/manifests\/v1$/ },
      action: {
        kind: 'status', status: 401,
        headers: { 'WWW-Authenticate': `Bearer realm="${reg.tokenRealm}",service="mem-registry",scope="repository:team/a:pull",error="insufficient_scope"` },
      },
    });
    const n0 = reg.requests.length;

    const e = await rejection(client.getManifest('v1'));

    // valid credentials lacking a scope: "denied", not "wrong password" (errors.ts E_DENIED)
    expect(e.code).toBe('E_DENIED');
    expect(e.message).toContain(`${reg.host}/team/a:v1`);
    const after = reg.requests.slice(n0);
    expect(after.filter((r) => r.path === '/v2/team/a/manifests/v1').map((r) => r.status)).toEqual([401, 401]);
    expect(tokenRequests(reg).length - before).toBe(1);
  });

  it('an expired token is refreshed transparently (invalid_token → one new token → success)', async () => {
    const reg = await startReg({ auth: 'token', users });
    const seeded = seedImage(reg, 'private/app', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'private/app', 'v1');
    await client.getManifest('v1');
    expect(tokenRequests(reg)).toHaveLength(1);
    reg.expireTokens();
    const n0 = reg.requests.length;

    const got = await client.getManifest('v1');

    expect(got.descriptor.digest).toBe(seeded.digest);
    expect(tokenRequests(reg)).toHaveLength(2);
    expect(reg.requests.slice(n0).filter((r) => r.path.startsWith('/v2/')).map((r) => r.status)).toEqual([401, 200]);
    // and the new token is reused afterwards
    await client.getManifest('v1');
    expect(tokenRequests(reg)).toHaveLength(2);
  });

  it('wrong password → E_UNAUTHORIZED from the token endpoint, no secret in the message or hint', async () => {
    const reg = await startReg({ auth: 'token', users });
    seedImage(reg, 'private/app', 'v1');
    const wrong = 'Wr0ng-Passw0rd!';
    const { session, lines } = newSession({ credential: basicCred('alice', wrong), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'private/app', 'v1');

    const e = await rejection(client.getManifest('v1'));

    expect(e.code).toBe('E_UNAUTHORIZED');
    expect(e.message).toContain(reg.host);
    expect(e.message).toMatch(/authentication failed/);
    const b64 = Buffer.from(`alice:${wrong}`).toString('base64');
    for (const s of [e.message, e.hint ?? '', JSON.stringify(e), lines.join('\n')]) {
      expect(s).not.toContain(wrong);
      expect(s).not.toContain(b64);
    }
    expect(tokenRequests(reg).map((r) => r.status)).toEqual([401]); // a 401 from the token server is not retried
  });

  it('user without access (401 insufficient_scope after the token) → E_DENIED naming the repository', async () => {
    const reg = await startReg({ auth: 'token', users });
    seedImage(reg, 'private/app', 'v1');
    const { session } = newSession({ credential: basicCred('bob', 'bob-pw-1234'), registry: reg.host });
    const { source } = repoOf(session, reg.host, 'private/app', 'v1');
    const e = await rejection(source.resolve());
    expect(e.code).toBe('E_DENIED');
    expect(e.hint).toContain('lack permission');
    expect(e.message).toContain(`${reg.host}/private/app:v1`);
    expect(e.message).not.toContain('bob-pw-1234');
  });
});

describe('basic auth', () => {
  it('first request 401 → retried once with Basic; later requests authenticate up front', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'app', 'v1');

    expect((await client.getManifest('v1')).descriptor.digest).toBe(seeded.digest);
    expect(reg.requests.map((r) => [r.status, r.authScheme ?? null])).toEqual([[401, null], [200, 'Basic']]);

    await client.getManifest('v1');
    expect(reg.requests).toHaveLength(3);
    expect(reg.requests[2]).toMatchObject({ status: 200, authScheme: 'Basic' });
  });

  it('full pull with Basic: one 401 in total, everything else authenticated', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1', { layers: 3 });
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const result = await pullToLayout(session, reg.host, 'app', 'v1', tempDir());
    expect(result.root.digest).toBe(seeded.digest);
    expect(reg.requests.filter((r) => r.status === 401)).toHaveLength(1);
    expect(reg.requests.slice(1).every((r) => r.authScheme === 'Basic')).toBe(true);
  });

  it('wrong password → E_UNAUTHORIZED "credentials rejected", 2 requests, no secret in the message', async () => {
    const reg = await startReg({ auth: 'basic', users });
    seedImage(reg, 'app', 'v1');
    const { session } = newSession({ credential: basicCred('alice', 'nope-nope-nope'), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'app', 'v1');
    const e = await rejection(client.getManifest('v1'));
    expect(e.code).toBe('E_UNAUTHORIZED');
    expect(e.message).toContain('credentials rejected');
    expect(e.message).toContain(`${reg.host}/app:v1`);
    expect(e.message).not.toContain('nope-nope-nope');
    expect(reg.requests.map((r) => r.status)).toEqual([401, 401]);
  });

  it('user without access → E_DENIED naming the repository', async () => {
    const reg = await startReg({ auth: 'basic', users });
    seedImage(reg, 'private/app', 'v1');
    const { session } = newSession({ credential: basicCred('bob', 'bob-pw-1234'), registry: reg.host });
    const { source } = repoOf(session, reg.host, 'private/app', 'v1');
    const e = await rejection(source.resolve());
    expect(e.code).toBe('E_DENIED');
    expect(e.status).toBe(403);
    expect(e.message).toContain(`${reg.host}/private/app:v1`);
    expect(e.message).toContain('access denied');
  });
});
