/**
 * HTTP(S)_PROXY / NO_PROXY through a REAL forward proxy (Debian's tinyproxy, on 127.0.0.1) in
 * front of the real registry. Loopback is never proxied (Go's rules), so the registry is addressed
 * by a name that is not `localhost` but resolves to a loopback address here (loopbackAlias: the
 * machine's hostname; relayTo bridges 127.0.1.1 to the registries on 127.0.0.1); tinyproxy's log
 * proves which requests went through it.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { loopbackAlias, relayTo, startProxy, type TestProxy } from '../helpers/proxy.js';
import { freePort, startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import { expectBlobs, expectFailure, ferryImage, ferryJson, ferryOk } from './support.js';

const has = requireBinary('tinyproxy') && requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('openssl') && requireBinary('perl');
const loopback = has ? await loopbackAlias() : undefined;
if (has && !loopback && process.env.CI === 'true') {
  throw new Error('proxy tests need a name other than localhost that resolves to a loopback address (the hostname, or a 127.x name in /etc/hosts)');
}
const alias = loopback?.name;

const ALICE = 'alice:alice-secret-pw';
const PROXY_PW = 'proxy-pw-Xq93';

let image: OciLayoutResult;
let src: TempDir;
let work: TempDir;
let n = 0;
const out = (): string => join(work.path, `out-${++n}`);

beforeAll(async () => {
  src = makeTempDir('proxy-src');
  work = makeTempDir('proxy-work');
  image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: 64 * 1024, seed: 'proxy' });
});
afterAll(() => {
  src?.remove();
  work?.remove();
});

const portOf = (reg: RealRegistry): number => Number(reg.host.split(':')[1]);

describe.skipIf(!has || !alias)('through tinyproxy', () => {
  let tls: RealRegistry;
  let open: RealRegistry;
  let proxy: TestProxy;
  const relays: Array<{ stop(): Promise<void> }> = [];
  let tlsRef: string;
  let openRef: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    [tls, open] = await Promise.all([startRegistry('htpasswd-tls', { tlsNames: [alias!] }), startRegistry('open')]);
    await Promise.all([pushWithSkopeo(src.path, 'v1', tls, 'team/app'), pushWithSkopeo(src.path, 'v1', open, 'team/app')]);
    relays.push(await relayTo(loopback!, portOf(tls)), await relayTo(loopback!, portOf(open)));
    proxy = await startProxy({ connectPorts: [portOf(tls)] });
    tlsRef = `${alias}:${portOf(tls)}/team/app:v1`;
    openRef = `${alias}:${portOf(open)}/team/app:v1`;
    env = { NODE_EXTRA_CA_CERTS: tls.caFile, HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url };
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), open?.stop(), proxy?.stop(), ...relays.map((r) => r.stop())]);
  });

  it('https registry: inspect and pull go through CONNECT (tinyproxy logged the tunnel)', async () => {
    const before = proxy.requests().length;
    const dir = out();
    const insp = await ferryJson<{ digest: string }>(['inspect', '--creds', ALICE, tlsRef], { env });
    const pull = await ferryImage(['pull', '-q', '--creds', ALICE, tlsRef, `oci:${dir}`], { env });
    expect(insp.digest).toBe(image.digest);
    expect(pull.digest).toBe(image.digest);
    expectBlobs(dir, image.manifests[0]!.layerDigests);
    const seen = proxy.requests().slice(before);
    expect(seen).toContain(`CONNECT ${alias}:${portOf(tls)} HTTP/1.1`);
    expect(seen.every((l) => l.startsWith('CONNECT '))).toBe(true);
  });

  it('http registry (--plain-http): requests are forwarded to the proxy as absolute URLs', async () => {
    const before = proxy.requests().length;
    const dir = out();
    const pull = await ferryImage(['pull', '-q', '--plain-http', openRef, `oci:${dir}`], { env });
    expect(pull.digest).toBe(image.digest);
    const seen = proxy.requests().slice(before);
    expect(seen).toContain(`HEAD http://${alias}:${portOf(open)}/v2/team/app/manifests/v1 HTTP/1.1`);
    expect(seen).toContain(`GET http://${alias}:${portOf(open)}/v2/team/app/manifests/${image.digest} HTTP/1.1`);
    for (const d of image.manifests[0]!.layerDigests) expect(seen).toContain(`GET http://${alias}:${portOf(open)}/v2/team/app/blobs/${d} HTTP/1.1`);
  });

  it('TLS through the tunnel is verified against the registry name; --tls-verify=false turns that off', async () => {
    const noCa = { HTTPS_PROXY: proxy.url };
    const bad = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: noCa });
    expectFailure(bad, 5, `TLS verification failed for https://${alias}:${portOf(tls)} via proxy http://127.0.0.1:${proxy.port}`);
    const ok = await ferryJson<{ digest: string }>(['inspect', '--tls-verify=false', '--creds', ALICE, tlsRef], { env: noCa });
    expect(ok.digest).toBe(image.digest);
  });

  it('HTTP_PROXY alone is not used for an https registry (Go: no https → HTTP_PROXY fallback)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await ferryJson<{ digest: string }>(['inspect', '--creds', ALICE, tlsRef], { env: { NODE_EXTRA_CA_CERTS: tls.caFile, HTTP_PROXY: dead } });
    expect(r.digest).toBe(image.digest);
  });

  it('NO_PROXY (name, host:port, list, no_proxy) bypasses the proxy: nothing in its log', async () => {
    const before = proxy.requests().length;
    // the name, host:port, a list, and the lower-case variable
    const bypass = [{ NO_PROXY: alias }, { NO_PROXY: `${alias}:${portOf(tls)}` }, { NO_PROXY: `other.example, ${alias}` }, { no_proxy: alias }];
    const docs = await Promise.all(bypass.map((np) => ferryJson<{ digest: string }>(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, ...np } })));
    for (const d of docs) expect(d.digest).toBe(image.digest);
    expect(proxy.requests().slice(before)).toEqual([]);
    // a port that does not match: proxied again
    await ferryOk(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, NO_PROXY: `${alias}:1` } });
    expect(proxy.requests().slice(before)).toContain(`CONNECT ${alias}:${portOf(tls)} HTTP/1.1`);
  });

  it('loopback (127.0.0.1) is never proxied, even without NO_PROXY', async () => {
    const before = proxy.requests().length;
    await ferryOk(['inspect', '--creds', ALICE, `${tls.host}/team/app:v1`], { env });
    await ferryOk(['inspect', `${open.host}/team/app:v1`], { env });
    expect(proxy.requests().slice(before)).toEqual([]);
  });

  it('--debug names the proxy of each request, credentials redacted', async () => {
    const authed = await startProxy({ connectPorts: [portOf(tls)], basicAuth: { user: 'puser', password: PROXY_PW } });
    try {
      const url = `http://puser:${PROXY_PW}@127.0.0.1:${authed.port}`;
      const r = await ferryOk(['inspect', '--debug', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: url } });
      expect(r.stderr).toMatch(new RegExp(`^debug: ← 200 HEAD https://${alias}:${portOf(tls)}/v2/team/app/manifests/v1 via proxy http://\\*\\*\\*@127\\.0\\.0\\.1:${authed.port} `, 'm'));
      expect(r.stderr + r.stdout).not.toContain(PROXY_PW);
      expect(r.stderr + r.stdout).not.toContain(Buffer.from(`puser:${PROXY_PW}`).toString('base64'));
      expect(authed.requests()).toContain(`CONNECT ${alias}:${portOf(tls)} HTTP/1.1`);
    } finally {
      await authed.stop();
    }
  });

  it('a proxy that wants credentials (407): one line naming proxy and registry, exit 5', async () => {
    const authed = await startProxy({ connectPorts: [portOf(tls)], basicAuth: { user: 'puser', password: PROXY_PW } });
    try {
      const https = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: authed.url } });
      expectFailure(https, 5, `ferry: proxy http://127.0.0.1:${authed.port} refused the connection to ${alias}:${portOf(tls)}: 407 Proxy Authentication Required`, 'HTTPS_PROXY');
      const wrong = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: `http://puser:nope-wrong@127.0.0.1:${authed.port}` } });
      // tinyproxy answers wrong credentials with 401
      expectFailure(wrong, 5, `ferry: proxy http://***@127.0.0.1:${authed.port} refused the connection to ${alias}:${portOf(tls)}: 401 Unauthorized`, 'HTTPS_PROXY');
      expect(wrong.stderr).not.toContain('nope-wrong');
      const http = await runCli(['inspect', '--plain-http', openRef], { env: { ...env, HTTP_PROXY: authed.url } });
      expectFailure(http, 5, `ferry: proxy http://127.0.0.1:${authed.port} refused the connection to ${alias}:${portOf(open)}: 407 Proxy Authentication Required`, 'HTTP_PROXY');
    } finally {
      await authed.stop();
    }
  });

  it('a proxy that refuses the destination (403): one line, exit 5', async () => {
    const denying = await startProxy({ connectPorts: [portOf(tls)], deny: [alias!] });
    try {
      const r = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: denying.url } });
      expectFailure(r, 5, `ferry: proxy http://127.0.0.1:${denying.port} refused the connection to ${alias}:${portOf(tls)}: 403 Forbidden`, 'NO_PROXY');
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('ferry:'))).toHaveLength(1);
      expect(denying.requests()).toContain(`CONNECT ${alias}:${portOf(tls)} HTTP/1.1`);
      // forwarded http: the proxy's 403 page is an ordinary response, but not a registry's answer
      const http = await runCli(['inspect', '--plain-http', openRef], { env: { ...env, HTTP_PROXY: denying.url } });
      expectFailure(http, 5, `ferry: proxy http://127.0.0.1:${denying.port} refused the connection to ${alias}:${portOf(open)}: 403 Forbidden`, 'NO_PROXY');
    } finally {
      await denying.stop();
    }
  });

  it('a proxy that is not there: exit 5 naming the proxy', async () => {
    const port = await freePort();
    const r = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: `http://u:${PROXY_PW}@127.0.0.1:${port}` } });
    expectFailure(r, 5, `ferry: cannot connect to proxy http://***@127.0.0.1:${port} (HTTPS_PROXY, for ${alias}:${portOf(tls)}): connection refused`);
    expect(r.stderr).not.toContain(PROXY_PW);
  });

  it('a CONNECT port the proxy does not allow is reported as the proxy\'s answer, exit 5', async () => {
    const strict = await startProxy({ connectPorts: [443] });
    try {
      const r = await runCli(['inspect', '--creds', ALICE, tlsRef], { env: { ...env, HTTPS_PROXY: strict.url } });
      expectFailure(r, 5, `ferry: proxy http://127.0.0.1:${strict.port} refused the connection to ${alias}:${portOf(tls)}: 403`);
    } finally {
      await strict.stop();
    }
  });
});

describe('harness: relayTo', () => {
  it('bridges another loopback address to 127.0.0.1 (for machines whose hostname is 127.0.1.1)', async () => {
    const { createServer, connect } = await import('node:net');
    const srv = createServer((c) => c.end('from-127.0.0.1'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const relay = await relayTo({ name: 'test-alias', address: '127.0.1.1' }, port);
    try {
      const got = await new Promise<string>((resolve, reject) => {
        let data = '';
        connect({ host: '127.0.1.1', port }).on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
      });
      expect(got).toBe('from-127.0.0.1');
    } finally {
      await relay.stop();
      srv.close();
    }
  });
});
