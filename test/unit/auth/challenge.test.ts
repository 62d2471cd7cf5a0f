import { describe, it, expect } from 'vitest';
import { challengeScopes, parseWwwAuthenticate, pickChallenge, resolveRealm } from '../../../src/auth/challenge.js';
import type { Challenge } from '../../../src/auth/challenge.js';

describe('parseWwwAuthenticate', () => {
  const rows: { name: string; input: string | string[] | undefined; want: Challenge[] }[] = [
    { name: 'undefined header', input: undefined, want: [] },
    { name: 'empty header', input: '', want: [] },
    {
      name: 'docker hub bearer',
      input: 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      want: [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } }],
    },
    {
      name: 'case-insensitive scheme and param names, values verbatim',
      input: 'BEARER Realm="https://A.example/Token", SERVICE="Reg.Example"',
      want: [{ scheme: 'bearer', params: { realm: 'https://A.example/Token', service: 'Reg.Example' } }],
    },
    {
      name: 'ECR basic with service',
      input: 'Basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
      want: [{ scheme: 'basic', params: { realm: 'https://123.dkr.ecr.us-east-1.amazonaws.com/', service: 'ecr.amazonaws.com' } }],
    },
    {
      name: 'bare token values',
      input: 'Bearer realm="https://gcr.io/v2/token",service=gcr.io',
      want: [{ scheme: 'bearer', params: { realm: 'https://gcr.io/v2/token', service: 'gcr.io' } }],
    },
    {
      name: 'bare realm URL value',
      input: 'Bearer realm=https://auth.example/token, service=example',
      want: [{ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'example' } }],
    },
    {
      name: 'quoted value with backslash escapes and commas',
      input: 'Bearer realm="https://a.example/t?x=1,2",error_description="say \\"hi\\" \\\\ ok"',
      want: [{ scheme: 'bearer', params: { realm: 'https://a.example/t?x=1,2', error_description: 'say "hi" \\ ok' } }],
    },
    {
      name: 'spaces around = and commas',
      input: 'Bearer  realm = "https://a/t" ,  service = "s"',
      want: [{ scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } }],
    },
    {
      name: 'two challenges comma-joined on one line (Quay style)',
      input: 'Basic realm="quay.io", Bearer realm="https://quay.io/v2/auth",service="quay.io"',
      want: [
        { scheme: 'basic', params: { realm: 'quay.io' } },
        { scheme: 'bearer', params: { realm: 'https://quay.io/v2/auth', service: 'quay.io' } },
      ],
    },
    {
      name: 'several header lines',
      input: ['Basic realm="r1"', 'Bearer realm="https://t.example/token",service="svc"'],
      want: [
        { scheme: 'basic', params: { realm: 'r1' } },
        { scheme: 'bearer', params: { realm: 'https://t.example/token', service: 'svc' } },
      ],
    },
    {
      name: 'scheme without params followed by another challenge',
      input: 'Negotiate, Basic realm="x"',
      want: [
        { scheme: 'negotiate', params: {} },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    },
    {
      name: 'token68 is skipped',
      input: 'Negotiate YWJjZA==, Bearer realm="https://r/t"',
      want: [
        { scheme: 'negotiate', params: {} },
        { scheme: 'bearer', params: { realm: 'https://r/t' } },
      ],
    },
    {
      name: 'missing service (Artifact Registry on /v2/)',
      input: 'Bearer realm="https://us-docker.pkg.dev/v2/token"',
      want: [{ scheme: 'bearer', params: { realm: 'https://us-docker.pkg.dev/v2/token' } }],
    },
    {
      name: 'space-separated scopes kept verbatim (Harbor)',
      input: 'Bearer realm="https://h/service/token",service="harbor-registry",scope="repository:a/b:pull,push repository:c/d:pull"',
      want: [{ scheme: 'bearer', params: { realm: 'https://h/service/token', service: 'harbor-registry', scope: 'repository:a/b:pull,push repository:c/d:pull' } }],
    },
    {
      name: 'error=insufficient_scope',
      input: 'Bearer realm="https://r/t",service="s",scope="repository:x:push",error="insufficient_scope"',
      want: [{ scheme: 'bearer', params: { realm: 'https://r/t', service: 's', scope: 'repository:x:push', error: 'insufficient_scope' } }],
    },
    {
      name: 'error=invalid_token, bare',
      input: 'Bearer realm="https://r/t",error=invalid_token',
      want: [{ scheme: 'bearer', params: { realm: 'https://r/t', error: 'invalid_token' } }],
    },
    {
      name: 'relative realm kept as given',
      input: 'Bearer realm="/token",service="local"',
      want: [{ scheme: 'bearer', params: { realm: '/token', service: 'local' } }],
    },
    {
      name: 'duplicate param keeps the first',
      input: 'Bearer realm="a",realm="b"',
      want: [{ scheme: 'bearer', params: { realm: 'a' } }],
    },
    {
      name: 'unterminated quote takes the rest',
      input: 'Bearer realm="https://r/t',
      want: [{ scheme: 'bearer', params: { realm: 'https://r/t' } }],
    },
    {
      name: 'empty quoted value',
      input: 'Bearer realm="",service="s"',
      want: [{ scheme: 'bearer', params: { realm: '', service: 's' } }],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      expect(parseWwwAuthenticate(r.input)).toEqual(r.want);
    });
  }
});

describe('pickChallenge', () => {
  const b = (realm?: string): Challenge => ({ scheme: 'bearer', params: realm === undefined ? {} : { realm } });
  const basic: Challenge = { scheme: 'basic', params: { realm: 'x' } };
  const rows: { name: string; cs: Challenge[]; want: Challenge | undefined }[] = [
    { name: 'none', cs: [], want: undefined },
    { name: 'only basic', cs: [basic], want: basic },
    { name: 'bearer preferred over earlier basic', cs: [basic, b('https://r')], want: b('https://r') },
    { name: 'basic preferred over realm-less bearer', cs: [b(), basic], want: basic },
    { name: 'realm-less bearer as last resort', cs: [{ scheme: 'negotiate', params: {} }, b()], want: b() },
    { name: 'unknown schemes only', cs: [{ scheme: 'negotiate', params: {} }], want: undefined },
  ];
  for (const r of rows) it(r.name, () => expect(pickChallenge(r.cs)).toEqual(r.want));
});

describe('challengeScopes', () => {
  const rows: { name: string; params: Record<string, string>; want: string[] }[] = [
    { name: 'absent', params: {}, want: [] },
    { name: 'one', params: { scope: 'repository:a:pull' }, want: ['repository:a:pull'] },
    { name: 'several, extra spaces', params: { scope: ' repository:a:pull  repository:b:pull,push ' }, want: ['repository:a:pull', 'repository:b:pull,push'] },
  ];
  for (const r of rows) it(r.name, () => expect(challengeScopes({ scheme: 'bearer', params: r.params })).toEqual(r.want));
});

describe('resolveRealm', () => {
  const rows: { name: string; realm: string; url: string; want?: string; err?: string }[] = [
    { name: 'absolute realm unchanged', realm: 'https://auth.docker.io/token', url: 'https://registry-1.docker.io/v2/', want: 'https://auth.docker.io/token' },
    { name: 'absolute path realm', realm: '/token', url: 'https://r.example:5000/v2/foo/manifests/latest', want: 'https://r.example:5000/token' },
    { name: 'relative path realm', realm: 'token', url: 'http://localhost:5000/v2/', want: 'http://localhost:5000/v2/token' },
    { name: 'query kept', realm: '/auth?x=1', url: 'https://r/v2/', want: 'https://r/auth?x=1' },
    { name: 'non-http scheme rejected', realm: 'file:///etc/passwd', url: 'https://r/v2/', err: 'E_REGISTRY' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.err) expect(() => resolveRealm(r.realm, r.url)).toThrow(expect.objectContaining({ code: r.err }));
      else expect(resolveRealm(r.realm, r.url)).toBe(r.want);
    });
  }
});
