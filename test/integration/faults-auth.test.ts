/**
 * Fault injection, part 2: a token-auth registry (real distribution + token-server.ts) behind the
 * fault proxy, which also fronts the token endpoint (the challenge's realm is rewritten to it).
 * A token endpoint that fails once, a blob GET redirected to another host (`localhost:<port2>`,
 * which must get no Authorization), a push whose uploads meet 5xx and resets, and failures under
 * --debug: no password, Basic credential or bearer token ever appears in stderr.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireBinary, type TempDir } from '../helpers/binaries.js';
import type { FaultProxy } from '../helpers/fault-proxy.js';
import type { OciLayoutResult } from '../helpers/images.js';
import type { RealRegistry } from '../helpers/real-registry.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { inspectDigest } from '../helpers/skopeo.js';
import { type FaultImage, faultImage } from './faults-support.js';
import { expectBlobs, layoutEntry } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const LAYER = 256 * 1024;

describe.skipIf(!has)('token auth through a faulty network', () => {
  let f: FaultImage | undefined;
  let reg: RealRegistry;
  let proxy: FaultProxy;
  let src: TempDir;
  let image: OciLayoutResult;
  let blobs: string[];
  let ref: string;
  let creds: string;
  let fresh: (name?: string) => string;

  beforeAll(async () => {
    f = await faultImage({ name: 'faults-auth', mode: 'token', repo: 'team/app', layers: 2, layerSize: LAYER });
    ({ reg, proxy, src, image, blobs, ref, fresh } = f);
    creds = `alice:${reg.users['alice']!}`;
  });
  afterAll(async () => {
    await f?.stop();
  });
  beforeEach(() => proxy.reset());

  const layer = (i: number): RegExp => new RegExp(`/blobs/${image.manifests[0]!.layerDigests[i]!}$`);
  const pull = (dir: string, ...extra: string[]): Promise<CliResult> =>
    runCli(['pull', '-q', '--debug', '--creds', creds, ...extra, ref, `oci:${dir}`]);

  /** A failure under --debug (which adds stack traces): the class's exit status, a `ferry:` line,
   * not ferry's "bug" wording. */
  function expectDebugFailure(r: CliResult, code: number, ...patterns: string[]): void {
    const show = `exit ${r.code}\nstderr:\n${r.stderr}`;
    expect(r.code, show).toBe(code);
    expect(r.stderr, show).toMatch(/^ferry: /m);
    for (const p of patterns) expect(r.stderr.toLowerCase(), show).toContain(p.toLowerCase());
    expect(r.stderr, show).not.toMatch(/unexpected error|this is a bug in ferry/i);
  }

  /** No secret in stderr: the password, the Basic credential, any bearer token ferry sent (as
   * the proxy saw them) or any JWT at all. Proves the run authenticated, so the check has teeth. */
  function expectNoSecrets(r: CliResult): void {
    const sent = proxy.log.map((l) => l.headers['authorization']).filter((a): a is string => typeof a === 'string');
    expect(sent.some((a) => a.startsWith('Bearer '))).toBe(true);
    const secrets = new Set([reg.users['alice']!, Buffer.from(creds).toString('base64'), ...sent.map((a) => a.replace(/^\w+ /, ''))]);
    for (const s of secrets) expect(r.stderr, `secret ${s.slice(0, 6)}… in stderr`).not.toContain(s);
    expect(r.stderr).not.toMatch(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}/);
    expect(r.stderr).toContain('debug:'); // --debug really logged
  }

  it('a token endpoint that fails once (500): retried, the pull verifies, nothing secret logged', async () => {
    const rule = proxy.addRule({ path: new RegExp(`^${reg.tokenServer!.realmPath}$`), action: { kind: 'status', status: 500 } });
    const dir = fresh();
    const r = await pull(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(rule.hits).toBe(1);
    expect(reg.tokenServer!.requests.some((q) => q.user === 'alice' && q.status === 200)).toBe(true);
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    expectBlobs(dir, [image.digest, ...blobs]);
    expectNoSecrets(r);
  });

  it('a token endpoint that always fails (503): a registry failure (exit 5, not 3), nothing at the destination, nothing secret logged', async () => {
    proxy.addRule({ path: new RegExp(`^${reg.tokenServer!.realmPath}$`), times: Infinity, action: { kind: 'status', status: 503 } });
    const dir = fresh();
    const r = await pull(dir);
    expectDebugFailure(r, 5, 'HTTP 503');
    expect(r.stderr).not.toMatch(/authentication failed|credentials rejected/i);
    expect(() => readdirSync(join(dir, 'blobs', 'sha256'))).toThrow();
    const sent = proxy.log.map((l) => l.headers['authorization']).filter((a): a is string => typeof a === 'string');
    expect(sent.length).toBeGreaterThan(0); // the Basic credential went to the token endpoint
    for (const a of sent) expect(r.stderr).not.toContain(a.replace(/^\w+ /, ''));
    expect(r.stderr).not.toContain(reg.users['alice']!);
  });

  it('a blob GET redirected to another host: served there without Authorization, verified', async () => {
    const rule = proxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, times: Infinity, action: { kind: 'redirect' } });
    const dir = fresh();
    const r = await pull(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(rule.hits).toBe(blobs.length);
    const main = proxy.log.filter((l) => l.host === 'main' && /\/blobs\//.test(l.path));
    const there = proxy.log.filter((l) => l.host === 'redirect');
    expect(main.every((l) => typeof l.headers['authorization'] === 'string' && l.headers['authorization'].startsWith('Bearer '))).toBe(true);
    expect(there.map((l) => l.path).sort()).toEqual(main.map((l) => l.path).sort());
    for (const l of there) {
      expect(l.headers['authorization'], l.path).toBeUndefined();
      expect(l.headers['host']).toBe(proxy.redirectHost);
    }
    expectBlobs(dir, [image.digest, ...blobs]);
    expectNoSecrets(r);
  });

  it('a redirected blob reset mid-body at the other host: resumed there (Range, still no Authorization), verified', async () => {
    proxy.addRule({ method: 'GET', path: layer(0), times: Infinity, action: { kind: 'redirect' } });
    proxy.addRule({ host: 'redirect', method: 'GET', path: layer(0), action: { kind: 'reset', afterBytes: LAYER / 2 } });
    const dir = fresh();
    const r = await pull(dir);
    expect(r.code, r.stderr).toBe(0);
    const there = proxy.log.filter((l) => l.host === 'redirect');
    expect(there.length).toBeGreaterThanOrEqual(2);
    expect(there.some((l) => typeof l.headers['range'] === 'string')).toBe(true);
    for (const l of there) expect(l.headers['authorization']).toBeUndefined();
    expectBlobs(dir, [image.digest, ...blobs]);
    expectNoSecrets(r);
  });

  it('a blob reset on every attempt under --debug: exit 5, nothing secret logged', async () => {
    proxy.addRule({ method: 'GET', path: layer(1), times: Infinity, action: { kind: 'reset', afterBytes: 100 } });
    const dir = fresh();
    const r = await pull(dir);
    expectDebugFailure(r, 5);
    expectNoSecrets(r);
  });

  describe('push', () => {
    it('upload starts meeting 503 twice, a blob PUT 503 and a manifest PUT 502: retried, the registry holds the image intact', async () => {
      const starts = proxy.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, times: 2, action: { kind: 'status', status: 503 } });
      const puts = proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\/.+/, action: { kind: 'status', status: 503 } });
      const manifests = proxy.addRule({ method: 'PUT', path: /\/manifests\//, action: { kind: 'status', status: 502 } });
      const repo = 'team/pushed';
      const r = await runCli(['push', '-q', '--debug', '--creds', creds, `oci:${src.path}:v1`, `${proxy.host}/${repo}:v1`]);
      expect(r.code, r.stderr).toBe(0);
      expect(starts.hits).toBe(2);
      expect(puts.hits).toBe(1);
      expect(manifests.hits).toBe(1);
      expect(await inspectDigest(reg, repo, 'v1', 'alice')).toBe(image.digest);
      expectNoSecrets(r);
    });

    it('a manifest PUT refused with 500 on every attempt: exit 5, no tag, nothing secret logged', async () => {
      proxy.addRule({ method: 'PUT', path: /\/manifests\//, times: Infinity, action: { kind: 'status', status: 500 } });
      const repo = 'team/refused';
      const r = await runCli(['push', '-q', '--debug', '--creds', creds, `oci:${src.path}:v1`, `${proxy.host}/${repo}:v1`]);
      expectDebugFailure(r, 5, '500');
      await expect(inspectDigest(reg, repo, 'v1', 'alice')).rejects.toThrow();
      expectNoSecrets(r);
    });
  });
});
