import { describe, it, expect } from 'vitest';
import { parseCredsFlag } from '../../../src/auth/flags.js';
import { convertToHostname, decodeAuth, dockerAuthKey, parseDockerAuthConfigEnv } from '../../../src/auth/docker-config.js';
import { normalizePodmanKey, podmanLookupKeys } from '../../../src/auth/podman-auth.js';

describe('parseCredsFlag', () => {
  const rows: { name: string; in: string; want?: { username: string; password: string }; err?: string }[] = [
    { name: 'user:pass', in: 'alice:secret', want: { username: 'alice', password: 'secret' } },
    { name: 'split at first colon', in: 'alice:a:b:c', want: { username: 'alice', password: 'a:b:c' } },
    { name: 'empty password allowed', in: 'alice:', want: { username: 'alice', password: '' } },
    { name: 'empty username', in: ':secret', err: 'E_USAGE' },
    { name: 'no colon', in: 'alice', err: 'E_USAGE' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.err) {
        let e: unknown;
        try {
          parseCredsFlag(r.in);
        } catch (x) {
          e = x;
        }
        expect(e).toMatchObject({ code: r.err });
        expect((e as Error).message).not.toContain('secret');
      } else {
        expect(parseCredsFlag(r.in)).toEqual({ kind: 'basic', ...r.want, source: 'command line (--creds)' });
      }
    });
  }
});

describe('dockerAuthKey', () => {
  const rows = [
    { name: 'docker.io', in: 'docker.io', want: 'https://index.docker.io/v1/' },
    { name: 'index.docker.io', in: 'index.docker.io', want: 'https://index.docker.io/v1/' },
    { name: 'registry-1.docker.io unchanged (docker-exact)', in: 'registry-1.docker.io', want: 'registry-1.docker.io' },
    { name: 'host:port', in: 'localhost:5000', want: 'localhost:5000' },
    { name: 'ECR', in: '123.dkr.ecr.us-east-1.amazonaws.com', want: '123.dkr.ecr.us-east-1.amazonaws.com' },
  ];
  for (const r of rows) it(r.name, () => expect(dockerAuthKey(r.in)).toBe(r.want));
});

describe('convertToHostname', () => {
  const rows = [
    { name: 'bare host', in: 'ghcr.io', want: 'ghcr.io' },
    { name: 'bare host with path', in: 'ghcr.io/org/x', want: 'ghcr.io' },
    { name: 'https with path', in: 'https://index.docker.io/v1/', want: 'index.docker.io' },
    { name: 'keeps port', in: 'https://r.example:5000/v2/', want: 'r.example:5000' },
    { name: 'keeps explicit default port like Go', in: 'https://r.example:443', want: 'r.example:443' },
    { name: 'http scheme', in: 'http://localhost:5000', want: 'localhost:5000' },
    { name: 'ipv6 with port', in: 'https://[::1]:5000/v2/', want: '[::1]:5000' },
    { name: 'ipv6 without port', in: 'https://[::1]/v2/', want: '::1' },
    { name: 'userinfo dropped', in: 'https://u:p@r.example/x', want: 'r.example' },
    // docker/cli: url.Parse takes the last colon as the port, then JoinHostPort brackets the host.
    { name: 'regression: unbracketed ipv6 with port, as docker reads it', in: 'https://::1:6555/v2/', want: '[::1]:6555' },
    { name: 'unbracketed ipv6 without a scheme stays as written', in: '::1:6555', want: '::1:6555' },
    { name: 'a non-numeric port is no URL (Go fails to parse it): cut at the first slash', in: 'https://r.example:abc/v2', want: 'https:' },
  ];
  for (const r of rows) it(r.name, () => expect(convertToHostname(r.in)).toBe(r.want));
});

describe('decodeAuth', () => {
  const enc = (s: string) => Buffer.from(s).toString('base64');
  const rows: { name: string; in: string; want?: { username: string; password: string }; err?: boolean }[] = [
    { name: 'padded', in: enc('ab:c'), want: { username: 'ab', password: 'c' } },
    { name: 'unpadded', in: enc('ab:c').replace(/=+$/, ''), want: { username: 'ab', password: 'c' } },
    { name: 'NULs trimmed both ends of password', in: enc('u:\0p\0\0'), want: { username: 'u', password: 'p' } },
    { name: 'empty password', in: enc('u:'), want: { username: 'u', password: '' } },
    { name: 'no colon', in: enc('user'), err: true },
    { name: 'empty username', in: enc(':pw'), err: true },
    { name: 'not base64', in: 'not base64!', err: true },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.err) expect(() => decodeAuth(r.in)).toThrow();
      else expect(decodeAuth(r.in)).toEqual(r.want);
    });
  }
});

describe('parseDockerAuthConfigEnv', () => {
  const enc = (s: string) => Buffer.from(s).toString('base64');
  const rows: { name: string; in: string; want?: Record<string, { username: string; password: string }>; err?: string }[] = [
    { name: 'one entry', in: JSON.stringify({ auths: { 'ghcr.io': { auth: enc('a:b') } } }), want: { 'ghcr.io': { username: 'a', password: 'b' } } },
    { name: 'empty object', in: '{}', want: {} },
    { name: 'unknown top-level field', in: JSON.stringify({ auths: {}, credsStore: 'x' }), err: 'unknown field "credsStore"' },
    { name: 'non-auth entry field', in: JSON.stringify({ auths: { h: { auth: enc('a:b'), username: 'a' } } }), err: 'unknown field "username"' },
    { name: 'missing auth', in: JSON.stringify({ auths: { h: {} } }), err: 'missing key `auth` for h' },
    { name: 'two JSON objects', in: '{} {}', err: 'after JSON' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.err !== undefined) expect(() => parseDockerAuthConfigEnv(r.in)).toThrow(r.err);
      else expect(Object.fromEntries(parseDockerAuthConfigEnv(r.in))).toEqual(r.want);
    });
  }
});

describe('podman key helpers', () => {
  const keyRows = [
    { name: 'docker.io', in: 'docker.io', want: 'index.docker.io' },
    { name: 'registry-1.docker.io', in: 'registry-1.docker.io', want: 'index.docker.io' },
    { name: 'https URL with path', in: 'https://index.docker.io/v1/', want: 'index.docker.io' },
    { name: 'namespaced key kept', in: 'quay.io/org', want: 'quay.io/org' },
    { name: 'http URL', in: 'http://localhost:5000/x', want: 'localhost:5000' },
  ];
  for (const r of keyRows) it(`normalizePodmanKey: ${r.name}`, () => expect(normalizePodmanKey(r.in)).toBe(r.want));

  const lookupRows = [
    { name: 'registry only', reg: 'quay.io', repo: undefined, want: ['quay.io'] },
    { name: 'nested repository', reg: 'quay.io', repo: 'a/b/c', want: ['quay.io/a/b/c', 'quay.io/a/b', 'quay.io/a', 'quay.io'] },
  ];
  for (const r of lookupRows) it(`podmanLookupKeys: ${r.name}`, () => expect(podmanLookupKeys(r.reg, r.repo)).toEqual(r.want));
});
