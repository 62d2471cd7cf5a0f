/**
 * certs.d through a REAL forward proxy (tinyproxy): an mTLS registry with a private CA, reached
 * by CONNECT, gets its CA and client pair from certs.d inside the tunnel (the proxy never sees
 * them); a missing or refused client certificate inside the tunnel is E_TLS in words, as on a
 * direct connection. HOME is a temp dir; FERRY_SYSTEM_CERTS_D keeps the real /etc out.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { loopbackAlias, relayTo, startProxy, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { issueCert, makeTestCa } from '../helpers/tls.js';
import { expectFailure, ferryJson, ferryOk } from './support.js';

const has = requireBinary('tinyproxy') && requireBinary('docker-registry') && requireBinary('openssl');
const loopback = has ? await loopbackAlias() : undefined;
const alias = loopback?.name;

describe.skipIf(!has || !alias)('certs.d through an HTTPS_PROXY tunnel', () => {
  let reg: RealRegistry;
  let proxy: TestProxy;
  let work: TempDir;
  let image: OciLayoutResult;
  let relay: { stop(): Promise<void> };
  let host: string;

  beforeAll(async () => {
    work = makeTempDir('tls-proxy');
    [reg, image] = await Promise.all([
      startRegistry('open', { mtls: true, tlsNames: [alias!] }),
      makeOciLayout(join(work.path, 'img'), { tag: 'v1', layers: 1, layerSize: 2048, seed: 'tls-proxy' }),
    ]);
    const port = Number(reg.host.split(':')[1]);
    relay = await relayTo(loopback!, port);
    proxy = await startProxy({ connectPorts: [port] });
    host = `${alias}:${port}`;
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), proxy?.stop(), relay?.stop()]);
    work?.remove();
  });

  const envWith = (name: string, files: Array<[string, string]>): Record<string, string> => {
    const home = join(work.path, name);
    const d = join(home, '.config', 'containers', 'certs.d', host);
    mkdirSync(d, { recursive: true });
    for (const [from, to] of files) copyFileSync(from, join(d, to));
    return { HOME: home, FERRY_SYSTEM_CERTS_D: '', HTTPS_PROXY: proxy.url };
  };

  it('CA and client pair from certs.d apply inside the CONNECT tunnel', async () => {
    const env = envWith('ok', [[reg.caFile!, 'ca.crt'], [reg.clientCert!.cert, 'client.cert'], [reg.clientCert!.key, 'client.key']]);
    const before = proxy.requests().length;
    await ferryOk(['push', '-q', `oci:${join(work.path, 'img')}:v1`, `${host}/app:v1`], { env });
    const insp = await ferryJson<{ digest: string }>(['inspect', `${host}/app:v1`], { env });
    expect(insp.digest).toBe(image.digest);
    expect(proxy.requests().slice(before)).toContain(`CONNECT ${host} HTTP/1.1`);
  });

  it('without a client certificate, through the tunnel → E_TLS "requires a client certificate" naming the certs.d dir and the flags', async () => {
    const env = envWith('none', [[reg.caFile!, 'ca.crt']]);
    const before = proxy.requests().length;
    const r = await runCli(['inspect', `${host}/app:v1`], { env });
    expectFailure(r, 5, `TLS handshake with https://${host} via proxy`, 'requires a client certificate', '--client-cert',
      `~/.config/containers/certs.d/${host}/`, 'client.cert + client.key');
    expect(r.stderr).not.toContain('network error');
    expect(proxy.requests().slice(before)).toContain(`CONNECT ${host} HTTP/1.1`);
  });

  it('a client certificate from another CA, through the tunnel → E_TLS naming the rejected file', async () => {
    const other = await makeTestCa(join(work.path, 'other-ca'), 'other');
    const c = await issueCert(other, { name: 'stranger', usage: 'client' });
    const env = envWith('other', [[reg.caFile!, 'ca.crt'], [c.cert, 'me.cert'], [c.key, 'me.key']]);
    const r = await runCli(['inspect', `${host}/app:v1`], { env });
    expectFailure(r, 5, `https://${host} via proxy`, 'rejected the client certificate',
      join(env['HOME']!, '.config', 'containers', 'certs.d', host, 'me.cert'));
  });

  it('several client pairs through the tunnel: the refused first pair is followed by the second on a fresh CONNECT', async () => {
    const other = await makeTestCa(join(work.path, 'other-ca-2'), 'other2');
    const c = await issueCert(other, { name: 'stranger2', usage: 'client' });
    const env = envWith('pairs', [[reg.caFile!, 'ca.crt'], [c.cert, 'a-stranger.cert'], [c.key, 'a-stranger.key'],
      [reg.clientCert!.cert, 'b-client.cert'], [reg.clientCert!.key, 'b-client.key']]);
    const before = proxy.requests().length;
    const r = await ferryOk(['--debug', 'inspect', '--json', `${host}/app:v1`], { env });
    expect(JSON.parse(r.stdout)).toMatchObject({ digest: image.digest });
    expect(r.stderr).toMatch(/client certificate \S*a-stranger\.cert refused/);
    expect(r.stderr).toMatch(/client certificate \S*b-client\.cert accepted/);
    expect(proxy.requests().slice(before).filter((l) => l === `CONNECT ${host} HTTP/1.1`).length).toBeGreaterThanOrEqual(2);
  });
});
