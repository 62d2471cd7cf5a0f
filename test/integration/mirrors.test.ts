/**
 * Mirrors in the pull path, with real parts: the origin is the real distribution registry with
 * token auth over https; the mirror is the real distribution registry in proxy (pull-through
 * cache) mode in front of it, holding its own upstream credentials. ferry is configured by
 * registries.conf (CONTAINERS_REGISTRIES_CONF) or --mirror and asked for the ORIGIN's name:
 * - it pulls through the mirror, sending nothing to the origin itself (the origin's access log
 *   has no ferry user agent), and --debug says which endpoint served each manifest and blob;
 * - with the origin stopped, cached images still pull through the mirror;
 * - a mirror that is down falls through to the origin;
 * - a mirror that serves other bytes for a digest is refused (exit 6), never replaced;
 * - a blocked registry is E_BLOCKED (exit 9) naming the file and line; pushes never use mirrors.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { freePort, startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { expectDocument } from './json-contract.js';
import { expectFailure, ferryImage, layoutEntry, readBlob, sha256Of } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl');

describe.skipIf(!has)('mirrors: a real pull-through cache in front of a real token-auth origin', () => {
  let work: TempDir;
  let origin: RealRegistry;
  let cache: RealRegistry;
  let image: OciLayoutResult;
  let base: Record<string, string>;
  let n = 0;
  /** A registries.conf in a fresh file; env for ferry using it. */
  const conf = (toml: string): Record<string, string> => {
    const f = join(work.path, `registries-${++n}.conf`);
    writeFileSync(f, toml);
    return { ...base, CONTAINERS_REGISTRIES_CONF: f };
  };
  const mirrorConf = (mirror: string, extra = ''): string => `[[registry]]\nprefix = "${origin.host}"\nlocation = "${origin.host}"\n${extra}\n[[registry.mirror]]\nlocation = "${mirror}"\n`;
  const ferryRequests = (): number => readFileSync(origin.logFile, 'utf8').split('\n').filter((l) => l.includes('"ferry/')).length;

  beforeAll(async () => {
    work = makeTempDir('mirrors');
    origin = await startRegistry('token', { tls: true });
    base = { NODE_EXTRA_CA_CERTS: origin.caFile! };
    image = await makeOciLayout(join(work.path, 'src'), { tag: 'v1', layers: 2, layerSize: 64 * 1024, seed: 'mirrors' });
    const pushed = await ferryImage(['push', '-q', '--creds', `alice:${origin.users['alice']!}`, `oci:${join(work.path, 'src')}:v1`, `${origin.host}/team/app:v1`], { env: base });
    expect(pushed.digest).toBe(image.digest);
    cache = await startRegistry('open', { proxy: { remoteUrl: origin.url, username: 'alice', password: origin.users['alice']!, caFile: origin.caFile! } });
  }, 90_000);
  afterAll(async () => {
    await cache?.stop();
    await origin?.stop();
    work?.remove();
  });

  it('registries.conf mirror: the pull goes through the mirror, nothing reaches the origin from ferry, --debug names the endpoint of every manifest and blob', async () => {
    const before = ferryRequests();
    const out = join(work.path, 'out-conf');
    const r = await runCli(['pull', '--debug', '--json', `${origin.host}/team/app:v1`, `oci:${out}:v1`], { env: conf(mirrorConf(cache.host)) });
    expect(r.code, r.stderr).toBe(0);
    const img = JSON.parse(r.stdout).images[0] as { digest: string; servedBy: Record<string, string> };
    expect(img.digest).toBe(image.digest);
    expectDocument(JSON.parse(r.stdout), 'pull');
    expect(img.servedBy[image.digest]).toBe(`${cache.host}/team/app`);
    expect(layoutEntry(out, 'v1').digest).toBe(image.digest);
    const layer = image.manifests[0]!.layerDigests[1]!;
    expect(sha256Of(readBlob(out, layer))).toBe(layer);
    expect(r.stderr).toContain(`served by mirror ${cache.host}/team/app (${join(work.path, `registries-${n}.conf`)}:5)`);
    for (const d of [image.digest, layer]) expect(r.stderr).toMatch(new RegExp(`(manifest|blob) ${d} served by mirror ${cache.host.replace(/\./g, '\\.')}/team/app`));
    expect(img.servedBy[layer]).toBe(`${cache.host}/team/app`);
    expect(ferryRequests()).toBe(before); // ferry never talked to the origin
  });

  it('--mirror (one command): the same, without any file', async () => {
    const before = ferryRequests();
    const t = await runCli(['pull', '--mirror', cache.host, `${origin.host}/team/app:v1`, `oci:${join(work.path, 'out-flag')}:v1`], { env: base });
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`^  ${origin.host.replace(/\./g, '\\.')}/team/app:v1: served by ${cache.host.replace(/\./g, '\\.')}/team/app \\(4\\) \\(manifests and blobs per endpoint\\)$`, 'm'));
    expect(ferryRequests()).toBe(before);
  });

  it('a mirror that is down: ferry falls through to the origin (credentials looked up for the origin host)', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const r = await runCli(['pull', '--debug', '--creds', `bob:${origin.users['bob']!}`, `${origin.host}/team/app:v1`, `oci:${join(work.path, 'out-dead')}:v1`], { env: conf(mirrorConf(dead)) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`mirror ${dead.replace(/\./g, '\\.')}/team/app failed \\(.*\\); trying ${origin.host.replace(/\./g, '\\.')}/team/app`));
    expect(origin.tokenServer!.requests.some((q) => q.user === 'bob' && q.status === 200)).toBe(true);
  });

  it('a mirror serving other bytes for a digest is refused (exit 6), not replaced by the origin\'s image', async () => {
    const evil: Server = createServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.startsWith('/v2/team/app/manifests/')) {
        const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.digest, size: 2 }, layers: [] }));
        return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length, 'docker-content-digest': image.digest }).end(req.method === 'HEAD' ? undefined : body);
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((ok) => evil.listen(0, '127.0.0.1', ok));
    try {
      const host = `127.0.0.1:${(evil.address() as AddressInfo).port}`;
      const before = ferryRequests();
      const r = await runCli(['pull', `${origin.host}/team/app@${image.digest}`, `oci:${join(work.path, 'out-evil')}:v1`], { env: conf(mirrorConf(host)) });
      expectFailure(r, 6, /digest/i);
      expect(ferryRequests()).toBe(before);
    } finally {
      await new Promise<void>((ok) => evil.close(() => ok()));
    }
  });

  it('pushes and tag listing never use mirrors; a blocked registry is E_BLOCKED (exit 9) naming file and line', async () => {
    const env = conf(mirrorConf(cache.host));
    const tags = await runCli(['tags', '--creds', `alice:${origin.users['alice']!}`, `${origin.host}/team/app`], { env });
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout).toContain('v1');
    const blocked = conf(`[[registry]]\nprefix = "${origin.host}"\nlocation = "${origin.host}"\nblocked = true\n`);
    const r = await runCli(['pull', `${origin.host}/team/app:v1`, `oci:${join(work.path, 'out-blocked')}:v1`], { env: blocked });
    expectFailure(r, 9, new RegExp(`registries-${n}\\.conf:4`));
    // a push to it too, before anything is sent
    const before = readFileSync(origin.logFile, 'utf8').length;
    const p = await runCli(['push', '--creds', `alice:${origin.users['alice']!}`, `oci:${join(work.path, 'src')}:v1`, `${origin.host}/team/blocked:v1`], { env: blocked });
    expectFailure(p, 9, new RegExp(`registries-${n}\\.conf:4`));
    expect(readFileSync(origin.logFile, 'utf8').slice(before)).not.toContain('/team/blocked/');
  });

  it('daemon.json registry-mirrors: Docker Hub references go to the mirror (the origin, registry-1.docker.io, is a closed local port here); other registries never do', async () => {
    // The cache plays a Docker Hub pull-through cache: its upstream holds library/ferry-hub.
    await ferryImage(['push', '-q', '--creds', `alice:${origin.users['alice']!}`, `oci:${join(work.path, 'src')}:v1`, `${origin.host}/library/ferry-hub:v1`], { env: base });
    const daemon = join(work.path, 'daemon.json');
    writeFileSync(daemon, JSON.stringify({ 'registry-mirrors': [`http://${cache.host}`] }, null, 2));
    const closed = `registry-1.docker.io:443:127.0.0.1:${await freePort()}`;
    const r = await runCli(['pull', '--debug', '--json', '--daemon-config', daemon, '--resolve', closed, 'ferry-hub:v1', `oci:${join(work.path, 'out-hub')}:v1`], { env: base });
    expect(r.code, r.stderr).toBe(0);
    const img = JSON.parse(r.stdout).images[0] as { digest: string; servedBy: Record<string, string> };
    expect(img.digest).toBe(image.digest);
    expect(Object.values(img.servedBy)).toEqual(Array(4).fill(`${cache.host}/library/ferry-hub`));
    // --no-mirrors: the origin only, which is closed here: a network error, no mirror
    const off = await runCli(['pull', '--no-mirrors', '--daemon-config', daemon, '--resolve', closed, 'ferry-hub:v1', `oci:${join(work.path, 'out-hub2')}:v1`], { env: base });
    expectFailure(off, 5);
    // a non-Hub registry does not use daemon.json's mirrors
    const mark = readFileSync(cache.logFile, 'utf8').length;
    const other = await runCli(['pull', '-q', '--daemon-config', daemon, '--creds', `bob:${origin.users['bob']!}`, `${origin.host}/team/app:v1`, `oci:${join(work.path, 'out-nohub')}:v1`], { env: base });
    expect(other.code, other.stderr).toBe(0);
    expect(readFileSync(cache.logFile, 'utf8').slice(mark)).not.toContain('/team/app/');
  });

  it('registries.conf insecure = true: https with an unknown CA works without verification for pull and push (warned once per host); without it, E_TLS', async () => {
    const untrusted = await startRegistry('open', { tls: true });
    try {
      const src = `oci:${join(work.path, 'src')}:v1`;
      const plain = await runCli(['push', '-q', src, `${untrusted.host}/x/y:v1`]); // no CA, no rule
      expectFailure(plain, 5, /certificate/i);
      const env = conf(`[[registry]]\nprefix = "${untrusted.host}"\ninsecure = true\n`);
      const push = await runCli(['push', '-q', src, `${untrusted.host}/x/y:v1`], { env });
      expect(push.code, push.stderr).toBe(0);
      expect(push.stderr.split('\n').filter((l) => l.includes('insecure registry'))).toEqual([`ferry: warning: ${untrusted.host}: insecure registry: TLS certificates are not verified`]);
      const pulled = await ferryImage(['pull', '-q', `${untrusted.host}/x/y:v1`, `oci:${join(work.path, 'out-insecure')}:v1`], { env });
      expect(pulled.digest).toBe(image.digest);
    } finally {
      await untrusted.stop();
    }
  });

  it('with the origin stopped, the cached image still pulls through the mirror', async () => {
    await origin.stop();
    const d = await ferryImage(['pull', '-q', `${origin.host}/team/app@${image.digest}`, `oci:${join(work.path, 'out-cached')}:v1`], { env: conf(mirrorConf(cache.host)) });
    expect(d.digest).toBe(image.digest);
  });
});
