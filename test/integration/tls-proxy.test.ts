/**
 * certs.d through a REAL forward proxy (tinyproxy): an mTLS registry with a private CA, reached
 * by CONNECT, gets its CA and client pair from certs.d inside the tunnel (the proxy never sees
 * them). (A refused client certificate through a proxy is still reported as a network error:
 * the TLS alert inside undici's tunnel is not recovered yet.) HOME is a temp dir; FERRY_SYSTEM_CERTS_D keeps the real /etc out.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { loopbackAlias, relayTo, startProxy, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { ferryJson, ferryOk } from './support.js';

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
});
