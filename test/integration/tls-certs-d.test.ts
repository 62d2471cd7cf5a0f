/**
 * certs.d and the TLS flags against the REAL distribution registry: a private-CA registry reached
 * only through a certs.d directory (no NODE_EXTRA_CA_CERTS), an mTLS registry
 * (`http.tls.clientcas`) with client pairs from certs.d or the flags, and servers with expired,
 * not-yet-valid and wrong-name certificates for the E_TLS wording. HOME is a temp dir and
 * FERRY_SYSTEM_CERTS_D replaces the /etc roots: nothing here reads the real /etc.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { issueCert, makeTestCa, type TestCa } from '../helpers/tls.js';
import { expectFailure, ferryImage, ferryJson, ferryOk } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl');

describe.skipIf(!has)('certs.d and TLS flags (real registry)', () => {
  let ca: RealRegistry; // private CA, no client certificates
  let mtls: RealRegistry; // requires client certificates from its CA
  let work: TempDir;
  let image: OciLayoutResult;
  let layout: string;
  let home: string;
  let sys: string;

  /** A fresh HOME and system root per test (no state leaks between tests). */
  const fresh = (name: string): { env: Record<string, string>; userDir: (host: string) => string; sysDir: (host: string) => string } => {
    home = join(work.path, name, 'home');
    sys = join(work.path, name, 'etc-certs.d');
    mkdirSync(home, { recursive: true });
    mkdirSync(sys, { recursive: true });
    const mk = (root: string) => (host: string) => {
      const d = join(root, host);
      mkdirSync(d, { recursive: true });
      return d;
    };
    return { env: { HOME: home, FERRY_SYSTEM_CERTS_D: sys }, userDir: mk(join(home, '.config', 'containers', 'certs.d')), sysDir: mk(sys) };
  };

  beforeAll(async () => {
    work = makeTempDir('tls-certs-d');
    layout = join(work.path, 'img');
    [ca, mtls, image] = await Promise.all([
      startRegistry('open', { tls: true }),
      startRegistry('open', { mtls: true }),
      makeOciLayout(layout, { tag: 'v1', layers: 1, layerSize: 4096, seed: 'tls-certs-d' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([ca?.stop(), mtls?.stop()]);
    work?.remove();
  });

  it('private CA: without certs.d the registry is an unknown authority (E_TLS, exit 5) and the hint names the certs.d path', async () => {
    const { env } = fresh('no-dir');
    const r = await runCli(['inspect', `${ca.host}/app:v1`], { env });
    expectFailure(r, 5, `TLS verification failed for https://${ca.host}`, 'unknown authority',
      `~/.config/containers/certs.d/${ca.host}/ca.crt`, '--ca-cert', '--tls-verify=false');
  });

  it('private CA: ~/.config/containers/certs.d/HOST:PORT/ca.crt alone makes push, inspect and pull work', async () => {
    const { env, userDir } = fresh('user-dir');
    copyFileSync(ca.caFile!, join(userDir(ca.host), 'ca.crt'));
    await ferryOk(['push', '-q', `oci:${layout}:v1`, `${ca.host}/app:v1`], { env });
    const insp = await ferryJson<{ digest: string }>(['inspect', `${ca.host}/app:v1`], { env });
    expect(insp.digest).toBe(image.digest);
    const pulled = await ferryImage(['pull', '-q', `${ca.host}/app:v1`, `oci:${join(work.path, 'pulled-user')}:v1`], { env });
    expect(pulled.digest).toBe(image.digest);
  });

  it('private CA: a system root (FERRY_SYSTEM_CERTS_D standing in for /etc/containers/certs.d) works too; --debug names the file', async () => {
    const { env, sysDir } = fresh('sys-dir');
    const dir = sysDir(ca.host);
    copyFileSync(ca.caFile!, join(dir, 'registry-ca.crt'));
    const r = await ferryOk(['--debug', 'inspect', `${ca.host}/app:v1`], { env });
    expect(r.stderr).toContain(`debug: tls ${ca.host}: CA ${join(dir, 'registry-ca.crt')}`);
  });

  it('--cert-dir replaces the defaults: an empty one fails although certs.d has the CA; the registry\'s own dir works without certs.d', async () => {
    const { env, userDir } = fresh('cert-dir');
    copyFileSync(ca.caFile!, join(userDir(ca.host), 'ca.crt'));
    const empty = join(work.path, 'cert-dir', 'empty');
    mkdirSync(empty, { recursive: true });
    expectFailure(await runCli(['--cert-dir', empty, 'inspect', `${ca.host}/app:v1`], { env }), 5, 'unknown authority');
    const { env: bare } = fresh('cert-dir-bare');
    const insp = await ferryJson<{ digest: string }>(['--cert-dir', ca.certDir!, 'inspect', `${ca.host}/app:v1`], { env: bare });
    expect(insp.digest).toBe(image.digest);
  });

  it('--ca-cert FILE trusts a CA for the command', async () => {
    const { env } = fresh('ca-cert');
    const insp = await ferryJson<{ digest: string }>(['--ca-cert', ca.caFile!, 'inspect', `${ca.host}/app:v1`], { env });
    expect(insp.digest).toBe(image.digest);
  });

  it('mTLS: client.cert + client.key in certs.d → push and inspect work', async () => {
    const { env, userDir } = fresh('mtls-ok');
    const d = userDir(mtls.host);
    copyFileSync(mtls.caFile!, join(d, 'ca.crt'));
    copyFileSync(mtls.clientCert!.cert, join(d, 'client.cert'));
    copyFileSync(mtls.clientCert!.key, join(d, 'client.key'));
    await ferryOk(['push', '-q', `oci:${layout}:v1`, `${mtls.host}/app:v1`], { env });
    const insp = await ferryJson<{ digest: string }>(['inspect', `${mtls.host}/app:v1`], { env });
    expect(insp.digest).toBe(image.digest);
  });

  it('mTLS: without a client certificate → E_TLS "requires a client certificate", hint names the flags and the certs.d files', async () => {
    const { env, userDir } = fresh('mtls-none');
    copyFileSync(mtls.caFile!, join(userDir(mtls.host), 'ca.crt'));
    const r = await runCli(['inspect', `${mtls.host}/app:v1`], { env });
    expectFailure(r, 5, mtls.host, 'requires a client certificate', '--client-cert', `~/.config/containers/certs.d/${mtls.host}/`, 'client.cert + client.key');
  });

  it('mTLS: a client certificate from another CA is rejected, naming the file', async () => {
    const { env, userDir } = fresh('mtls-other');
    const d = userDir(mtls.host);
    copyFileSync(mtls.caFile!, join(d, 'ca.crt'));
    const other: TestCa = await makeTestCa(join(work.path, 'other-ca'), 'other');
    const c = await issueCert(other, { name: 'stranger', usage: 'client' });
    copyFileSync(c.cert, join(d, 'me.cert'));
    copyFileSync(c.key, join(d, 'me.key'));
    const r = await runCli(['inspect', `${mtls.host}/app:v1`], { env });
    expectFailure(r, 5, mtls.host, 'rejected the client certificate', join(d, 'me.cert'));
  });

  it('mTLS: several pairs in certs.d are offered in name order until one is accepted; --debug names the refused one and the accepted one', async () => {
    const { env, userDir } = fresh('mtls-second');
    const d = userDir(mtls.host);
    copyFileSync(mtls.caFile!, join(d, 'ca.crt'));
    const other: TestCa = await makeTestCa(join(work.path, 'second-other-ca'), 'other2');
    const c = await issueCert(other, { name: 'stranger2', usage: 'client' });
    copyFileSync(c.cert, join(d, 'a-stranger.cert'));
    copyFileSync(c.key, join(d, 'a-stranger.key'));
    copyFileSync(mtls.clientCert!.cert, join(d, 'b-client.cert'));
    copyFileSync(mtls.clientCert!.key, join(d, 'b-client.key'));
    const r = await ferryOk(['--debug', 'push', `oci:${layout}:v1`, `${mtls.host}/second:v1`], { env });
    expect(r.stderr).toContain(`client certificate ${join(d, 'a-stranger.cert')} refused`);
    expect(r.stderr).toContain(`debug: tls ${mtls.host}: client certificate ${join(d, 'b-client.cert')} accepted`);
    const pulled = await ferryImage(['pull', '-q', `${mtls.host}/second:v1`, `oci:${join(work.path, 'pulled-second')}:v1`], { env });
    expect(pulled.digest).toBe(image.digest);
    // Neither pair from the registry's CA: each is offered, and the error names both.
    rmSync(join(d, 'b-client.cert'));
    rmSync(join(d, 'b-client.key'));
    const c3 = await issueCert(other, { name: 'stranger3', usage: 'client' });
    copyFileSync(c3.cert, join(d, 'c-stranger.cert'));
    copyFileSync(c3.key, join(d, 'c-stranger.key'));
    const bad = await runCli(['inspect', `${mtls.host}/second:v1`], { env });
    expectFailure(bad, 5, mtls.host, 'rejected each client certificate offered', join(d, 'a-stranger.cert'), join(d, 'c-stranger.cert'));
  });

  it('mTLS: a lone .key is E_BAD_CONFIG (exit 2) naming the key and the missing .cert', async () => {
    const { env, userDir } = fresh('mtls-lone');
    const d = userDir(mtls.host);
    copyFileSync(mtls.caFile!, join(d, 'ca.crt'));
    copyFileSync(mtls.clientCert!.key, join(d, 'client.key'));
    const r = await runCli(['inspect', `${mtls.host}/app:v1`], { env });
    expectFailure(r, 2, join(d, 'client.key'), join(d, 'client.cert'));
  });

  it('mTLS: --client-cert/--client-key (with --ca-cert) work; one without the other is E_USAGE', async () => {
    const { env } = fresh('mtls-flags');
    const insp = await ferryJson<{ digest: string }>(
      ['--ca-cert', mtls.caFile!, '--client-cert', mtls.clientCert!.cert, '--client-key', mtls.clientCert!.key, 'inspect', `${mtls.host}/app:v1`], { env });
    expect(insp.digest).toBe(image.digest);
    expectFailure(await runCli(['--ca-cert', mtls.caFile!, '--client-cert', mtls.clientCert!.cert, 'inspect', `${mtls.host}/app:v1`], { env }), 2, '--client-cert needs --client-key');
  });

  describe('server certificates that are wrong', () => {
    let bad: TestCa;
    const servers: Server[] = [];
    const serve = async (cert: { cert: string; key: string }): Promise<string> => {
      const s = createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_q, res) => res.end('{}'));
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return `127.0.0.1:${(s.address() as AddressInfo).port}`;
    };
    beforeAll(async () => {
      bad = await makeTestCa(join(work.path, 'bad-ca'), 'bad', 'ec');
    });
    afterAll(async () => {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    });

    it.each([
      ['expired', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) }, 'certificate has expired'],
      ['not yet valid', { notBefore: new Date(Date.now() + 86_400_000), notAfter: new Date(Date.now() + 10 * 86_400_000) }, 'certificate is not yet valid'],
      ['wrong name', { sans: ['DNS:elsewhere.example'] }, 'certificate is for a different name (it names DNS:elsewhere.example), not 127.0.0.1'],
    ] as const)('%s → E_TLS in words (exit 5)', async (name, o, words) => {
      const c = await issueCert(bad, { name: name.replace(/ /g, '-'), usage: 'server', keyType: 'ec', ...o });
      const host = await serve(c);
      const { env } = fresh(`bad-${name.replace(/ /g, '-')}`);
      const r = await runCli(['--ca-cert', bad.caCert, 'inspect', `${host}/app:v1`], { env });
      expectFailure(r, 5, `TLS verification failed for https://${host}`, words, '--tls-verify=false');
    });
  });

  it('without flags or certs.d directories nothing is added: --debug has no tls line', async () => {
    const { env } = fresh('quiet');
    rmSync(sys, { recursive: true, force: true });
    const r = await runCli(['--debug', 'inspect', `${ca.host}/app:v1`], { env: { ...env, NODE_EXTRA_CA_CERTS: ca.caFile! } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/^debug: tls /m);
  });
});
