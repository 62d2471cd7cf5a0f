/**
 * Rate limits end to end inside the process, against the in-process registry playing Docker
 * Hub's pull limit (MemRegistryOptions.rateLimit): the client keeps what manifest GETs and HEADs
 * announce, the Session warns once per registry when under 10% remain, a 429 at budget 0 says the
 * limit and when it returns (and is not retried), `ops/ratelimit` asks with HEAD only, and
 * inspect reports what it saw.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FerryError } from '../../../src/errors.js';
import { inspect } from '../../../src/ops/inspect.js';
import { rateLimit } from '../../../src/ops/ratelimit.js';
import type { OpContext } from '../../../src/ops/context.js';
import { parseReference } from '../../../src/ref/index.js';
import { RateLimitLog } from '../../../src/registry/rate-limit-log.js';
import { Session } from '../../../src/registry/session.js';
import { RegistrySource } from '../../../src/transports/registry.js';
import { seedImage, type MemRateLimit } from '../../helpers/mem-registry.js';
import { basicCred, RETRY, startReg, tempDir } from '../http/support.js';

function ctxFor(warnings: string[] = [], extra: Partial<OpContext> = {}): OpContext {
  const home = tempDir('ferry-home-');
  return {
    plainHttp: true, warn: (m) => warnings.push(m),
    env: { HOME: home, DOCKER_CONFIG: join(home, '.docker'), PATH: '' },
    ...extra,
  };
}

function sessionFor(ctx: OpContext): Session {
  return new Session({ ...ctx, userAgent: 'ferry-test', retry: RETRY });
}

async function hub(rl: Partial<MemRateLimit> = {}, opts: Parameters<typeof startReg>[0] = {}) {
  const rateLimit: MemRateLimit = { limit: 100, remaining: 87, windowSeconds: 21600, source: '203.0.113.7', ...rl };
  const reg = await startReg({ ...opts, rateLimit });
  const seeded = seedImage(reg, 'library/app', 'v1');
  seedImage(reg, 'library/other', 'v1');
  return { reg, rateLimit, seeded };
}

const manifestRequests = (reg: Awaited<ReturnType<typeof hub>>['reg']) =>
  reg.requests.filter((r) => r.path.includes('/manifests/')).map((r) => `${r.method} ${r.status}`);

describe('the client keeps the rate limit manifest answers announce', () => {
  it('HEAD and GET both carry it; only the GET spends a pull; the client and the session expose it', async () => {
    const { reg } = await hub();
    const session = sessionFor(ctxFor());
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const client = session.registry(ref);
      const src = new RegistrySource(client.repository(ref.repository), ref);
      expect(client.rateLimit()).toBeUndefined();
      const d = await src.resolve();
      expect(client.rateLimit()).toMatchObject({ limit: 100, remaining: 87, windowSeconds: 21600, source: '203.0.113.7', anonymous: true });
      await src.fetchManifest(d);
      expect(client.rateLimit()).toMatchObject({ limit: 100, remaining: 86 });
      expect(session.rateLimits.get(reg.host)).toEqual(client.rateLimit());
      expect(manifestRequests(reg)).toEqual(['HEAD 200', 'GET 200']);
    } finally {
      await session.close();
    }
  });

  it('a registry without the headers: nothing kept, manifests resolve exactly as before', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'library/app', 'v1');
    const session = sessionFor(ctxFor());
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const client = session.registry(ref);
      const d = await new RegistrySource(client.repository(ref.repository), ref).resolve();
      expect(d.digest).toBe(seeded.digest);
      expect(client.rateLimit()).toBeUndefined();
      expect(session.rateLimits.entries()).toEqual([[reg.host, undefined]]);
    } finally {
      await session.close();
    }
  });

  it('with credentials the budget is marked authenticated', async () => {
    const { reg } = await hub({}, { auth: 'basic', users: { alice: { password: 'pw', pull: ['*'] } } });
    const session = sessionFor(ctxFor([], { credentials: [{ registry: reg.host, credential: basicCred('alice', 'pw') }] }));
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const client = session.registry(ref);
      await new RegistrySource(client.repository(ref.repository), ref).resolve();
      expect(client.rateLimit()).toMatchObject({ remaining: 87, anonymous: false });
    } finally {
      await session.close();
    }
  });
});

describe('the low-budget warning', () => {
  it('is given once per registry per run, across requests, repositories and sessions sharing the run\'s log', async () => {
    const { reg, rateLimit: rl } = await hub({ remaining: 11 });
    const warnings: string[] = [];
    const ctx = ctxFor(warnings, { rateLimits: new RateLimitLog() });
    for (const repo of ['library/app', 'library/other', 'library/app']) {
      const session = sessionFor(ctx); // a fresh session each time, one log for the run
      try {
        const ref = parseReference(`${reg.host}/${repo}:v1`);
        const src = new RegistrySource(session.registry(ref).repository(ref.repository), ref);
        await src.fetchManifest(await src.resolve());
      } finally {
        await session.close();
      }
    }
    expect(rl.remaining).toBe(8);
    expect(warnings).toEqual([`${reg.host}: only 9 of 100 pulls left per 6 h (source 203.0.113.7, anonymous); log in for a higher limit: ferry login ${reg.host}`]);
  });

  it('is not given at 10% or more', async () => {
    const { reg } = await hub({ remaining: 11 });
    const warnings: string[] = [];
    const session = sessionFor(ctxFor(warnings));
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const src = new RegistrySource(session.registry(ref).repository(ref.repository), ref);
      await src.fetchManifest(await src.resolve()); // 11 → 10 left
      expect(warnings).toEqual([]);
    } finally {
      await session.close();
    }
  });
});

describe('a 429 at budget 0', () => {
  async function fail(rl: Partial<MemRateLimit>) {
    const { reg, seeded } = await hub({ remaining: 0, ...rl });
    const session = sessionFor(ctxFor());
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const src = new RegistrySource(session.registry(ref).repository(ref.repository), ref);
      const err = await src.resolve().then((d) => src.fetchManifest(d)).then(() => undefined, (e: FerryError) => e);
      expect(err, 'the pull should have failed').toBeDefined();
      return { err: err!, reg, seeded };
    } finally {
      await session.close();
    }
  }

  it('says the limit and that the rolling window returns budget gradually, with the login hint; one GET, no retries', async () => {
    const { err, reg, seeded } = await fail({});
    expect(err.code).toBe('E_RATE_LIMITED');
    expect(err.exitCode).toBe(5);
    // After the (free) HEAD, the manifest is fetched by the digest it gave.
    expect(err.message).toBe(`${reg.host}/library/app@${seeded.digest}: rate limit reached while fetching manifest (TOOMANYREQUESTS: You have reached your pull rate limit): 0 of 100 pulls left for 203.0.113.7; the registry counts pulls over a rolling window of 21600 s (6 h), so the budget returns gradually as earlier pulls age out`);
    expect(err.message).not.toContain('\n');
    expect(err.hint).toBe(`log in for a higher limit: ferry login ${reg.host}`);
    expect(manifestRequests(reg)).toEqual(['HEAD 200', 'GET 429']);
  });

  it('says when the window resets when Retry-After is sent', async () => {
    const { err } = await fail({ exhaustedHeaders: { 'Retry-After': '3600' } });
    expect(err.message).toMatch(/: 0 of 100 pulls left for 203\.0\.113\.7; the limit resets in (1 h|59 min 5\d s) \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/);
  });

  it('x-ratelimit-reset (epoch seconds) is read too', async () => {
    const at = Math.floor(Date.now() / 1000) + 600;
    const { err } = await fail({ exhaustedHeaders: { 'X-RateLimit-Reset': String(at) } });
    expect(err.message).toContain(`the limit resets in `);
    expect(err.message).toContain(`(at ${new Date(at * 1000).toISOString().replace('.000Z', 'Z')})`);
  });

  it('a 429 that says nothing about a budget is still retried (the retry layer is unchanged for it)', async () => {
    const reg = await startReg();
    seedImage(reg, 'library/app', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\// }, times: 1, action: { kind: 'status', status: 429, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } });
    const session = sessionFor(ctxFor());
    try {
      const ref = parseReference(`${reg.host}/library/app:v1`);
      const src = new RegistrySource(session.registry(ref).repository(ref.repository), ref);
      await src.fetchManifest({ ...(await src.resolve()) });
      expect(reg.requests.filter((r) => r.method === 'GET' && r.path.includes('/manifests/')).map((r) => r.status)).toEqual([429, 200]);
    } finally {
      await session.close();
    }
  });
});

describe('ops: ratelimit and inspect', () => {
  it('ratelimit asks with HEAD only and reports the budget', async () => {
    const { reg, rateLimit: rl } = await hub();
    const r = await rateLimit(`${reg.host}/library/app:v1`, ctxFor());
    expect(r).toMatchObject({ reference: `${reg.host}/library/app:v1`, registry: reg.host, anonymous: true, rateLimit: { limit: 100, remaining: 87, windowSeconds: 21600, source: '203.0.113.7' } });
    expect(reg.requests.map((x) => x.method)).toEqual(['HEAD']);
    expect(rl.remaining).toBe(87);
  });

  it('ratelimit at budget 0 still answers (HEAD is free) and warns nothing', async () => {
    const { reg } = await hub({ remaining: 0 });
    const warnings: string[] = [];
    const r = await rateLimit(`${reg.host}/library/app:v1`, ctxFor(warnings));
    expect(r.rateLimit).toMatchObject({ remaining: 0 });
    expect(warnings).toEqual([]);
    expect(reg.requests.map((x) => x.method)).toEqual(['HEAD']);
  });

  it('ratelimit against a registry without headers: no rateLimit, no error', async () => {
    const reg = await startReg();
    seedImage(reg, 'library/app', 'v1');
    const r = await rateLimit(`${reg.host}/library/app:v1`, ctxFor());
    expect(r.rateLimit).toBeUndefined();
    expect(reg.requests.map((x) => x.method)).toEqual(['HEAD']);
  });

  it('ratelimit of a missing tag is E_NOT_FOUND from the HEAD alone', async () => {
    const { reg } = await hub();
    const err = await rateLimit(`${reg.host}/library/app:nope`, ctxFor()).catch((e: FerryError) => e);
    expect((err as FerryError).code).toBe('E_NOT_FOUND');
    expect(reg.requests.map((x) => x.method)).toEqual(['HEAD']);
  });

  it('inspect reports the last budget the registry announced', async () => {
    const { reg } = await hub();
    const r = await inspect(`${reg.host}/library/app:v1`, {}, ctxFor());
    expect(r.rateLimit).toMatchObject({ limit: 100, remaining: 86, windowSeconds: 21600, source: '203.0.113.7' });
    const plain = await startReg();
    seedImage(plain, 'library/app', 'v1');
    expect((await inspect(`${plain.host}/library/app:v1`, {}, ctxFor())).rateLimit).toBeUndefined();
  });
});

describe('cli: what ferry ratelimit asks about', () => {
  it('no REF is Docker Hub\'s probe image, so --creds binds to docker.io', async () => {
    const { Command } = await import('commander');
    const { commandScope, bindCredentials } = await import('../../../src/cli/credentials.js');
    const scopeOf = async (argv: string[]) => {
      const cmd = new Command('ratelimit').argument('[reference]').action(() => {});
      await cmd.parseAsync(argv, { from: 'user' });
      return commandScope(cmd);
    };
    const none = await scopeOf([]);
    expect(none.source.map((l) => (l.transport === 'docker' ? l.ref.toString() : l.transport))).toEqual(['docker.io/ratelimitpreview/test:latest']);
    const bound = await bindCredentials({ creds: 'me:tok' }, none, async () => '');
    expect(bound.credentials.map((b) => b.registry)).toEqual(['docker.io']);
    const other = await scopeOf(['ghcr.io/org/app:1']);
    expect(other.source.map((l) => (l.transport === 'docker' ? l.ref.registry : l.transport))).toEqual(['ghcr.io']);
  });
});
