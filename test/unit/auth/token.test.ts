import { describe, it, expect } from 'vitest';
import { fetchToken, MAX_TOKEN_BODY_BYTES } from '../../../src/auth/token.js';
import type { TokenRequest, TokenTransport } from '../../../src/auth/token.js';
import type { Credential } from '../../../src/auth/credential.js';

type Reply = { status: number; body: string };

/** Fake transport: replies in order (last one repeats) and records requests. */
function fake(...replies: (Reply | Error)[]): { transport: TokenTransport; reqs: TokenRequest[] } {
  const reqs: TokenRequest[] = [];
  const transport: TokenTransport = async (req) => {
    reqs.push(req);
    const r = replies[Math.min(reqs.length - 1, replies.length - 1)]!;
    if (r instanceof Error) throw r;
    return { status: r.status, headers: { 'content-type': 'application/json' }, body: r.body };
  };
  return { transport, reqs };
}

const ok = (o: unknown): Reply => ({ status: 200, body: JSON.stringify(o) });
const REALM = 'https://auth.example.com/token';
const basic: Credential = { kind: 'basic', username: 'alice', password: 'pa55-w0rd:x', source: 'docker config /x (auths)' };
const idtok: Credential = { kind: 'identity-token', token: 'refresh-SECRET-123', source: 'credential helper docker-credential-acr-env' };
const anon: Credential = { kind: 'anonymous', source: 'anonymous' };
const basicHeader = `Basic ${Buffer.from('alice:pa55-w0rd:x').toString('base64')}`;

describe('fetchToken request shape', () => {
  const rows: {
    name: string;
    credential: Credential;
    service?: string;
    scopes: string[];
    realm?: string;
    replies: Reply[];
    want: { method: string; url: string; auth?: string; body?: Record<string, string> }[];
  }[] = [
    {
      name: 'anonymous GET, one scope param per scope, no Authorization',
      credential: anon,
      service: 'registry.docker.io',
      scopes: ['repository:library/alpine:pull', 'repository:library/busybox:pull'],
      replies: [ok({ token: 't' })],
      want: [
        {
          method: 'GET',
          url: `${REALM}?service=registry.docker.io&scope=repository%3Alibrary%2Falpine%3Apull&scope=repository%3Alibrary%2Fbusybox%3Apull`,
        },
      ],
    },
    {
      name: 'basic GET with account and Basic header',
      credential: basic,
      service: 'svc',
      scopes: ['repository:a/b:pull,push'],
      replies: [ok({ token: 't' })],
      want: [{ method: 'GET', url: `${REALM}?service=svc&scope=repository%3Aa%2Fb%3Apull%2Cpush&account=alice`, auth: basicHeader }],
    },
    {
      name: 'service omitted when missing; existing realm query kept',
      credential: anon,
      realm: 'https://us-docker.pkg.dev/v2/token?x=1',
      scopes: ['repository:p/r/i:pull'],
      replies: [ok({ token: 't' })],
      want: [{ method: 'GET', url: 'https://us-docker.pkg.dev/v2/token?x=1&scope=repository%3Ap%2Fr%2Fi%3Apull' }],
    },
    {
      name: 'no scopes → no scope param',
      credential: anon,
      service: 's',
      scopes: [],
      replies: [ok({ token: 't' })],
      want: [{ method: 'GET', url: `${REALM}?service=s` }],
    },
    {
      name: 'identity token → OAuth2 POST form with ONE space-separated scope field',
      credential: idtok,
      service: 'myacr.azurecr.io',
      scopes: ['repository:a:pull', 'repository:b:pull,push'],
      replies: [ok({ access_token: 't' })],
      want: [
        {
          method: 'POST',
          url: REALM,
          body: {
            grant_type: 'refresh_token',
            refresh_token: 'refresh-SECRET-123',
            service: 'myacr.azurecr.io',
            client_id: 'ferry',
            scope: 'repository:a:pull repository:b:pull,push',
          },
        },
      ],
    },
    ...[400, 404, 405].map((status) => ({
      name: `POST → ${status} (the server takes no OAuth2 POST) → anonymous GET fallback`,
      credential: idtok,
      service: 'harbor-registry',
      scopes: ['repository:p/r:pull'],
      replies: [{ status, body: 'method not allowed' }, ok({ token: 't' })],
      want: [
        { method: 'POST', url: REALM },
        { method: 'GET', url: `${REALM}?service=harbor-registry&scope=repository%3Ap%2Fr%3Apull` },
      ],
    })),
  ];
  rows.push({
    name: 'regression (Harbor): POST → 405 with an entry holding a username and password too → the GET carries Basic for that user, not anonymous',
    credential: { kind: 'identity-token', token: 'refresh-SECRET-123', username: 'robot$ci', password: 'hb-pw', source: 'docker config' },
    service: 'harbor-registry',
    scopes: ['repository:p/r:pull'],
    replies: [{ status: 405, body: 'method not allowed' }, ok({ token: 't' })],
    want: [
      { method: 'POST', url: REALM },
      {
        method: 'GET', url: `${REALM}?service=harbor-registry&scope=repository%3Ap%2Fr%3Apull&account=robot%24ci`,
        auth: `Basic ${Buffer.from('robot$ci:hb-pw').toString('base64')}`,
      },
    ],
  });
  for (const r of rows) {
    it(r.name, async () => {
      const { transport, reqs } = fake(...r.replies);
      const args = { realm: r.realm ?? REALM, scopes: r.scopes, credential: r.credential, ...(r.service ? { service: r.service } : {}) };
      const res = await fetchToken(transport, args);
      expect(res.token).toBe('t');
      expect(reqs).toHaveLength(r.want.length);
      r.want.forEach((w, i) => {
        const q = reqs[i]!;
        expect(q.method).toBe(w.method);
        expect(q.url).toBe(w.url);
        expect(q.headers['authorization']).toBe(w.auth);
        if (w.method === 'POST') expect(q.headers['content-type']).toBe('application/x-www-form-urlencoded');
        if (w.body) expect(Object.fromEntries(new URLSearchParams(q.body))).toEqual(w.body);
        if (w.method === 'GET') {
          expect(q.body).toBeUndefined();
          expect(q.url).not.toContain('refresh-SECRET-123');
        }
      });
    });
  }

  it('custom client_id', async () => {
    const { transport, reqs } = fake(ok({ token: 't' }));
    await fetchToken(transport, { realm: REALM, scopes: [], credential: idtok, clientId: 'ferry/1.0' });
    expect(new URLSearchParams(reqs[0]!.body).get('client_id')).toBe('ferry/1.0');
  });

  it('registry-token is returned as-is without a request', async () => {
    const { transport, reqs } = fake(ok({ token: 'x' }));
    const res = await fetchToken(transport, { realm: REALM, scopes: ['a'], credential: { kind: 'registry-token', token: 'rt' } });
    expect(res).toEqual({ token: 'rt', expiresInSec: 60 });
    expect(reqs).toHaveLength(0);
  });

  it('passes the abort signal to the transport', async () => {
    const ac = new AbortController();
    let seen: AbortSignal | undefined;
    await fetchToken(async (_req, signal) => {
      seen = signal;
      return { status: 200, headers: {}, body: '{"token":"t"}' };
    }, { realm: REALM, scopes: [], credential: anon, signal: ac.signal });
    expect(seen).toBe(ac.signal);
  });
});

describe('fetchToken response handling', () => {
  const rows: { name: string; body: unknown; want: Record<string, unknown> }[] = [
    { name: 'token only, no expires_in → 60', body: { token: 'a' }, want: { token: 'a', expiresInSec: 60 } },
    { name: 'access_token only', body: { access_token: 'b', expires_in: 300 }, want: { token: 'b', expiresInSec: 300 } },
    { name: 'access_token preferred over token', body: { token: 'a', access_token: 'b' }, want: { token: 'b', expiresInSec: 60 } },
    { name: 'empty access_token falls back to token', body: { token: 'a', access_token: '' }, want: { token: 'a', expiresInSec: 60 } },
    { name: 'expires_in below 60 clamped', body: { token: 'a', expires_in: 5 }, want: { token: 'a', expiresInSec: 60 } },
    { name: 'issued_at and refresh_token passed through', body: { token: 'a', expires_in: 120, issued_at: '2025-01-01T00:00:00Z', refresh_token: 'r' }, want: { token: 'a', expiresInSec: 120, issuedAt: '2025-01-01T00:00:00Z', refreshToken: 'r' } },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const { transport } = fake(ok(r.body));
      expect(await fetchToken(transport, { realm: REALM, scopes: [], credential: anon })).toEqual(r.want);
    });
  }
});

describe('fetchToken errors', () => {
  const rows: { name: string; credential: Credential; replies: (Reply | Error)[]; code: string; has: string[]; status?: number }[] = [
    {
      name: '401 → E_UNAUTHORIZED naming the realm host',
      credential: basic,
      replies: [{ status: 401, body: JSON.stringify({ details: 'incorrect username or password' }) }],
      code: 'E_UNAUTHORIZED',
      has: ['authentication failed for auth.example.com', 'incorrect username or password'],
      status: 401,
    },
    {
      name: '401 echoing the credentials back is redacted',
      credential: basic,
      replies: [{ status: 401, body: `bad creds pa55-w0rd:x and ${basicHeader}` }],
      code: 'E_UNAUTHORIZED',
      has: ['authentication failed for auth.example.com'],
    },
    {
      name: '403 → E_DENIED',
      credential: basic,
      replies: [{ status: 403, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }) }],
      code: 'E_DENIED',
      has: ['access denied by auth.example.com', 'requested access to the resource is denied'],
      status: 403,
    },
    {
      name: '500 → E_REGISTRY with status (the token service failed; the credentials were never judged: exit 5, not 3)',
      credential: anon,
      replies: [{ status: 500, body: '<html>oops</html>' }],
      code: 'E_REGISTRY',
      has: ['HTTP 500', 'auth.example.com'],
      status: 500,
    },
    {
      name: '503 with Basic credentials → E_REGISTRY',
      credential: basic,
      replies: [{ status: 503, body: JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] }) }],
      code: 'E_REGISTRY',
      has: ['HTTP 503', 'try later'],
      status: 503,
    },
    {
      name: '429 → E_RATE_LIMITED',
      credential: anon,
      replies: [{ status: 429, body: '' }],
      code: 'E_RATE_LIMITED',
      has: ['HTTP 429'],
      status: 429,
    },
    {
      name: '400 (no bad-credentials status configured) stays E_UNAUTHORIZED',
      credential: anon,
      replies: [{ status: 400, body: '' }],
      code: 'E_UNAUTHORIZED',
      has: ['HTTP 400'],
      status: 400,
    },
    {
      name: 'no token in response',
      credential: anon,
      replies: [ok({ expires_in: 60 })],
      code: 'E_UNAUTHORIZED',
      has: ['returned no token'],
    },
    {
      name: 'non-JSON 200',
      credential: anon,
      replies: [{ status: 200, body: 'hello' }],
      code: 'E_UNAUTHORIZED',
      has: ['not a JSON object'],
    },
    {
      name: 'body over 64 KiB',
      credential: anon,
      replies: [{ status: 200, body: JSON.stringify({ token: 'x'.repeat(MAX_TOKEN_BODY_BYTES) }) }],
      code: 'E_UNAUTHORIZED',
      has: ['larger than 65536 bytes'],
    },
    {
      name: 'OAuth error after POST (500, no fallback) redacts the refresh token',
      credential: idtok,
      replies: [{ status: 500, body: JSON.stringify({ error: 'server_error', error_description: 'bad refresh-SECRET-123' }) }],
      code: 'E_REGISTRY',
      has: ['OAuth2 token request to auth.example.com failed with HTTP 500'],
    },
    {
      name: 'regression (ACR): an identity token refused with 401 → E_UNAUTHORIZED saying the identity token was rejected, no anonymous GET',
      credential: idtok,
      replies: [{ status: 401, body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'refresh token expired' }] }) }],
      code: 'E_UNAUTHORIZED',
      has: ['identity token from credential helper docker-credential-acr-env was rejected by auth.example.com (HTTP 401', 'expired or was revoked'],
      status: 401,
    },
    {
      name: 'an identity token refused with 400 invalid_grant (OAuth2) → the same',
      credential: idtok,
      replies: [{ status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'refresh-SECRET-123 is no longer valid' }) }],
      code: 'E_UNAUTHORIZED',
      has: ['identity token', 'was rejected by auth.example.com (HTTP 400'],
    },
    {
      name: 'POST 404 then GET 401',
      credential: idtok,
      replies: [{ status: 404, body: '' }, { status: 401, body: '{"errors":[{"message":"unauthorized"}]}' }],
      code: 'E_UNAUTHORIZED',
      has: ['authentication failed for auth.example.com: unauthorized'],
    },
    {
      name: 'transport failure → E_NETWORK, redacted',
      credential: basic,
      replies: [new Error('socket hang up while sending pa55-w0rd:x')],
      code: 'E_NETWORK',
      has: ['token request to auth.example.com failed', 'socket hang up'],
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const { transport } = fake(...r.replies);
      const e = await fetchToken(transport, { realm: REALM, service: 's', scopes: ['repository:a:pull'], credential: r.credential }).then(
        () => undefined,
        (x: unknown) => x as Error & { code: string; hint?: string; status?: number },
      );
      expect(e).toMatchObject({ code: r.code });
      if (r.status !== undefined) expect(e!.status).toBe(r.status);
      for (const h of r.has) expect(e!.message).toContain(h);
      const text = `${e!.message}\n${e!.hint ?? ''}`;
      for (const secret of ['pa55-w0rd:x', 'refresh-SECRET-123', basicHeader.slice(6)]) expect(text).not.toContain(secret);
    });
  }

  it('401 hint mentions checking credentials and their source', async () => {
    const { transport } = fake({ status: 401, body: '' });
    const e = await fetchToken(transport, { realm: REALM, scopes: [], credential: basic }).then(
      () => ({ hint: 'no error' }),
      (x: unknown) => x as { hint: string },
    );
    expect(e.hint).toContain('check the credentials');
    expect(e.hint).toContain('docker config /x (auths)');
  });

  it('aborts propagate unchanged', async () => {
    const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
    const { transport } = fake(abort);
    await expect(fetchToken(transport, { realm: REALM, scopes: [], credential: anon })).rejects.toBe(abort);
  });

  it('non-http realm rejected', async () => {
    const { transport, reqs } = fake(ok({ token: 't' }));
    await expect(fetchToken(transport, { realm: 'file:///etc/passwd', scopes: [], credential: basic })).rejects.toMatchObject({ code: 'E_REGISTRY' });
    expect(reqs).toHaveLength(0);
  });
});
