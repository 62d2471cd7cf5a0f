/**
 * The insecure-host mechanism (SessionOptions.insecureHosts, what registries.conf `insecure` and
 * daemon.json `insecure-registries` will feed) against the REAL registry, in process through the
 * ops API: https without certificate verification, then plain http when the server does not
 * speak TLS, reported once per host. The registries are reached by names that are not loopback
 * (loopback hosts already fall back to http), mapped to 127.0.0.1 with --resolve rules.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResolve } from '../../src/http/resolve.js';
import { copy } from '../../src/ops/copy.js';
import type { OpContext } from '../../src/ops/context.js';
import { inspect } from '../../src/ops/inspect.js';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { ferryOk } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl');
const TLS_NAME = 'insecure-tls.ferry.test';
const HTTP_NAME = 'insecure-http.ferry.test';

describe.skipIf(!has)('insecure registries (SessionOptions.insecureHosts)', () => {
  let tls: RealRegistry; // https with a CA nobody trusts
  let http: RealRegistry; // plain http
  let work: TempDir;
  let image: OciLayoutResult;
  let warnings: string[];
  let tlsHost: string;
  let httpHost: string;

  const ctx = (insecure: string[]): OpContext => ({
    tlsVerify: true,
    env: { HOME: join(work.path, 'home'), DOCKER_CONFIG: join(work.path, 'no-docker'), FERRY_SYSTEM_CERTS_D: '' },
    warn: (m) => warnings.push(m),
    resolve: [
      parseResolve(`${TLS_NAME}:${new URL(tls.url).port}:127.0.0.1`),
      parseResolve(`${HTTP_NAME}:${new URL(http.url).port}:127.0.0.1`),
    ],
    cloudAuth: false,
    insecureHosts: (h) => insecure.includes(h),
  });

  beforeAll(async () => {
    work = makeTempDir('tls-insecure');
    [tls, http, image] = await Promise.all([
      startRegistry('open', { tls: true, tlsNames: [TLS_NAME] }),
      startRegistry('open'),
      makeOciLayout(join(work.path, 'img'), { tag: 'v1', layers: 1, layerSize: 2048, seed: 'insecure' }),
    ]);
    tlsHost = `${TLS_NAME}:${new URL(tls.url).port}`;
    httpHost = `${HTTP_NAME}:${new URL(http.url).port}`;
    await Promise.all([
      ferryOk(['push', '-q', `oci:${join(work.path, 'img')}:v1`, `${tls.host}/app:v1`], { env: { NODE_EXTRA_CA_CERTS: tls.caFile! } }),
      ferryOk(['push', '-q', `oci:${join(work.path, 'img')}:v1`, `${http.host}/app:v1`]),
    ]);
  });
  afterAll(async () => {
    await Promise.all([tls?.stop(), http?.stop()]);
    work?.remove();
  });

  it('not insecure: the untrusted CA is E_TLS and the http registry is "answered HTTPS with plain HTTP"', async () => {
    warnings = [];
    await expect(inspect(`${tlsHost}/app:v1`, {}, ctx([]))).rejects.toMatchObject({ code: 'E_TLS', message: expect.stringContaining('unknown authority') });
    await expect(inspect(`${httpHost}/app:v1`, {}, ctx([]))).rejects.toMatchObject({ code: 'E_TLS', message: expect.stringContaining('answered HTTPS with plain HTTP') });
    expect(warnings).toEqual([]);
  });

  it('insecure https: certificates are not verified; one copy within the host warns once', async () => {
    warnings = [];
    const c = ctx([tlsHost]);
    expect((await inspect(`${tlsHost}/app:v1`, {}, c)).digest).toBe(image.digest);
    await copy(`${tlsHost}/app:v1`, `${tlsHost}/copy:v1`, {}, c);
    expect((await inspect(`${tlsHost}/copy:v1`, {}, c)).digest).toBe(image.digest);
    // One warning per session (each op here is its own session, as each CLI command is).
    expect(warnings).toEqual(Array(3).fill(`${tlsHost}: insecure registry: TLS certificates are not verified`));
  });

  it('insecure http: https first, then plain http', async () => {
    warnings = [];
    expect((await inspect(`${httpHost}/app:v1`, {}, ctx([httpHost]))).digest).toBe(image.digest);
    expect(warnings).toEqual([`${httpHost}: insecure registry: TLS certificates are not verified`]);
  });
});
