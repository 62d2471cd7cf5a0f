/**
 * Proves the integration harness: the real distribution registry in its three
 * modes, our token server, OCI-layout fixtures and skopeo seeding.
 * Under CI=true a missing binary fails this suite instead of skipping it.
 */
import { connect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { inspectDigest, pushWithSkopeo, registryArgs, serialisedPush, skopeo } from '../helpers/skopeo.js';

const has =
  requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('openssl') && requireBinary('perl');

const T = { timeout: 60_000 };

/** Resolves true if something accepts TCP connections on host:port. */
function portOpen(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.replace(/^https?:\/\//, '').split(':');
  return new Promise((resolve) => {
    const s = connect({ host: host!, port: Number(port) });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function inspectCode(reg: RealRegistry, repo: string, tag: string, user?: string | null): Promise<number> {
  const r = await skopeo(['inspect', '--raw', ...registryArgs(reg, '', user), `docker://${reg.host}/${repo}:${tag}`]);
  return r.code;
}

async function expectStoppedCleanly(reg: RealRegistry): Promise<void> {
  await reg.stop();
  await reg.stop(); // idempotent
  expect(await portOpen(reg.host)).toBe(false);
  if (reg.tokenServer) expect(await portOpen(reg.tokenServer.url)).toBe(false);
  expect(existsSync(reg.storageDir)).toBe(false);
}

describe('skopeo push queue (suite setup never pushes shared blobs into one registry at once)', () => {
  it('pushes into one host run one at a time, in order; other hosts run alongside; a failure does not block the queue', async () => {
    const running = new Map<string, number>();
    const peak = new Map<string, number>();
    const order: string[] = [];
    let alongside = false;
    const job = (host: string, name: string, fail = false) => serialisedPush(host, async () => {
      if (host === 'b' && (running.get('a') ?? 0) > 0) alongside = true;
      const n = (running.get(host) ?? 0) + 1;
      running.set(host, n);
      peak.set(host, Math.max(peak.get(host) ?? 0, n));
      await new Promise((r) => setTimeout(r, 20));
      running.set(host, n - 1);
      order.push(name);
      if (fail) throw new Error(`${name} failed`);
      return name;
    });
    const results = await Promise.allSettled([job('a', 'a1'), job('a', 'a2', true), job('a', 'a3'), job('b', 'b1'), job('b', 'b2')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(peak.get('a')).toBe(1);
    expect(peak.get('b')).toBe(1);
    expect(order.filter((n) => n.startsWith('a'))).toEqual(['a1', 'a2', 'a3']);
    expect(alongside).toBe(true); // b did not wait for a
  });
});

describe.skipIf(!has)('integration harness (real docker-registry + skopeo)', () => {
  let layoutDir: TempDir;
  let single: OciLayoutResult;
  let multi: OciLayoutResult;

  beforeAll(async () => {
    layoutDir = makeTempDir('layout');
    single = await makeOciLayout(layoutDir.path, { tag: 'v1', layers: 3, layerSize: 64 * 1024, seed: 'harness' });
    multi = await makeOciLayout(layoutDir.path, {
      tag: 'multi',
      seed: 'harness-multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
  }, 60_000);
  afterAll(() => layoutDir?.remove());

  it('builds reproducible OCI layouts', async () => {
    const again = makeTempDir('layout-again');
    try {
      const r = await makeOciLayout(again.path, { tag: 'v1', layers: 3, layerSize: 64 * 1024, seed: 'harness' });
      expect(r.manifestDigest).toBe(single.manifestDigest);
      expect(single.indexDigest).toBeUndefined();
      expect(multi.indexDigest).toBe(multi.digest);
      expect(multi.manifests).toHaveLength(2);
      const index = JSON.parse(readFileSync(`${layoutDir.path}/index.json`, 'utf8')) as { manifests: unknown[] };
      expect(index.manifests).toHaveLength(2); // both tags share one layout
    } finally {
      again.remove();
    }
  });

  it('open mode: push with skopeo, read back byte-identical, stop closes the port', T, async () => {
    const reg = await startRegistry('open');
    try {
      expect(reg.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(reg.caFile).toBeUndefined();
      expect(await pushWithSkopeo(layoutDir.path, 'v1', reg, 'library/single')).toBe(single.digest);
      expect(await pushWithSkopeo(layoutDir.path, 'multi', reg, 'library/multi', { all: true })).toBe(multi.digest);
      for (const m of multi.manifests) expect(await inspectDigest(reg, 'library/multi', m.digest)).toBe(m.digest);
      const raw = await skopeo(['inspect', '--raw', ...registryArgs(reg, ''), `docker://${reg.host}/library/single:v1`]);
      expect(JSON.parse(raw.stdout).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(readFileSync(reg.logFile, 'utf8')).toMatch(/PUT \/v2\/library\/single\/manifests\/v1/);
    } finally {
      await expectStoppedCleanly(reg);
    }
  });

  it('htpasswd-tls mode: https with harness CA, alice authenticates, others are refused', T, async () => {
    const reg = await startRegistry('htpasswd-tls');
    try {
      expect(reg.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(reg.caFile && existsSync(reg.caFile)).toBeTruthy();
      expect(existsSync(`${reg.certDir}/ca.crt`)).toBe(true);
      expect(Object.keys(reg.users)).toEqual(['alice']);
      const challenge = await new Promise<{ status: number; auth: string }>((resolve, reject) => {
        const req = httpsRequest(`${reg.url}/v2/`, { ca: readFileSync(reg.caFile!) }, (res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0, auth: String(res.headers['www-authenticate']) });
        });
        req.on('error', reject);
        req.end();
      });
      expect(challenge).toEqual({ status: 401, auth: 'Basic realm="ferry-test-realm"' });

      expect(await pushWithSkopeo(layoutDir.path, 'v1', reg, 'team/app')).toBe(single.digest);
      expect(await inspectDigest(reg, 'team/app', 'v1', 'alice')).toBe(single.digest);
      expect(await inspectCode(reg, 'team/app', 'v1', null)).not.toBe(0);
      expect(await inspectCode(reg, 'team/app', 'v1', 'alice:wrong-password')).not.toBe(0);
      // Without the CA, TLS verification must fail.
      const noCa = await skopeo(['inspect', '--raw', '--creds', `alice:${reg.users.alice}`, `docker://${reg.host}/team/app:v1`]);
      expect(noCa.code).not.toBe(0);
      expect(noCa.stderr).toMatch(/certificate|x509/i);
    } finally {
      await expectStoppedCleanly(reg);
    }
  });

  it('token mode: alice pushes, bob reads, anonymous reads public/ only', T, async () => {
    const reg = await startRegistry('token');
    const ts = reg.tokenServer!;
    try {
      expect(ts.realm).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/token$/);
      await pushWithSkopeo(layoutDir.path, 'v1', reg, 'private/app', { user: 'alice' });
      await pushWithSkopeo(layoutDir.path, 'v1', reg, 'public/app', { user: 'alice' });

      expect(await inspectDigest(reg, 'private/app', 'v1', 'bob')).toBe(single.digest);
      expect(await inspectDigest(reg, 'public/app', 'v1', null)).toBe(single.digest);
      expect(await inspectCode(reg, 'private/app', 'v1', null)).not.toBe(0);
      expect(await inspectCode(reg, 'private/app', 'v1', 'bob:wrong-password')).not.toBe(0);
      await expect(pushWithSkopeo(layoutDir.path, 'v1', reg, 'private/bob', { user: 'bob' })).rejects.toThrow(/skopeo copy/);

      const reqs = ts.requests;
      expect(reqs.every((r) => r.method === 'GET' && r.path === '/token')).toBe(true);
      expect(reqs.every((r) => r.query.service?.[0] === 'ferry-test-registry')).toBe(true);
      const alicePush = reqs.find((r) => r.user === 'alice' && r.scopes.includes('repository:private/app:pull,push'));
      expect(alicePush?.hasAuth).toBe(true);
      expect(alicePush?.granted).toEqual([{ type: 'repository', name: 'private/app', actions: ['pull', 'push'] }]);
      const anonPublic = reqs.find((r) => !r.hasAuth && r.scopes.includes('repository:public/app:pull'));
      expect(anonPublic?.granted).toEqual([{ type: 'repository', name: 'public/app', actions: ['pull'] }]);
      const anonPrivate = reqs.find((r) => !r.hasAuth && r.scopes.includes('repository:private/app:pull'));
      expect(anonPrivate?.status).toBe(200);
      expect(anonPrivate?.granted).toEqual([]);
      expect(reqs.some((r) => r.hasAuth && r.status === 401)).toBe(true); // bob's wrong password
      const bobPush = reqs.find((r) => r.user === 'bob' && r.scopes.some((s) => s.startsWith('repository:private/bob:')));
      expect(bobPush?.granted.flatMap((g) => g.actions) ?? []).not.toContain('push');
      expect(JSON.stringify(reqs)).not.toMatch(/secret-pw|wrong-password/);
    } finally {
      await expectStoppedCleanly(reg);
    }
  });

  it('token mode over https: registry and token server share the harness CA', T, async () => {
    const reg = await startRegistry('token', { tls: true });
    try {
      expect(reg.url.startsWith('https://')).toBe(true);
      expect(reg.tokenServer!.realm.startsWith('https://127.0.0.1:')).toBe(true);
      expect(await pushWithSkopeo(layoutDir.path, 'multi', reg, 'private/multi', { all: true })).toBe(multi.digest);
      expect(await inspectDigest(reg, 'private/multi', 'multi', 'bob')).toBe(multi.digest);
      expect(reg.tokenServer!.requests.length).toBeGreaterThan(0);
    } finally {
      await expectStoppedCleanly(reg);
    }
  });
});
