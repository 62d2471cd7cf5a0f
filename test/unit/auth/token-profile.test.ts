/**
 * fetchToken options that come from the registry profiles table and from ferry login:
 * noPost (Harbor: GET at once), badCredentialsStatus (IBM: 400 = wrong password), loginHint,
 * offline (docker login's offline_token=true), the OAuth2 `scope` of an answer; and the auth
 * middleware choosing them from the challenge (Harbor found by its service name).
 */
import { describe, expect, it } from 'vitest';
import { fetchToken, type TokenRequest, type TokenTransport } from '../../../src/auth/token.js';
import type { Credential } from '../../../src/auth/credential.js';
import { TokenCache } from '../../../src/auth/token-cache.js';
import { authMiddleware } from '../../../src/http/auth.js';
import { wrapResponse } from '../../../src/http/send.js';
import { Readable } from 'node:stream';
import { grantedScopes } from '../../../src/ops/auth-explain.js';

function fake(...replies: { status: number; body: string }[]): { transport: TokenTransport; reqs: TokenRequest[] } {
  const reqs: TokenRequest[] = [];
  const transport: TokenTransport = async (req) => {
    reqs.push(req);
    const r = replies[Math.min(reqs.length - 1, replies.length - 1)]!;
    return { status: r.status, headers: {}, body: r.body };
  };
  return { transport, reqs };
}
const ok = { status: 200, body: JSON.stringify({ token: 't', refresh_token: 'r-1', scope: 'repository:a/b:pull' }) };
const basic: Credential = { kind: 'basic', username: 'iamapikey', password: 'KEY-secret-1', source: 'docker config /c (auths)' };
const idtok: Credential = { kind: 'identity-token', token: 'REFRESH-secret', username: 'robot$p+ci', password: 'ROBOT-secret', source: 'x' };

describe('fetchToken: profile and login options', () => {
  it('noPost: an identity token with a password goes straight to GET with Basic (no wasted POST)', async () => {
    const f = fake(ok);
    await fetchToken(f.transport, { realm: 'https://harbor.example.com/service/token', service: 'harbor-registry', scopes: ['repository:p/a:pull'], credential: idtok, noPost: true });
    expect(f.reqs.map((r) => r.method)).toEqual(['GET']);
    expect(f.reqs[0]!.headers['authorization']).toBe(`Basic ${Buffer.from('robot$p+ci:ROBOT-secret').toString('base64')}`);
    expect(f.reqs[0]!.url).toContain('account=robot%24p%2Bci');
  });

  it('without noPost the same credential POSTs first', async () => {
    const f = fake(ok);
    await fetchToken(f.transport, { realm: 'https://r.example/token', scopes: [], credential: idtok });
    expect(f.reqs[0]!.method).toBe('POST');
  });

  it('badCredentialsStatus 400: E_UNAUTHORIZED naming the status and the login hint, no secret', async () => {
    const f = fake({ status: 400, body: '{"code":"CRG0014E","message":"bad request"}' });
    const err = (await fetchToken(f.transport, { realm: 'https://us.icr.io/oauth/token', service: 'registry', scopes: [], credential: basic, badCredentialsStatus: 400, loginHint: 'ferry login <region>.icr.io -u iamapikey' }).catch((e: unknown) => e)) as Error & { code: string; hint?: string };
    expect(err.code).toBe('E_UNAUTHORIZED');
    expect(err.message).toMatch(/^authentication failed for us\.icr\.io/);
    expect(err.hint).toContain('it answers a wrong user or password with HTTP 400');
    expect(err.hint).toContain('-u iamapikey');
    expect(`${err.message} ${err.hint}`).not.toContain('KEY-secret-1');
  });

  it('a 400 without that profile stays the generic token failure', async () => {
    const f = fake({ status: 400, body: '{}' });
    const err = (await fetchToken(f.transport, { realm: 'https://r.example/token', scopes: [], credential: basic }).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/token request to r\.example failed with HTTP 400/);
  });

  it('offline: docker login\'s client_id + offline_token=true, only with credentials; refresh_token and scope passed through', async () => {
    const f = fake(ok);
    const t = await fetchToken(f.transport, { realm: 'https://r.example/token', service: 's', scopes: [], credential: basic, offline: true });
    const u = new URL(f.reqs[0]!.url);
    expect(u.searchParams.get('offline_token')).toBe('true');
    expect(u.searchParams.get('client_id')).toBe('ferry');
    expect(t.refreshToken).toBe('r-1');
    expect(t.scope).toBe('repository:a/b:pull');
    const g = fake(ok);
    await fetchToken(g.transport, { realm: 'https://r.example/token', scopes: [], credential: { kind: 'anonymous' }, offline: true });
    expect(new URL(g.reqs[0]!.url).searchParams.has('offline_token')).toBe(false);
  });
});

describe('auth middleware asks the profiles table', () => {
  it('a Harbor challenge (service harbor-registry, any host) makes an identity token GET, not POST', async () => {
    const f = fake(ok);
    const calls: string[] = [];
    const mw = authMiddleware({ apiHost: 'registry.corp:8443', credential: async () => idtok, tokenTransport: f.transport, cache: new TokenCache(), allowHttpRealm: false });
    let n = 0;
    const send = mw(async (req) => {
      calls.push(req.headers['authorization'] ?? '');
      n++;
      const headers = n === 1 ? { 'www-authenticate': 'Bearer realm="https://registry.corp:8443/service/token",service="harbor-registry"' } : {};
      return wrapResponse(req.url, n === 1 ? 401 : 200, headers, Readable.from([]));
    });
    const res = await send({ method: 'GET', url: new URL('https://registry.corp:8443/v2/p/a/tags/list'), headers: {}, scopes: ['repository:p/a:pull'] });
    expect(res.status).toBe(200);
    expect(f.reqs.map((r) => r.method)).toEqual(['GET']);
    expect(calls[1]).toBe('Bearer t');
  });
});

describe('scopes of a challenge', () => {
  const run = async (reqScopes: string[], challenge: string) => {
    const f = fake(ok);
    const mw = authMiddleware({ apiHost: 'ghcr.io', credential: async () => basic, tokenTransport: f.transport, cache: new TokenCache(), allowHttpRealm: false });
    let n = 0;
    const send = mw(async (req) => wrapResponse(req.url, ++n === 1 ? 401 : 200, n === 1 ? { 'www-authenticate': challenge } : {}, Readable.from([])));
    await send({ method: 'GET', url: new URL('https://ghcr.io/v2/'), headers: {}, scopes: reqScopes });
    return new URL(f.reqs[0]!.url).searchParams.getAll('scope');
  };
  it('a scope-less request (the /v2/ ping) does not ask for the placeholder scope GHCR puts on /v2/', async () => {
    expect(await run([], 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"')).toEqual([]);
  });
  it('a request about a repository takes the challenge\'s scope too, and insufficient_scope always', async () => {
    expect(await run(['repository:o/a:pull'], 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/b:pull"')).toEqual(['repository:o/b:pull', 'repository:o/a:pull']);
    expect(await run([], 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="registry:catalog:*",error="insufficient_scope"')).toEqual(['registry:catalog:*']);
  });
});

describe('grantedScopes (auth explain)', () => {
  const jwt = (claims: unknown): string => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
  it.each([
    [jwt({ access: [{ type: 'repository', name: 'a/b', actions: ['pull', 'push'] }] }), undefined, ['repository:a/b:pull,push']],
    [jwt({ access: [] }), undefined, []],
    [jwt({ sub: 'x' }), 'repository:a/b:pull', ['repository:a/b:pull']],
    ['opaque-token', undefined, null],
    ['a.b.c', undefined, null],
    [jwt({ access: [{ type: 'repository', name: 'h:5000/x', actions: ['pull'] }, 'junk', { type: 1 }] }), undefined, ['repository:h:5000/x:pull']],
  ])('%s', (token, scope, want) => {
    expect(grantedScopes(token, scope)).toEqual(want);
  });
});
