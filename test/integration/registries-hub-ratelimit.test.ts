/**
 * Docker Hub's pull rate limit through the built CLI, against the emulated Hub (the real
 * distribution registry behind registry-1.docker.io / auth.docker.io, reached with --resolve;
 * its front sends ratelimit-limit / ratelimit-remaining / docker-ratelimit-source on manifest
 * answers, spends one pull per manifest GET and answers 429 TOOMANYREQUESTS at 0):
 * `ferry ratelimit` with its default probe image asks with HEAD only; inspect and auth explain
 * show the budget; under 10% one warning on stderr; at 0 a pull fails at once saying the budget
 * and how it returns.
 */
import { describe, expect, it } from 'vitest';
import { expectDocument } from './json-contract.js';
import { expectFailure } from './support.js';
import { CREDENTIAL_SOURCES, HAS_BINARIES, pushImage, useEmulations } from './registries-support.js';

describe.skipIf(!HAS_BINARIES)('emulated Docker Hub: rate limits', () => {
  const s = useEmulations(['dockerhub']);
  const hub = () => s.ems.get('dockerhub')!;
  let ready: Promise<void> | undefined;
  /** ratelimitpreview/test:latest (Docker's probe image) and library/ferry-rl:v1 exist. */
  const seed = (): Promise<void> => (ready ??= (async () => {
    const env = s.sourceEnv(hub(), CREDENTIAL_SOURCES[0]!);
    await pushImage(s, hub(), 'docker.io/ratelimitpreview/test:latest', env);
    await pushImage(s, hub(), 'docker.io/library/ferry-rl:v1', env);
  })());

  it('ferry ratelimit (default probe image, anonymous): the budget from HEAD requests only; the budget is unchanged', async () => {
    await seed();
    const rl = hub().rateLimit!;
    rl.reset(100);
    const r = await s.ferry(hub(), ['ratelimit']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('docker.io: 100 of 100 pulls left per 6 h (source 127.0.0.1, anonymous)\n');
    expect(rl.heads).toBeGreaterThan(0);
    expect(rl.gets).toBe(0);
    const j = await s.ferry(hub(), ['ratelimit', '--json']);
    const doc = JSON.parse(j.stdout) as Record<string, unknown>;
    expectDocument(doc, 'ratelimit');
    expect(doc).toMatchObject({ source: 'docker.io/ratelimitpreview/test:latest', registry: 'docker.io', anonymous: true, rateLimit: { limit: 100, remaining: 100, windowSeconds: 21600, source: '127.0.0.1' } });
    expect(rl.gets).toBe(0);
  });

  it('logged in (docker config auths for https://index.docker.io/v1/): the budget is the account\'s', async () => {
    await seed();
    hub().rateLimit!.reset(200);
    const env = s.sourceEnv(hub(), CREDENTIAL_SOURCES[0]!);
    const j = JSON.parse((await s.ferry(hub(), ['ratelimit', '--json'], env)).stdout) as { anonymous: boolean; rateLimit: { remaining: number } };
    expect(j.anonymous).toBe(false);
    expect(j.rateLimit.remaining).toBe(200);
    expect(hub().rateLimit!.gets).toBe(0);
  });

  it('inspect (a GET: one pull) shows the budget; auth explain (HEAD) shows it without spending one', async () => {
    await seed();
    const rl = hub().rateLimit!;
    rl.reset(100);
    const i = await s.ferry(hub(), ['inspect', 'ferry-rl:v1']);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stdout).toMatch(/^Rate limit: +99 of 100 pulls left per 6 h \(source 127\.0\.0\.1, anonymous\)$/m);
    expect(rl.gets).toBe(1);
    const e = await s.ferry(hub(), ['auth', 'explain', 'ferry-rl:v1']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^Rate limit: +99 of 100 pulls left per 6 h/m);
    expect(e.stdout).toMatch(/^Registry: +docker\.io \(Docker Hub\), API at registry-1\.docker\.io$/m);
    expect(e.stdout).toMatch(/^Challenge: +Bearer realm="https:\/\/auth\.docker\.io\/token" service="registry\.docker\.io"$/m);
    expect(rl.gets).toBe(1);
  });

  it('under 10% left: one warning on stderr (with the login hint for anonymous), stdout only the result', async () => {
    await seed();
    const rl = hub().rateLimit!;
    rl.reset(100);
    rl.remaining = 6;
    const r = await s.ferry(hub(), ['pull', '-q', 'ferry-rl:v1', `oci:${s.dir('low')}:v1`]);
    expect(r.code, r.stderr).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => /pulls left/.test(l));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^ferry: warning: docker\.io: only [56] of 100 pulls left per 6 h.*ferry login docker\.io/);
    expect(r.stdout).not.toMatch(/pulls left/);
  });

  it('at 0: the pull fails at once (no backoff on a spent budget) with exit 5, the budget and how it returns; nothing written', async () => {
    await seed();
    const rl = hub().rateLimit!;
    rl.reset(100);
    rl.remaining = 0;
    const out = s.dir('spent');
    const t0 = Date.now();
    const r = await s.ferry(hub(), ['pull', `ferry-rl:v1`, `oci:${out}:v1`]);
    const took = Date.now() - t0;
    expectFailure(r, 5, /rate limit reached/, /0 of 100 pulls left/, /rolling window of 21600 s \(6 h\)/, /ferry login docker\.io/);
    expect(took).toBeLessThan(5_000);
    expect(rl.gets).toBeLessThanOrEqual(2);
  });
});
