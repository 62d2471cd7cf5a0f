/**
 * Throwaway PKI for integration tests, made with the `openssl` CLI.
 *
 * Contracts:
 * - makeTestCa(dir, name?, keyType?): RSA-2048 (or ECDSA P-256) self-signed CA (basicConstraints CA:TRUE,
 *   keyCertSign) written to <dir>/<name>.crt|.key, valid for 2 days.
 * - issueCert(ca, {name, usage}): RSA-2048 leaf signed by `ca`.
 *   usage 'server': SAN IP:127.0.0.1, IP:::1, DNS:localhost (+ DNS:<each of
 *   `dnsNames`), EKU serverAuth.
 *   usage 'client': EKU clientAuth, SAN DNS:<commonName> (an mTLS client: the
 *   registry's `http.tls.clientcas`).
 *   `sans` replaces the server SANs (e.g. ['DNS:wrong.example'] for a wrong-name test);
 *   `notBefore`/`notAfter` (Date) set the validity (expired / not-yet-valid certificates;
 *   issued with `openssl ca`, which alone takes explicit dates in OpenSSL 3.0).
 *   usage 'signing': digitalSignature only (JWT signing cert for the token
 *   server; distribution verifies the JWT's x5c chain against its
 *   rootcertbundle, which is the CA cert).
 * - makeServerTls(dir?, dnsNames?): CA + server cert (extra SAN names). Returns `{ caCert, serverCert,
 *   serverKey, dir, certDir }`; `certDir` holds only `ca.crt` (the layout
 *   skopeo's --*-cert-dir and containers/image expect). Without `dir` a temp
 *   dir is created and `remove()` deletes it (also removed on process exit).
 * - REAL_REGISTRY_HOSTS: the public registry names the emulations (emulated-registry.ts) answer
 *   for. realHostTls() = makeServerTls with all of them, made once per process (one CA file for
 *   NODE_EXTRA_CA_CERTS). Such a name is only ever reached through ferry's --resolve to
 *   127.0.0.1: nothing here touches the internet.
 * - pemToDerBase64(pem): standard base64 DER of the FIRST certificate in the
 *   PEM (what a JWT `x5c` entry holds).
 * Keys are unencrypted PKCS#8 PEM. Nothing is ever written outside `dir`.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from './binaries.js';

export interface TestCa {
  dir: string;
  caCert: string; // PEM path
  caKey: string; // PEM path
}

export interface IssuedCert {
  cert: string; // PEM path
  key: string; // PEM path
}

export interface TlsFiles {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** Dir containing only ca.crt (for skopeo --src-cert-dir/--dest-cert-dir). */
  certDir: string;
  /** Removes `dir` (only if makeServerTls created it; no-op otherwise). */
  remove(): void;
}

/** Run openssl; rejects with its stderr on failure. */
export function openssl(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const SERVER_SANS = 'IP:127.0.0.1,IP:::1,DNS:localhost';

function config(cn: string, dnsNames: readonly string[] = [], sans?: readonly string[]): string {
  // A self-contained config so the system openssl.cnf cannot interfere.
  return [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    '[dn]',
    `CN = ${cn}`,
    'O = ferry integration tests',
    '[v3_ca]',
    'basicConstraints = critical,CA:TRUE',
    'keyUsage = critical,keyCertSign,cRLSign',
    'subjectKeyIdentifier = hash',
    '[v3_server]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = serverAuth',
    `subjectAltName = ${sans ? sans.join(',') : [SERVER_SANS, ...dnsNames.map((n) => `DNS:${n}`)].join(',')}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    '[v3_client]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage = clientAuth',
    `subjectAltName = DNS:${cn}`,
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    '[v3_signing]',
    'basicConstraints = critical,CA:FALSE',
    'keyUsage = critical,digitalSignature',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    '',
  ].join('\n');
}

/** RSA-2048 (default) or ECDSA P-256 (cheaper handshakes: for servers that many short-lived
 * clients connect to). */
export type KeyType = 'rsa' | 'ec';

const newKey = (t: KeyType): string[] => (t === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048']);

/** Create a self-signed CA in `dir` (created if needed). */
export async function makeTestCa(dir: string, name = 'ca', keyType: KeyType = 'rsa'): Promise<TestCa> {
  await mkdir(dir, { recursive: true });
  const cnf = join(dir, `${name}.cnf`);
  await writeFile(cnf, config(`ferry test CA ${randomBytes(4).toString('hex')}`));
  const caCert = join(dir, `${name}.crt`);
  const caKey = join(dir, `${name}.key`);
  await openssl(
    ['req', '-x509', '-new', ...newKey(keyType), '-nodes', '-keyout', caKey, '-out', caCert,
      '-days', '2', '-config', cnf, '-extensions', 'v3_ca'],
    dir,
  );
  return { dir, caCert, caKey };
}

/** Issue a leaf cert signed by `ca`, written next to the CA files. */
export async function issueCert(
  ca: TestCa,
  opts: {
    name: string; usage: 'server' | 'signing' | 'client'; commonName?: string; dnsNames?: readonly string[]; keyType?: KeyType;
    sans?: readonly string[]; notBefore?: Date; notAfter?: Date;
  },
): Promise<IssuedCert> {
  const { dir } = ca;
  const cnf = join(dir, `${opts.name}.cnf`);
  const cn = opts.commonName ?? (opts.usage === 'server' ? 'localhost' : opts.usage === 'client' ? 'ferry-test-client' : 'ferry-test-token-signer');
  await writeFile(cnf, config(cn, opts.dnsNames, opts.sans));
  const key = join(dir, `${opts.name}.key`);
  const csr = join(dir, `${opts.name}.csr`);
  const cert = join(dir, `${opts.name}.crt`);
  const ext = opts.usage === 'server' ? 'v3_server' : opts.usage === 'client' ? 'v3_client' : 'v3_signing';
  await openssl(['req', '-new', ...newKey(opts.keyType ?? 'rsa'), '-nodes', '-keyout', key, '-out', csr, '-config', cnf], dir);
  if (opts.notBefore || opts.notAfter) {
    const day = 86_400_000;
    const asn1 = (d: Date): string => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    const db = join(dir, `${opts.name}.db`);
    const serial = join(dir, `${opts.name}.serial`);
    await writeFile(db, '');
    await writeFile(serial, `${randomBytes(8).toString('hex')}\n`);
    // `openssl ca` (the only OpenSSL 3.0 command taking explicit dates) wants a CA section.
    await appendFile(cnf, ['[ca]', 'default_ca = ferry_ca', '[ferry_ca]', `database = ${db}`, `new_certs_dir = ${dir}`, `serial = ${serial}`,
      'default_md = sha256', 'policy = ferry_policy', 'unique_subject = no', 'copy_extensions = none', '[ferry_policy]', 'commonName = supplied', ''].join('\n'));
    await openssl(
      ['ca', '-batch', '-config', cnf, '-cert', ca.caCert, '-keyfile', ca.caKey, '-in', csr, '-out', cert, '-notext',
        '-startdate', asn1(opts.notBefore ?? new Date(Date.now() - day)), '-enddate', asn1(opts.notAfter ?? new Date(Date.now() + 2 * day)),
        '-extensions', ext],
      dir,
    );
    return { cert, key };
  }
  await openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.caCert, '-CAkey', ca.caKey,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2',
      '-extfile', cnf, '-extensions', ext, '-out', cert],
    dir,
  );
  return { cert, key };
}

/** CA + server certificate for 127.0.0.1 / ::1 / localhost. */
export async function makeServerTls(dir?: string, dnsNames: readonly string[] = [], keyType: KeyType = 'rsa'): Promise<TlsFiles> {
  const temp = dir ? undefined : makeTempDir('tls');
  const root = dir ?? temp!.path;
  try {
    const ca = await makeTestCa(root, 'ca', keyType);
    const server = await issueCert(ca, { name: 'server', usage: 'server', dnsNames, keyType });
    const certDir = join(root, 'cert-dir');
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.caCert, join(certDir, 'ca.crt'));
    return {
      dir: root,
      caCert: ca.caCert,
      caKey: ca.caKey,
      serverCert: server.cert,
      serverKey: server.key,
      certDir,
      remove: () => temp?.remove(),
    };
  } catch (err) {
    temp?.remove();
    throw err;
  }
}

/** Base64 (standard, not url) DER of the first certificate in a PEM string. */
export function pemToDerBase64(pem: string): string {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) throw new Error('no certificate found in PEM');
  return m[1]!.replace(/\s+/g, '');
}

/** Read a PEM file and return pemToDerBase64 of its first certificate. */
export async function certFileToDerBase64(path: string): Promise<string> {
  return pemToDerBase64(await readFile(path, 'utf8'));
}

/** Real registry host names the test CA can issue for (reached only through --resolve). */
export const REAL_REGISTRY_HOSTS = Object.freeze([
  'registry-1.docker.io', 'auth.docker.io', 'ghcr.io', 'quay.io', '123456789012.dkr.ecr.us-east-1.amazonaws.com',
  'myreg.azurecr.io', 'gcr.io', 'us-docker.pkg.dev', 'harbor.example.com', 'nvcr.io', 'us.icr.io',
] as const);

let shared: Promise<TlsFiles> | undefined;

/** One CA + server certificate (ECDSA P-256: every ferry run is a new TLS client, and the front
 * servers pay each handshake) for every REAL_REGISTRY_HOSTS name (and 127.0.0.1, localhost),
 * made on first use and shared by the process; removed on exit. */
export function realHostTls(): Promise<TlsFiles> {
  shared ??= makeServerTls(undefined, REAL_REGISTRY_HOSTS, 'ec');
  return shared;
}
