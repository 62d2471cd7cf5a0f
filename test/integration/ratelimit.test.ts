/**
 * Docker Hub's pull limit through the built CLI: the REAL distribution registry behind a small
 * reverse proxy (127.0.0.1, this file only) that adds Hub's rate-limit headers to manifest
 * answers, spends one pull per manifest GET (HEAD is free), counts GETs and HEADs, and answers
 * 429 TOOMANYREQUESTS when the budget is 0.
 *
 * Asserted: `ferry ratelimit` sends HEAD only and reports the numbers (text and --json, and "no
 * rate-limit headers" for a registry without them); inspect shows them (text and --json);
 * --verbose reports the budget at the end; the <10% warning is on stderr exactly once and never
 * on stdout; a pull at budget 0 exits 5 with the reset wording, the login hint and no stack
 * trace, after one GET (no retries of a spent budget).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli, type RunCliOptions } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import { expectDocument } from './json-contract.js';
import { expectFailure, ferryJson, ferryOk, type InspectDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const SOURCE = '203.0.113.7';
const MANIFEST = /^\/v2\/.+\/manifests\/[^/]+$/;

interface HubProxy {
  host: string;
  budget: { limit: number; remaining: number; window: number; exhaustedHeaders: Record<string, string> };
  counts: { GET: number; HEAD: number };
  stop(): Promise<void>;
}

/** Docker Hub's pull limit in front of `target` (host:port of the real registry). */
async function startHubProxy(target: string): Promise<HubProxy> {
  const budget = { limit: 100, remaining: 87, window: 21600, exhaustedHeaders: {} as Record<string, string> };
  const counts = { GET: 0, HEAD: 0 };
  const hubHeaders = () => ({
    'ratelimit-limit': `${budget.limit};w=${budget.window}`,
    'ratelimit-remaining': `${Math.max(0, budget.remaining)};w=${budget.window}`,
    'docker-ratelimit-source': SOURCE,
  });
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const manifest = MANIFEST.test(path) && (req.method === 'GET' || req.method === 'HEAD');
    if (manifest) counts[req.method as 'GET' | 'HEAD']++;
    if (manifest && req.method === 'GET' && budget.remaining <= 0) {
      const body = JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit' }] });
      res.writeHead(429, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...hubHeaders(), ...budget.exhaustedHeaders });
      res.end(body);
      req.resume();
      return;
    }
    const up = http.request({ host, port, method: req.method, path: req.url, headers: { ...req.headers, host: target } }, (ur) => {
      const headers = { ...ur.headers } as Record<string, string | string[] | number>;
      if (manifest) {
        if (req.method === 'GET' && ur.statusCode === 200) budget.remaining--;
        Object.assign(headers, hubHeaders());
      }
      res.writeHead(ur.statusCode ?? 502, headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${addr.port}`, budget, counts,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe.skipIf(!has)('Docker Hub rate limits (real registry behind a Hub-like proxy)', () => {
  let reg: RealRegistry;
  let proxy: HubProxy;
  let src: TempDir;
  let work: TempDir;
  let image: OciLayoutResult;
  let app: string; // proxy host/library/app
  let n = 0;
  const run = (args: string[], opts: RunCliOptions = {}) => runCli(args, { ...opts, env: { CI: 'true', ...opts.env } });
  const ok = (args: string[]) => ferryOk(args, { env: { CI: 'true' } });
  const json = <T>(args: string[]) => ferryJson<T>(args, { env: { CI: 'true' } });
  const line = (remaining: number) => `${proxy.host}: ${remaining} of 100 pulls left per 6 h (source ${SOURCE}, anonymous)`;

  beforeAll(async () => {
    src = makeTempDir('ratelimit-src');
    work = makeTempDir('ratelimit-work');
    image = await makeOciLayout(src.path, { tag: 'v1', layers: 1, layerSize: 4096, seed: 'ratelimit' });
    await makeOciLayout(src.path, { tag: 'v2', layers: 1, layerSize: 4096, seed: 'ratelimit-2' });
    reg = await startRegistry('open');
    expect(await pushWithSkopeo(src.path, 'v1', reg, 'library/app')).toBe(image.digest);
    await pushWithSkopeo(src.path, 'v2', reg, 'library/app');
    proxy = await startHubProxy(reg.host);
    app = `${proxy.host}/library/app`;
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
    src?.remove();
    work?.remove();
  });
  beforeEach(() => {
    proxy.budget.remaining = 87;
    proxy.budget.exhaustedHeaders = {};
    proxy.counts.GET = 0;
    proxy.counts.HEAD = 0;
  });

  it('ferry ratelimit reports the budget with HEAD requests only', async () => {
    const r = await ok(['ratelimit', `${app}:v1`]);
    expect(r.stdout).toBe(`${line(87)}\n`);
    expect(r.stderr).toBe('');
    expect(proxy.counts).toEqual({ GET: 0, HEAD: 1 });
    expect(proxy.budget.remaining).toBe(87);
  });

  it('ferry ratelimit --json is the documented document, still HEAD only', async () => {
    const doc = await json<Record<string, unknown>>(['ratelimit', `${app}:v1`]);
    expectDocument(doc, 'ratelimit');
    expect(doc).toEqual({
      schemaVersion: 1, command: 'ratelimit', source: `${app}:v1`, registry: proxy.host, anonymous: true,
      rateLimit: { limit: 100, remaining: 87, windowSeconds: 21600, source: SOURCE },
    });
    expect(proxy.counts.GET).toBe(0);
  });

  it('ferry ratelimit at budget 0 answers from the HEAD (free) and says how the window works', async () => {
    proxy.budget.remaining = 0;
    const r = await ok(['ratelimit', `${app}:v1`]);
    expect(r.stdout).toBe(`${line(0)}; the registry counts pulls over a rolling window of 21600 s (6 h), so the budget returns gradually as earlier pulls age out\n`);
    expect(proxy.counts).toEqual({ GET: 0, HEAD: 1 });
  });

  it('ferry ratelimit against a registry that sends no headers says so, exit 0', async () => {
    const r = await ok(['ratelimit', `${reg.host}/library/app:v1`]);
    expect(r.stdout).toBe(`${reg.host}: no rate-limit headers sent (an unlimited account, or a registry that does not publish them)\n`);
    const doc = await json<Record<string, unknown>>(['ratelimit', `${reg.host}/library/app:v1`]);
    expectDocument(doc, 'ratelimit');
    expect(doc).not.toHaveProperty('rateLimit');
  });

  it('inspect shows the budget: a Rate limit: line, and rateLimit in --json', async () => {
    const r = await ok(['inspect', `${app}:v1`]);
    // HEAD (87) then the GET that spends one: the last answer said 86.
    expect(r.stdout).toContain(`\nRate limit: 86 of 100 pulls left per 6 h (source ${SOURCE}, anonymous)\n`);
    expect(proxy.counts).toEqual({ GET: 1, HEAD: 1 });
    const doc = await json<InspectDoc & { rateLimit?: unknown }>(['inspect', `${app}:v1`]);
    expectDocument(doc, 'inspect');
    expect(doc.rateLimit).toEqual({ limit: 100, remaining: 85, windowSeconds: 21600, source: SOURCE });
    const plain = await json<InspectDoc & { rateLimit?: unknown }>(['inspect', `${reg.host}/library/app:v1`]);
    expect(plain).not.toHaveProperty('rateLimit');
    expect((await ok(['inspect', `${reg.host}/library/app:v1`])).stdout).not.toContain('Rate limit:');
  });

  it('--verbose reports each registry\'s last budget on stderr at the end (and only with -v)', async () => {
    const v = await ok(['inspect', '-v', `${app}:v1`]);
    expect(v.stderr).toBe(`rate limit: ${line(86)}\n`);
    const out = join(work.path, `pull-${++n}`);
    const p = await ok(['pull', '--verbose', `${app}:v1`, `${reg.host}/library/app:v2`, `oci:${out}`]);
    expect(p.stderr).toContain(`rate limit: ${line(85)}\n`);
    expect(p.stderr).toContain(`rate limit: ${reg.host}: no rate-limit headers sent\n`);
    expect(p.stdout).not.toContain('rate limit');
    const quiet = await ok(['inspect', `${app}:v1`]);
    expect(quiet.stderr).toBe('');
  });

  it('under 10% left: one warning on stderr per run, never on stdout', async () => {
    proxy.budget.remaining = 9;
    const out = join(work.path, `pull-${++n}`);
    // Two images: HEAD + GET each, every answer under 10%.
    const r = await run(['pull', `${app}:v1`, `${app}:v2`, `oci:${out}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.counts).toEqual({ GET: 2, HEAD: 2 });
    const warnings = r.stderr.split('\n').filter((l) => l.includes('pulls left'));
    expect(warnings).toEqual([`ferry: warning: ${proxy.host}: only 9 of 100 pulls left per 6 h (source ${SOURCE}, anonymous); log in for a higher limit: ferry login ${proxy.host}`]);
    expect(r.stdout).not.toContain('pulls left');
    expectDocument(JSON.parse(r.stdout), 'pull');
  });

  it('no warning at 10% or more', async () => {
    proxy.budget.remaining = 11;
    const r = await ok(['inspect', `${app}:v1`]);
    expect(r.stderr).toBe('');
  });

  it('a pull at budget 0 exits 5 saying the limit and how the window returns it, after one GET', async () => {
    proxy.budget.remaining = 0;
    const out = join(work.path, `pull-${++n}`);
    const r = await run(['pull', `${app}:v1`, `oci:${out}`]);
    expectFailure(r, 5, 'rate limit reached while fetching manifest (TOOMANYREQUESTS: You have reached your pull rate limit)',
      `0 of 100 pulls left for ${SOURCE}; the registry counts pulls over a rolling window of 21600 s (6 h), so the budget returns gradually`,
      `  hint: log in for a higher limit: ferry login ${proxy.host}`);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ferry: ') && !l.startsWith('ferry: warning:'))).toHaveLength(1);
    expect(proxy.counts.GET).toBe(1); // a spent budget is not retried
    const j = await run(['pull', `${app}:v1`, `oci:${out}`, '--json']);
    expect(j.code).toBe(5);
    expect(JSON.parse(j.stdout).error).toMatchObject({ code: 'E_RATE_LIMITED', exitCode: 5 });
  });

  it('a 429 with Retry-After says when the window resets', async () => {
    proxy.budget.remaining = 0;
    proxy.budget.exhaustedHeaders = { 'retry-after': '7200' };
    const r = await run(['inspect', `${app}:v1`]);
    expectFailure(r, 5, /0 of 100 pulls left for 203\.0\.113\.7; the limit resets in (2 h|1 h 59 min) \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/m);
    expect(proxy.counts.GET).toBe(1); // beyond the retry layer's Retry-After cap: surfaced, not waited for
  });
});
