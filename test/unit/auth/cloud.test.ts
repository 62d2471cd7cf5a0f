/**
 * The cloud step of resolveCredential (src/auth/cloud/): which helper or CLI each cloud registry
 * uses and in what order, what it is asked (region, registry name, server URL), what credential
 * comes back and what its source says, once-per-process runs and reuse until expiry, failures
 * (one warning, anonymous with the reason in its source), --no-cloud-auth, and earlier sources
 * winning. The CLIs are test/helpers/fake-cloud-clis.ts, printing what the real ones print; ferry's
 * PATH holds nothing else (this machine's real gcloud lives in /usr/bin).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clearCloudCredentialCache } from '../../../src/auth/cloud/index.js';
import { clearCredentialHelperCache } from '../../../src/auth/cred-helper.js';
import type { Credential } from '../../../src/auth/credential.js';
import { resolveCredential, type ResolveOptions } from '../../../src/auth/keychain.js';
import { DEFAULT_FAKE_TOKENS, type FakeCloudClis, type FakeCloudOptions, writeFakeCloudClis } from '../../helpers/fake-cloud-clis.js';

const ECR = '123456789012.dkr.ecr.eu-west-3.amazonaws.com';
const ACR = 'myreg.azurecr.io';

let root: string;
let warns: string[];
let debugs: string[];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cloud-'));
  warns = [];
  debugs = [];
  clearCloudCredentialCache();
  clearCredentialHelperCache();
});
afterEach(() => {
  vi.useRealTimers();
  clearCloudCredentialCache();
  fs.rmSync(root, { recursive: true, force: true });
});

function setup(o: FakeCloudOptions = {}, extraEnv: NodeJS.ProcessEnv = {}): { fake: FakeCloudClis; opts: ResolveOptions } {
  const fake = writeFakeCloudClis(root, o);
  const env: NodeJS.ProcessEnv = {
    PATH: fake.path(), HOME: root, DOCKER_CONFIG: path.join(root, 'docker'),
    XDG_RUNTIME_DIR: path.join(root, 'run'), XDG_CONFIG_HOME: path.join(root, 'config'), ...extraEnv,
  };
  return { fake, opts: { env, homeDir: root, warn: (m) => warns.push(m), debug: (m) => debugs.push(m) } };
}

/** Every message ferry produced in the test, plus the credential's source. */
function allText(c?: Credential): string {
  return [...warns, ...debugs, c?.source ?? ''].join('\n');
}

function expectNoSecret(c?: Credential): void {
  const text = allText(c);
  for (const t of Object.values(DEFAULT_FAKE_TOKENS)) expect(text).not.toContain(t);
}

describe('Amazon ECR', () => {
  it.each([
    [ECR, 'eu-west-3'],
    ['123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn', 'cn-north-1'],
    ['123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com', 'us-gov-west-1'],
  ])('%s without a helper: aws ecr get-login-password --region %s → Basic AWS:<token>', async (host, region) => {
    const { fake, opts } = setup({ clis: ['aws'] });
    const c = await resolveCredential(host, opts);
    expect(c).toEqual({ kind: 'basic', username: 'AWS', password: DEFAULT_FAKE_TOKENS.aws, source: `cloud CLI: aws ecr get-login-password (region ${region})` });
    expect(fake.invocations()).toEqual([{ cli: 'aws', args: ['ecr', 'get-login-password', '--region', region] }]);
    expect(warns).toEqual([]);
    expect(debugs.some((d) => new RegExp(`^cloud credentials for ${host.replace(/\./g, '\\.')}: ran aws ecr get-login-password --region ${region} \\(\\d+\\.\\d\\d s, ok\\)$`).test(d))).toBe(true);
    expectNoSecret(c);
  });

  it('docker-credential-ecr-login on PATH wins over aws; it is asked with the host as server URL', async () => {
    const { fake, opts } = setup({ clis: ['aws', 'docker-credential-ecr-login'] });
    const c = await resolveCredential(ECR, opts);
    expect(c).toEqual({ kind: 'basic', username: 'AWS', password: DEFAULT_FAKE_TOKENS['docker-credential-ecr-login'], source: 'credential helper docker-credential-ecr-login (cloud)' });
    expect(fake.invocations()).toEqual([{ cli: 'docker-credential-ecr-login', args: ['get'], stdin: ECR }]);
    expect(debugs.some((d) => /ran docker-credential-ecr-login get \(\d+\.\d\d s, ok\)/.test(d))).toBe(true);
  });

  it('ECR Public: aws ecr-public get-login-password --region us-east-1', async () => {
    const { fake, opts } = setup({ clis: ['aws'] });
    const c = await resolveCredential('public.ecr.aws', opts);
    expect(c).toEqual({ kind: 'basic', username: 'AWS', password: DEFAULT_FAKE_TOKENS['aws-public'], source: 'cloud CLI: aws ecr-public get-login-password (region us-east-1)' });
    expect(fake.invocations()).toEqual([{ cli: 'aws', args: ['ecr-public', 'get-login-password', '--region', 'us-east-1'] }]);
  });

  it('aws not configured: one warning naming the command and aws configure; anonymous, the reason in its source', async () => {
    const { opts } = setup({ clis: ['aws'], modes: { aws: 'logged-out' } });
    const c = await resolveCredential(ECR, opts);
    const reason = 'aws ecr get-login-password --region eu-west-3 failed: no AWS credentials are configured; run aws configure (or aws sso login)';
    expect(warns).toEqual([`cloud credentials for ${ECR}: ${reason}; continuing without credentials`]);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toMatch(/^anonymous \(no credentials for "123456789012\.dkr\.ecr\.eu-west-3\.amazonaws\.com" in docker config .*, nor in podman's auth files; /);
    expect(c.source).toContain(reason);
  });

  it('ecr-login without credentials ("credentials not found") is a failure, not silence', async () => {
    const { fake, opts } = setup({ clis: ['aws', 'docker-credential-ecr-login'], modes: { 'docker-credential-ecr-login': 'logged-out' } });
    const c = await resolveCredential(ECR, opts);
    expect(c.kind).toBe('anonymous');
    expect(warns).toEqual([`cloud credentials for ${ECR}: docker-credential-ecr-login found no credentials for ${ECR}; run aws configure (or aws sso login); continuing without credentials`]);
    expect(fake.count('aws')).toBe(0);
  });

  it.each([
    ['empty', 'it printed no token'],
    ['garbage', 'its output is not a single token (25 bytes, not shown)'],
  ] as const)('aws exiting 0 with %s output fails without quoting it', async (mode, why) => {
    const { opts } = setup({ clis: ['aws'], modes: { aws: mode } });
    const c = await resolveCredential(ECR, opts);
    expect(c.kind).toBe('anonymous');
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain(`aws ecr get-login-password --region eu-west-3 failed: ${why}`);
    expect(warns[0]).not.toContain('html');
  });

  it('no aws and no helper on PATH: no warning; the anonymous source says what to install', async () => {
    const { fake, opts } = setup({ clis: [] });
    const c = await resolveCredential(ECR, opts);
    expect(warns).toEqual([]);
    expect(fake.count()).toBe(0);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toContain('neither docker-credential-ecr-login nor the aws CLI is on PATH: install the AWS CLI and run aws configure, or install docker-credential-ecr-login');
  });
});

describe('Google Artifact Registry / gcr.io', () => {
  const saKey = `{
  "type": "service_account",
  "project_id": "p",
  "private_key_id": "k",
  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIfakefakefake\\n-----END PRIVATE KEY-----\\n",
  "client_email": "ci@p.iam.gserviceaccount.com"
}
`;

  it.each(['gcr.io', 'eu.gcr.io', 'europe-west3-docker.pkg.dev', 'docker.us-central1.rep.pkg.dev'])('%s: docker-credential-gcloud first, then -gcr, then the key file, then gcloud', async (host) => {
    const key = path.join(root, 'sa.json');
    fs.writeFileSync(key, saKey);
    const all = setup({}, { GOOGLE_APPLICATION_CREDENTIALS: key });
    let c = await resolveCredential(host, all.opts);
    expect(c).toEqual({ kind: 'basic', username: '_dcgcloud_token', password: DEFAULT_FAKE_TOKENS['docker-credential-gcloud'], source: 'credential helper docker-credential-gcloud (cloud)' });
    expect(all.fake.invocations()).toEqual([{ cli: 'docker-credential-gcloud', args: ['get'], stdin: host }]);

    clearCloudCredentialCache();
    const noGcloudHelper = setup({ clis: ['gcloud', 'docker-credential-gcr'] }, { GOOGLE_APPLICATION_CREDENTIALS: key });
    c = await resolveCredential(host, noGcloudHelper.opts);
    expect(c).toEqual({ kind: 'basic', username: '_dcgcr_2_0_0_token', password: DEFAULT_FAKE_TOKENS['docker-credential-gcr'], source: 'credential helper docker-credential-gcr (cloud)' });

    clearCloudCredentialCache();
    const noHelpers = setup({ clis: ['gcloud'] }, { GOOGLE_APPLICATION_CREDENTIALS: key });
    c = await resolveCredential(host, noHelpers.opts);
    expect(c).toEqual({ kind: 'basic', username: '_json_key', password: saKey, source: `GOOGLE_APPLICATION_CREDENTIALS (service-account key ${key})` });
    expect(noHelpers.fake.count('gcloud')).toBe(0);
    expect(allText(c)).not.toContain('MIIfake');

    clearCloudCredentialCache();
    const gcloudOnly = setup({ clis: ['gcloud'] });
    c = await resolveCredential(host, gcloudOnly.opts);
    expect(c).toEqual({ kind: 'basic', username: 'oauth2accesstoken', password: DEFAULT_FAKE_TOKENS.gcloud, source: 'cloud CLI: gcloud auth print-access-token' });
    expect(gcloudOnly.fake.invocations().at(-1)).toEqual({ cli: 'gcloud', args: ['auth', 'print-access-token'] });
    expect(warns).toEqual([]);
    expectNoSecret(c);
  });

  it.each([
    ['an authorized_user file', '{"type": "authorized_user", "client_id": "x", "refresh_token": "1//fake-user-refresh"}', 'is an "authorized_user" file, not a service-account key; not sent'],
    ['an external_account file', '{"type": "external_account", "audience": "//iam"}', 'is an "external_account" file, not a service-account key; not sent'],
    ['not JSON', 'hello', 'is not JSON'],
  ])('GOOGLE_APPLICATION_CREDENTIALS naming %s is skipped with a debug line (never sent); gcloud is used', async (_n, text, why) => {
    const key = path.join(root, 'adc.json');
    fs.writeFileSync(key, text);
    const { opts } = setup({ clis: ['gcloud'] }, { GOOGLE_APPLICATION_CREDENTIALS: key });
    const c = await resolveCredential('us-docker.pkg.dev', opts);
    expect(c).toMatchObject({ kind: 'basic', username: 'oauth2accesstoken', password: DEFAULT_FAKE_TOKENS.gcloud });
    expect(warns).toEqual([]);
    expect(debugs).toContain(`cloud credentials for us-docker.pkg.dev: GOOGLE_APPLICATION_CREDENTIALS ${key} ${why}`);
    expect(allText(c)).not.toContain('fake-user-refresh');
  });

  it('a skipped key file and a failing gcloud: one warning with both reasons', async () => {
    const key = path.join(root, 'missing.json');
    const { opts } = setup({ clis: ['gcloud'], modes: { gcloud: 'logged-out' } }, { GOOGLE_APPLICATION_CREDENTIALS: key });
    const c = await resolveCredential('gcr.io', opts);
    expect(warns).toEqual([`cloud credentials for gcr.io: GOOGLE_APPLICATION_CREDENTIALS ${key} cannot be read (ENOENT); gcloud auth print-access-token failed: not logged in; run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file); continuing without credentials`]);
    expect(c.kind).toBe('anonymous');
  });

  it('gcloud not logged in: the anonymous source (the 401 hint) says gcloud auth print-access-token failed: not logged in; run gcloud auth login', async () => {
    const { opts } = setup({ clis: ['gcloud'], modes: { gcloud: 'logged-out' } });
    const c = await resolveCredential('gcr.io', opts);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toContain('; gcloud auth print-access-token failed: not logged in; run gcloud auth login');
    expect(warns).toHaveLength(1);
  });

  it('docker-credential-gcloud not logged in (its real text): "not logged in", not the raw message', async () => {
    const { fake, opts } = setup({ clis: ['gcloud', 'docker-credential-gcloud'], modes: { 'docker-credential-gcloud': 'logged-out' } });
    const c = await resolveCredential('gcr.io', opts);
    expect(c.kind).toBe('anonymous');
    expect(warns).toEqual(['cloud credentials for gcr.io: docker-credential-gcloud failed: not logged in; run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file); continuing without credentials']);
    expect(fake.count('gcloud')).toBe(0);
  });

  it('nothing on PATH and no key file: no warning; the source names what to install', async () => {
    const { opts } = setup({ clis: [] });
    const c = await resolveCredential('gcr.io', opts);
    expect(warns).toEqual([]);
    expect(c.source).toContain('install the Google Cloud CLI and run gcloud auth login, or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file');
  });
});

describe('Azure Container Registry', () => {
  it('az acr login --name <name> --expose-token --output json → an identity token for the refresh-token POST, plus the null-GUID Basic pair; az\'s stderr WARNING is ignored', async () => {
    const { fake, opts } = setup({ clis: ['az'] });
    const c = await resolveCredential(ACR, opts);
    expect(c).toEqual({
      kind: 'identity-token', token: DEFAULT_FAKE_TOKENS.az, username: '00000000-0000-0000-0000-000000000000', password: DEFAULT_FAKE_TOKENS.az,
      source: 'cloud CLI: az acr login --name myreg --expose-token',
    });
    expect(fake.invocations()).toEqual([{ cli: 'az', args: ['acr', 'login', '--name', 'myreg', '--expose-token', '--output', 'json'] }]);
    expect(warns).toEqual([]);
    expectNoSecret(c);
  });

  it('docker-credential-acr-env on PATH wins; its <token> answer becomes an identity token', async () => {
    const { fake, opts } = setup({ clis: ['az', 'docker-credential-acr-env'] });
    const c = await resolveCredential(ACR, opts);
    expect(c).toEqual({
      kind: 'identity-token', token: DEFAULT_FAKE_TOKENS['docker-credential-acr-env'], username: '00000000-0000-0000-0000-000000000000',
      password: DEFAULT_FAKE_TOKENS['docker-credential-acr-env'], source: 'credential helper docker-credential-acr-env (cloud)',
    });
    expect(fake.invocations()).toEqual([{ cli: 'docker-credential-acr-env', args: ['get'], stdin: ACR }]);
  });

  it('az not logged in: one warning, run az login; anonymous', async () => {
    const { opts } = setup({ clis: ['az'], modes: { az: 'logged-out' } });
    const c = await resolveCredential(ACR, opts);
    expect(warns).toEqual([`cloud credentials for ${ACR}: az acr login --name myreg --expose-token failed: not logged in; run az login; continuing without credentials`]);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toContain('az acr login --name myreg --expose-token failed: not logged in; run az login');
  });

  it('az printing cut JSON: malformed, not quoted', async () => {
    const { opts } = setup({ clis: ['az'], modes: { az: 'garbage' } });
    const c = await resolveCredential(ACR, opts);
    expect(c.kind).toBe('anonymous');
    expect(warns[0]).toMatch(/az acr login --name myreg --expose-token failed: its output is not JSON \(\d+ bytes, not shown\); run az login/);
    expect(warns[0]).not.toContain('cut');
  });
});

describe('once per process, reuse until expiry', () => {
  it('concurrent resolves (several repositories) share one run', async () => {
    const { fake, opts } = setup({ clis: ['aws'] });
    const cs = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((r) => resolveCredential(ECR, { ...opts, repository: r })));
    expect(fake.count('aws')).toBe(1);
    for (const c of cs) expect(c).toMatchObject({ kind: 'basic', password: DEFAULT_FAKE_TOKENS.aws });
    await resolveCredential(ECR, opts);
    expect(fake.count('aws')).toBe(1);
    expect(debugs.filter((d) => d.includes('reusing this process')).length).toBeGreaterThanOrEqual(5);
  });

  it('a failure is warned once across concurrent resolves, and not re-run at once', async () => {
    const { fake, opts } = setup({ clis: ['gcloud'], modes: { gcloud: 'logged-out' } });
    await Promise.all([1, 2, 3].map(() => resolveCredential('gcr.io', opts)));
    await resolveCredential('gcr.io', opts);
    expect(fake.count('gcloud')).toBe(1);
    expect(warns).toHaveLength(1);
  });

  it('different registries of one cloud run separately (each has its own region)', async () => {
    const { fake, opts } = setup({ clis: ['aws'] });
    await resolveCredential(ECR, opts);
    await resolveCredential('123456789012.dkr.ecr.us-east-1.amazonaws.com', opts);
    expect(fake.invocations().map((i) => i.args[3])).toEqual(['eu-west-3', 'us-east-1']);
  });

  it('an ECR token is reused until shortly before its 12 h expiry, then asked for again', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = new Date('2026-12-01T00:00:00Z').getTime();
    vi.setSystemTime(t0);
    const { fake, opts } = setup({ clis: ['aws'] });
    await resolveCredential(ECR, opts);
    vi.setSystemTime(t0 + 11 * 3600_000);
    await resolveCredential(ECR, opts);
    expect(fake.count('aws')).toBe(1);
    vi.setSystemTime(t0 + 11.9 * 3600_000);
    const c = await resolveCredential(ECR, opts);
    expect(fake.count('aws')).toBe(2);
    expect(c).toMatchObject({ kind: 'basic', password: DEFAULT_FAKE_TOKENS.aws });
    expect(debugs).toContain(`cloud credentials for ${ECR}: the cached answer has expired; asking again`);
  });

  it('a failure is asked again after a minute (a long-running process may have logged in since), but not warned twice', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const { fake, opts } = setup({ clis: ['aws'], modes: { aws: 'logged-out' } });
    await resolveCredential(ECR, opts);
    vi.setSystemTime(t0 + 61_000);
    await resolveCredential(ECR, opts);
    expect(fake.count('aws')).toBe(2);
    expect(warns).toHaveLength(1);
    writeFakeCloudClis(root, { clis: ['aws'] }); // "aws configure" happened
    vi.setSystemTime(t0 + 130_000);
    expect(await resolveCredential(ECR, opts)).toMatchObject({ kind: 'basic', password: DEFAULT_FAKE_TOKENS.aws });
  });
});

describe('when the cloud step runs', () => {
  it('cloudAuth: false: nothing runs; the anonymous source says cloud credentials are off', async () => {
    const { fake, opts } = setup();
    const c = await resolveCredential(ECR, { ...opts, cloudAuth: false });
    expect(fake.count()).toBe(0);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toContain('; cloud credentials are off (--no-cloud-auth)');
    expect(warns).toEqual([]);
  });

  it('a docker config auths entry wins over the cloud CLI', async () => {
    const { fake, opts } = setup();
    fs.mkdirSync(path.join(root, 'docker'));
    fs.writeFileSync(path.join(root, 'docker', 'config.json'), JSON.stringify({ auths: { [ECR]: { auth: Buffer.from('AWS:from-config').toString('base64') } } }));
    const c = await resolveCredential(ECR, opts);
    expect(c).toMatchObject({ kind: 'basic', username: 'AWS', password: 'from-config' });
    expect(fake.count()).toBe(0);
  });

  it('DOCKER_AUTH_CONFIG wins over the cloud CLI', async () => {
    const { fake, opts } = setup({}, { DOCKER_AUTH_CONFIG: JSON.stringify({ auths: { [ACR]: { auth: Buffer.from('sp:pw').toString('base64') } } }) });
    const c = await resolveCredential(ACR, opts);
    expect(c).toMatchObject({ kind: 'basic', username: 'sp', source: 'DOCKER_AUTH_CONFIG environment variable' });
    expect(fake.count()).toBe(0);
  });

  it('a podman auth.json entry wins over the cloud CLI', async () => {
    const { fake, opts } = setup();
    fs.mkdirSync(path.join(root, 'run', 'containers'), { recursive: true });
    fs.writeFileSync(path.join(root, 'run', 'containers', 'auth.json'), JSON.stringify({ auths: { 'gcr.io': { auth: Buffer.from('_json_key:x').toString('base64') } } }));
    const c = await resolveCredential('gcr.io', opts);
    expect(c).toMatchObject({ kind: 'basic', username: '_json_key', password: 'x' });
    expect(fake.count()).toBe(0);
  });

  it('a configured credHelpers entry for the host is docker\'s step and wins (its helper, not the cloud step, answers)', async () => {
    const { fake, opts } = setup({ clis: ['aws', 'docker-credential-ecr-login'] });
    fs.mkdirSync(path.join(root, 'docker'));
    fs.writeFileSync(path.join(root, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [ECR]: 'ecr-login' } }));
    const c = await resolveCredential(ECR, opts);
    expect(c).toMatchObject({ kind: 'basic', username: 'AWS', source: 'credential helper docker-credential-ecr-login' });
    expect(fake.count('aws')).toBe(0);
  });

  it('hosts that are no cloud registry never run anything and their source has no cloud note', async () => {
    const { fake, opts } = setup();
    for (const h of ['ghcr.io', 'docker.io', 'localhost:5000', 'notgcr.io', 'myreg.azurecr.io.evil.com', 'ecr.amazonaws.com']) {
      const c = await resolveCredential(h, opts);
      expect(c.kind).toBe('anonymous');
      expect(c.source).toMatch(/nor in podman's auth files\)$/);
    }
    expect(fake.count()).toBe(0);
  });
});

describe('secrets', () => {
  it('a CLI whose error echoes a token: the warning and source are redacted and cut to one line of ≤ 200 characters', async () => {
    const { opts } = setup({ clis: [] });
    const leak = 'eyJhbGciOiJSUzI1NiJ9LEAKEDSECRETVALUE0123456789abcdef';
    const bare = 'AQICAHhBARELEAKEDTOKEN0123456789abcdefXYZ';
    fs.writeFileSync(path.join(root, 'cloud-bin', 'aws'), `#!/bin/sh\nPATH=/usr/bin:/bin\nprintf 'error: Authorization: Bearer ${leak} rejected (${bare}) %s\\nsecond line ${leak}\\n' "$(printf 'x%.0s' $(seq 1 300))" >&2\nexit 1\n`, { mode: 0o755 });
    const c = await resolveCredential(ECR, opts);
    expect(warns).toHaveLength(1);
    expect(allText(c)).not.toContain('LEAKEDSECRET');
    expect(allText(c)).not.toContain('BARELEAKED');
    expect(warns[0]).toContain('failed: exit status 1: error: Authorization: Bearer *** rejected (***) xxx');
    expect(warns[0]).not.toContain('second line');
    const quoted = /exit status 1: (.*?); run aws configure/.exec(warns[0]!)![1]!;
    expect(quoted.length).toBeLessThanOrEqual(201);
    expect(warns[0]!.split('\n')).toHaveLength(1);
  });

  it('no secret appears in any warning, debug line or source, success or failure, for every provider', async () => {
    const hosts = [ECR, 'public.ecr.aws', 'gcr.io', 'us-docker.pkg.dev', ACR];
    for (const mode of ['ok', 'garbage', 'logged-out'] as const) {
      for (const clis of [['aws', 'gcloud', 'az'], undefined] as const) {
        clearCloudCredentialCache();
        clearCredentialHelperCache();
        const o: FakeCloudOptions = { modes: Object.fromEntries(['aws', 'gcloud', 'az', 'docker-credential-ecr-login', 'docker-credential-gcloud', 'docker-credential-gcr', 'docker-credential-acr-env'].map((k) => [k, mode])) };
        if (clis) o.clis = clis;
        const { opts } = setup(o);
        for (const h of hosts) expectNoSecret(await resolveCredential(h, opts));
      }
    }
  });
});
