/**
 * --resolve HOST:PORT:ADDRESS[:ADDRESS_PORT] against the real distribution registry over https,
 * reached by a name that no DNS resolves (`.test` is reserved): the socket goes to 127.0.0.1
 * while TLS verification and the Host header keep the name.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { expectFailure, ferryImage, ferryJson, layoutEntry } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl');
const NAME = 'registry.ferry.test';

describe.skipIf(!has)('--resolve', () => {
  let reg: RealRegistry;
  let work: TempDir;
  let image: OciLayoutResult;
  let port: number;
  let env: Record<string, string>;
  let map: string[];

  beforeAll(async () => {
    work = makeTempDir('resolve');
    [reg, image] = await Promise.all([
      startRegistry('open', { tls: true, tlsNames: [NAME] }),
      makeOciLayout(join(work.path, 'img'), { tag: 'v1', layers: 1, layerSize: 4096, seed: 'resolve' }),
    ]);
    port = Number(new URL(reg.url).port);
    env = { NODE_EXTRA_CA_CERTS: reg.caFile! };
    map = ['--resolve', `${NAME}:443:127.0.0.1:${port}`];
  });
  afterAll(async () => {
    await reg?.stop();
    work?.remove();
  });

  it('reaches a registry by a name DNS does not know, TLS verified for that name; --debug says so once; Location still names the host', async () => {
    const push = await runCli([...map, '--debug', 'push', `oci:${join(work.path, 'img')}:v1`, `${NAME}/app:v1`], { env });
    expect(push.code, push.stderr).toBe(0);
    const lines = push.stderr.split('\n').filter((l) => l.includes('(--resolve)'));
    expect(lines).toEqual([`debug: connect ${NAME}:443 → 127.0.0.1:${port} (--resolve)`]);
    // distribution builds Location from the Host header it got: the name, not the address.
    expect(push.stderr).toContain(`"location":"https://${NAME}/v2/app/`);
    expect(push.stderr).not.toContain(`127.0.0.1:${port}/v2`);
    const out = join(work.path, 'pulled');
    const [insp, pull] = await Promise.all([
      ferryJson<{ digest: string }>([...map, 'inspect', `${NAME}/app:v1`], { env }),
      ferryImage([...map, 'pull', '-q', `${NAME}/app:v1`, `oci:${out}:v1`], { env }),
    ]);
    expect(insp.digest).toBe(image.digest);
    expect(pull.digest).toBe(image.digest);
    expect(layoutEntry(out, 'v1').digest).toBe(image.digest);
  });

  it('without --resolve the same command fails as a network error (exit 5)', async () => {
    const r = await runCli(['inspect', `${NAME}/app:v1`], { env });
    expectFailure(r, 5, NAME);
  });

  it('the certificate is still checked against HOST: a name the certificate lacks fails TLS verification', async () => {
    const r = await runCli(['--resolve', `other.ferry.test:443:127.0.0.1:${port}`, 'inspect', 'other.ferry.test/app:v1'], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/certificate|altname|TLS/i);
    expect(r.stderr).toContain('other.ferry.test');
  });

  it('without ADDRESS_PORT the request\'s own port is used; a rule for another port does not apply', async () => {
    const ok = await ferryJson<{ digest: string }>(['--resolve', `${NAME}:${port}:127.0.0.1`, 'inspect', `${NAME}:${port}/app:v1`], { env });
    expect(ok.digest).toBe(image.digest);
    const other = await runCli(['--resolve', `${NAME}:${port + 1}:127.0.0.1`, 'inspect', `${NAME}:${port}/app:v1`], { env });
    expectFailure(other, 5, NAME);
    expect(other.stderr).not.toContain('by --resolve');
  });

  it('a connection --resolve sent elsewhere that fails says where it went (exit 5)', async () => {
    const r = await runCli(['--resolve', `${NAME}:443:127.0.0.1:1`, 'inspect', `${NAME}/app:v1`], { env });
    expectFailure(r, 5, `connection refused by https://${NAME}`, '(connecting to 127.0.0.1:1 by --resolve)');
  });

  it('a malformed value is a usage error (exit 2) naming the value and the form, before any request', async () => {
    const r = await runCli(['--resolve', `${NAME}:443`, 'inspect', `${NAME}/app:v1`], { env });
    expectFailure(r, 2, `--resolve "${NAME}:443"`, 'HOST:PORT:ADDRESS[:ADDRESS_PORT]');
  });
});
