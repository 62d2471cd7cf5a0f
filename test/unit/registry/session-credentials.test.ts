/**
 * Session credential choice (src/registry/session.ts): a binding goes to its registry (and side)
 * only; unbound registries use the side's authfile or the default chain; one registry with two
 * credentials gets two clients. Recorded by two tiny Basic-auth servers (two hosts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Credential, CredentialBinding } from '../../../src/auth/credential.js';
import { parseReference } from '../../../src/ref/index.js';
import { Session, type SessionOptions } from '../../../src/registry/session.js';

interface Seen { host: string; user: string | undefined }
const seen: Seen[] = [];
const servers: Server[] = [];
let A: string;
let B: string;
const dir = mkdtempSync(join(tmpdir(), 'ferry-session-creds-'));

async function basicServer(): Promise<string> {
  const srv = createServer((req, res) => {
    const auth = req.headers.authorization;
    const user = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':')[0] : undefined;
    seen.push({ host: req.headers.host ?? '', user });
    if (!user) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="t"' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  return `127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  [A, B] = await Promise.all([basicServer(), basicServer()]);
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

const basic = (username: string): Credential => ({ kind: 'basic', username, password: `${username}-pw` });

function session(o: Partial<SessionOptions>): Session {
  return new Session({
    userAgent: 'ferry-test', plainHttp: true, retry: { attempts: 1, baseMs: 1, maxMs: 1, maxRetryAfterMs: 1 },
    env: { HOME: dir, DOCKER_CONFIG: join(dir, 'no-docker'), PATH: '', XDG_CONFIG_HOME: join(dir, 'no-xdg') }, ...o,
  });
}

/** Pings `host` as `side` and returns the user names that host saw. */
async function usersSeen(s: Session, host: string, side: 'source' | 'destination', repo = 'r'): Promise<Array<string | undefined>> {
  const mark = seen.length;
  await s.registry(parseReference(`${host}/${repo}:t`), side).ping();
  return seen.slice(mark).filter((x) => x.host === host).map((x) => x.user);
}

describe('Session: credentials per (registry, side)', () => {
  it('a binding reaches its own registry only; another registry stays anonymous', async () => {
    const s = session({ credentials: [{ registry: A, credential: basic('alice') }] });
    try {
      expect(await usersSeen(s, A, 'source')).toEqual([undefined, 'alice']); // 401 challenge, then Basic
      expect(await usersSeen(s, B, 'destination')).toEqual([undefined]); // no binding, no config: never alice
    } finally {
      await s.close();
    }
  });

  it('side bindings: one registry, two users, two clients; each side sends its own user', async () => {
    const bindings: CredentialBinding[] = [
      { registry: A, side: 'source', credential: basic('bob') },
      { registry: A, side: 'destination', credential: basic('alice') },
    ];
    const s = session({ credentials: bindings });
    try {
      const src = s.registry(parseReference(`${A}/x:1`), 'source');
      const dst = s.registry(parseReference(`${A}/y:1`), 'destination');
      expect(src).not.toBe(dst);
      expect(s.registry(parseReference(`${A}/z:1`), 'source')).toBe(src); // a binding is per host
      expect(await usersSeen(s, A, 'source')).toEqual([undefined, 'bob']);
      expect(await usersSeen(s, A, 'destination')).toEqual([undefined, 'alice']);
    } finally {
      await s.close();
    }
  });

  it('a side binding wins over a side-less one; the other side falls back to its authfile', async () => {
    const authfile = join(dir, 'auth.json');
    writeFileSync(authfile, JSON.stringify({ auths: { [A]: { auth: Buffer.from('carol:carol-pw').toString('base64') } } }));
    const s = session({
      credentials: [{ registry: A, credential: basic('any') }, { registry: B, side: 'destination', credential: basic('dave') }],
      authfiles: { source: authfile },
    });
    try {
      expect(await usersSeen(s, A, 'destination')).toEqual([undefined, 'any']);
      expect(await usersSeen(s, B, 'destination')).toEqual([undefined, 'dave']);
      expect(await usersSeen(s, B, 'source')).toEqual([undefined]); // authfile has no entry for B
    } finally {
      await s.close();
    }
    const s2 = session({ authfiles: { source: authfile } });
    try {
      expect(await usersSeen(s2, A, 'source')).toEqual([undefined, 'carol']);
      expect(await usersSeen(s2, A, 'destination')).toEqual([undefined]); // the default chain: nothing configured
    } finally {
      await s2.close();
    }
  });
});
