/**
 * Cloud registries without a configured credential helper, through the built CLI, against the
 * REAL distribution registry reached under the cloud host names with `--resolve HOST:443:
 * 127.0.0.1:PORT` (the registry's certificate carries the name; NODE_EXTRA_CA_CERTS trusts its
 * CA). ferry's PATH holds only the fake cloud CLIs (test/helpers/fake-cloud-clis.ts).
 *
 * - ECR (htpasswd over https, user `AWS` with the token the fake `aws ecr get-login-password`
 *   prints): push, inspect, tags and pull with nothing configured but `aws`; `aws` runs once per
 *   ferry process, with the region from the host; --debug names it and its time, never the token.
 *   Not configured: exit 3, one warning, and the 401 hint says `aws … failed: …; run aws
 *   configure`. No CLI: the hint says what to install. --no-cloud-auth: nothing runs.
 * - ACR (token auth): the fake `az acr login --expose-token` prints a refresh token the token
 *   server issued for alice; ferry exchanges it with the OAuth2 refresh-token POST and pushes
 *   and pulls.
 * - GCR-style public pull: `gcloud` installed but not logged in → one warning, and the public
 *   image still pulls anonymously.
 *
 * NEEDS the `--resolve` flag and real-registry.ts's `htpasswdUsers` option (branch h-resolve).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { writeFakeCloudClis, type FakeCloudClis, type FakeCloudOptions } from '../helpers/fake-cloud-clis.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry, type StartRegistryOptions } from '../helpers/real-registry.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { expectFailure, ferryImage, ferryJson, ferryOk, layoutEntry } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl');

const ECR = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const ACR = 'myreg.azurecr.io';
const GCR = 'us-docker.pkg.dev';
/** What the fake `aws ecr get-login-password` prints; the ECR registry's password for user AWS. */
const ECR_TOKEN = 'eyJwYXlsb2FkIjoiZmVycnktdGVzdC1lY3IiLCJ2ZXJzaW9uIjoiMiJ9ferryEcrTok3n';

let image: OciLayoutResult;
let src: TempDir;
let work: TempDir;
let n = 0;
const out = (): string => join(work.path, `out-${++n}`);

beforeAll(async () => {
  src = makeTempDir('cloud-src');
  work = makeTempDir('cloud-work');
  image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: 32 * 1024, seed: 'cloud' });
});
afterAll(() => {
  src?.remove();
  work?.remove();
});

/** Fresh fake CLIs in their own dir. */
function fakes(o: FakeCloudOptions): FakeCloudClis {
  const dir = join(work.path, `fakes-${++n}`);
  mkdirSync(dir);
  return writeFakeCloudClis(dir, o);
}

function portOf(reg: RealRegistry): string {
  return reg.host.split(':')[1]!;
}

function expectNoSecret(r: CliResult, ...secrets: string[]): void {
  for (const s of secrets) expect(r.stdout + r.stderr, 'a secret leaked').not.toContain(s);
}

describe.skipIf(!has)('ECR: credentials from the aws CLI alone', () => {
  let reg: RealRegistry;
  let resolve: string[];
  let env: NodeJS.ProcessEnv;
  const ref = `${ECR}/team/app:v1`;

  beforeAll(async () => {
    // `htpasswdUsers` is real-registry.ts's option on h-resolve (ignored before it lands).
    const opts: StartRegistryOptions & { htpasswdUsers?: Record<string, string> } = { tlsNames: [ECR], htpasswdUsers: { AWS: ECR_TOKEN } };
    reg = await startRegistry('htpasswd-tls', opts);
    resolve = ['--resolve', `${ECR}:443:127.0.0.1:${portOf(reg)}`];
    env = { NODE_EXTRA_CA_CERTS: reg.caFile };
  });
  afterAll(async () => reg?.stop());

  it('push, then inspect, tags and pull: aws ecr get-login-password --region us-east-1 runs once per ferry process', async () => {
    const aws = fakes({ clis: ['aws'], tokens: { aws: ECR_TOKEN } });
    const e = { ...env, PATH: aws.path() };
    const push = await ferryOk(['push', '-q', ...resolve, `oci:${src.path}:v1`, ref], { env: e });
    expect(aws.count('aws')).toBe(1);
    const dir = out();
    const [insp, tags, pull] = await Promise.all([
      ferryJson<{ digest: string }>(['inspect', ...resolve, ref], { env: e }),
      ferryOk(['tags', ...resolve, `${ECR}/team/app`], { env: e }),
      ferryImage(['pull', '-q', ...resolve, ref, `oci:${dir}`], { env: e }),
    ]);
    expect(insp.digest).toBe(image.digest);
    expect(tags.stdout).toBe('v1\n');
    expect(pull.digest).toBe(image.digest);
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    expect(aws.invocations()).toEqual(Array(4).fill({ cli: 'aws', args: ['ecr', 'get-login-password', '--region', 'us-east-1'] }));
    expectNoSecret(push, ECR_TOKEN);
  });

  it('copy between two repositories of the registry: still one aws run; --debug names it and its time, never the token', async () => {
    const aws = fakes({ clis: ['aws'], tokens: { aws: ECR_TOKEN } });
    await ferryOk(['push', '-q', '--creds', `AWS:${ECR_TOKEN}`, ...resolve, `oci:${src.path}:v1`, `${ECR}/copy/from:v1`], { env });
    const r = await ferryOk(['copy', '--debug', ...resolve, `${ECR}/copy/from:v1`, `${ECR}/copy/to:v1`], { env: { ...env, PATH: aws.path() } });
    expect(aws.count('aws')).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`debug: cloud credentials for ${ECR.replace(/\./g, '\\.')}: ran aws ecr get-login-password --region us-east-1 \\(\\d+\\.\\d\\d s, ok\\)`));
    expect(r.stderr).toContain('(cloud CLI: aws ecr get-login-password (region us-east-1))');
    expectNoSecret(r, ECR_TOKEN, Buffer.from(`AWS:${ECR_TOKEN}`).toString('base64'));
    const insp = await ferryJson<{ digest: string }>(['inspect', '--creds', `AWS:${ECR_TOKEN}`, ...resolve, `${ECR}/copy/to:v1`], { env });
    expect(insp.digest).toBe(image.digest);
  });

  it('aws not configured: exit 3, one warning, and the hint says aws failed and to run aws configure', async () => {
    const aws = fakes({ clis: ['aws'], modes: { aws: 'logged-out' } });
    const r = await runCli(['inspect', ...resolve, ref], { env: { ...env, PATH: aws.path() } });
    expectFailure(r, 3, 'authentication required', /hint: .*aws ecr get-login-password --region us-east-1 failed: no AWS credentials are configured; run aws configure/);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('ferry: warning:'));
    expect(warnings).toEqual([`ferry: warning: cloud credentials for ${ECR}: aws ecr get-login-password --region us-east-1 failed: no AWS credentials are configured; run aws configure (or aws sso login); continuing without credentials`]);
  });

  it('no aws and no helper on PATH: no warning; the hint says what to install', async () => {
    const none = fakes({ clis: [] });
    const r = await runCli(['inspect', ...resolve, ref], { env: { ...env, PATH: none.path() } });
    expectFailure(r, 3, /hint: .*install the AWS CLI and run aws configure, or install docker-credential-ecr-login/);
    expect(r.stderr).not.toContain('warning');
  });

  it('--no-cloud-auth: aws never runs; the hint says cloud credentials are off', async () => {
    const aws = fakes({ clis: ['aws'], tokens: { aws: ECR_TOKEN } });
    const r = await runCli(['inspect', '--no-cloud-auth', ...resolve, ref], { env: { ...env, PATH: aws.path() } });
    expectFailure(r, 3, /hint: .*cloud credentials are off \(--no-cloud-auth\)/);
    expect(aws.count()).toBe(0);
  });
});

describe.skipIf(!has)('ACR: an az refresh token exchanged at the token server', () => {
  let reg: RealRegistry;
  let resolve: string[];
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    reg = await startRegistry('token', { tls: true, tlsNames: [ACR] });
    resolve = ['--resolve', `${ACR}:443:127.0.0.1:${portOf(reg)}`];
    env = { NODE_EXTRA_CA_CERTS: reg.caFile };
  });
  afterAll(async () => reg?.stop());

  /** A refresh token for alice, as ACR's /oauth2/exchange would issue one (password grant, offline). */
  async function refreshToken(): Promise<string> {
    const ts = reg.tokenServer!;
    const { request } = await import('node:https');
    const { readFileSync } = await import('node:fs');
    const body = new URLSearchParams({ grant_type: 'password', username: 'alice', password: ts.users['alice']!, service: ts.service, client_id: 'test', access_type: 'offline' }).toString();
    return new Promise((resolveP, reject) => {
      const req = request(ts.realm, { method: 'POST', ca: readFileSync(reg.caFile!), headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c));
        res.on('end', () => {
          const t = (JSON.parse(s) as { refresh_token?: string }).refresh_token;
          if (t) resolveP(t);
          else reject(new Error(`no refresh token: ${res.statusCode} ${s}`));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('push and pull with only az on PATH: az acr login --name myreg --expose-token, then the refresh-token POST', async () => {
    const token = await refreshToken();
    const az = fakes({ clis: ['az'], tokens: { az: token } });
    const e = { ...env, PATH: az.path() };
    const ref = `${ACR}/team/app:v1`;
    const before = reg.tokenServer!.requests.length;
    const push = await ferryOk(['push', '-q', ...resolve, `oci:${src.path}:v1`, ref], { env: e });
    const dir = out();
    const pull = await ferryOk(['pull', '-q', ...resolve, ref, `oci:${dir}`], { env: e });
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    expect(az.invocations()).toEqual(Array(2).fill({ cli: 'az', args: ['acr', 'login', '--name', 'myreg', '--expose-token', '--output', 'json'] }));
    const mine = reg.tokenServer!.requests.slice(before);
    expect(mine.length).toBeGreaterThan(0);
    for (const q of mine) expect(q).toMatchObject({ method: 'POST', grantType: 'refresh_token', user: 'alice', status: 200 });
    expectNoSecret(push, token);
    expectNoSecret(pull, token);
  });
});

describe.skipIf(!has)('Artifact Registry-style public pull with gcloud installed but not logged in', () => {
  let reg: RealRegistry;
  let resolve: string[];
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    reg = await startRegistry('token', { tls: true, tlsNames: [GCR] });
    resolve = ['--resolve', `${GCR}:443:127.0.0.1:${portOf(reg)}`];
    env = { NODE_EXTRA_CA_CERTS: reg.caFile };
    await ferryOk(['push', '-q', '--creds', `alice:${reg.users['alice']}`, ...resolve, `oci:${src.path}:v1`, `${GCR}/public/app:v1`], { env });
  });
  afterAll(async () => reg?.stop());

  it('one warning (gcloud auth print-access-token failed: not logged in; run gcloud auth login), and the image pulls anonymously', async () => {
    const gcloud = fakes({ clis: ['gcloud'], modes: { gcloud: 'logged-out' } });
    const dir = out();
    const r = await ferryOk(['pull', '-q', ...resolve, `${GCR}/public/app:v1`, `oci:${dir}`], { env: { ...env, PATH: gcloud.path() } });
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      `ferry: warning: cloud credentials for ${GCR}: gcloud auth print-access-token failed: not logged in; run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file); continuing without credentials`,
    ]);
    expect(gcloud.count('gcloud')).toBe(1);
  });
});
