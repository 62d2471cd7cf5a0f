/**
 * Cloud CLIs and helpers that hang (src/auth/cloud/ through auth/child-process.ts): the timeout
 * (`cloudTimeoutMs`) kills the whole process group — the script and the sleeping grandchild that
 * holds its stdout — and resolveCredential returns (anonymous, one warning) within a second of
 * the timeout. Also: the real google-cloud-cli installed on this machine, not logged in,
 * gives the same "not logged in; run gcloud auth login" as the fake.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearCloudCredentialCache, DEFAULT_CLOUD_TIMEOUT_MS } from '../../../src/auth/cloud/index.js';
import { clearCredentialHelperCache } from '../../../src/auth/cred-helper.js';
import { resolveCredential } from '../../../src/auth/keychain.js';
import { type FakeCloudCli, writeFakeCloudClis } from '../../helpers/fake-cloud-clis.js';

let root: string;
const leftovers: number[] = [];

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cloud-hang-'));
  clearCloudCredentialCache();
  clearCredentialHelperCache();
});
afterEach(() => {
  for (const p of leftovers.splice(0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
  clearCloudCredentialCache();
  fs.rmSync(root, { recursive: true, force: true });
});

/** True while `pid` is a live (non-zombie) process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

function env(binPath: string): NodeJS.ProcessEnv {
  return { PATH: binPath, HOME: root, DOCKER_CONFIG: path.join(root, 'docker'), XDG_RUNTIME_DIR: path.join(root, 'run'), XDG_CONFIG_HOME: path.join(root, 'config') };
}

describe('a hanging cloud CLI or helper', () => {
  it.each([
    ['aws', '123456789012.dkr.ecr.us-east-1.amazonaws.com', 'aws ecr get-login-password --region us-east-1 failed: timed out after 2 s (killed); run aws configure (or aws sso login)'],
    ['gcloud', 'gcr.io', 'gcloud auth print-access-token failed: timed out after 2 s (killed); run gcloud auth login'],
    ['az', 'myreg.azurecr.io', 'az acr login --name myreg --expose-token failed: timed out after 2 s (killed); run az login'],
    ['docker-credential-ecr-login', 'public.ecr.aws', 'credential helper docker-credential-ecr-login failed for public.ecr.aws: timed out after 2 s (killed); run aws configure'],
  ] as const)('%s: killed with its grandchild at the timeout; anonymous within ~1 s of it, one warning', async (cli: FakeCloudCli, host, reason) => {
    const fake = writeFakeCloudClis(root, { clis: [cli], modes: { [cli]: 'hang' } });
    const warns: string[] = [];
    const t0 = performance.now();
    const pending = resolveCredential(host, { env: env(fake.path()), homeDir: root, warn: (m) => warns.push(m), cloudTimeoutMs: 2000 });
    // Both processes are running before the timeout strikes (the script writes their pids first).
    // The timeout is 2 s so a loaded CI machine (2 cores, parallel suites) still starts the
    // script well inside it; wait for the pids until 1.8 s after the start at most.
    while (performance.now() - t0 < 1800 && fake.hangPids().length < 2) await new Promise((r) => setTimeout(r, 20));
    const running = fake.hangPids();
    leftovers.push(...running);
    expect(running).toHaveLength(2); // the script and its background sleep holding stdout
    for (const p of running) expect(alive(p)).toBe(true);
    const c = await pending;
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(1990);
    expect(ms).toBeLessThan(3000);
    expect(c.kind).toBe('anonymous');
    expect(c.source).toContain(reason);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain(reason);
    for (const p of running) expect(await goneWithin(p, 1000)).toBe(true);
  });

  it('without cloudTimeoutMs the default is 60 s: a CLI answering after 1 s is waited for', async () => {
    expect(DEFAULT_CLOUD_TIMEOUT_MS).toBe(60_000);
    const fake = writeFakeCloudClis(root, { clis: [] });
    fs.writeFileSync(path.join(fake.binDir, 'gcloud'), '#!/bin/sh\n/bin/sleep 1\necho ya29.slow-token-0123456789\n', { mode: 0o755 });
    const c = await resolveCredential('gcr.io', { env: env(fake.path()), homeDir: root, warn: () => {} });
    expect(c).toMatchObject({ kind: 'basic', username: 'oauth2accesstoken', password: 'ya29.slow-token-0123456789' });
  });
});

const REAL_GCLOUD = '/usr/lib/google-cloud-sdk/bin/gcloud';

describe.skipIf(!fs.existsSync(REAL_GCLOUD))('the real google-cloud-cli (installed here), not logged in', () => {
  it('gcloud auth print-access-token: "not logged in; run gcloud auth login", anonymous', async () => {
    // Only gcloud on ferry's PATH (a wrapper: gcloud's own script needs /usr/bin for python);
    // an empty config dir, so no account is selected and nothing goes to the network.
    const bin = path.join(root, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'gcloud'), `#!/bin/sh\nPATH=/usr/bin:/bin exec ${REAL_GCLOUD} "$@"\n`, { mode: 0o755 });
    const e = { ...env(bin), CLOUDSDK_CONFIG: path.join(root, 'gcloud-config'), CLOUDSDK_CORE_DISABLE_PROMPTS: '1', CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: '1' };
    const warns: string[] = [];
    const c = await resolveCredential('us-docker.pkg.dev', { env: e, homeDir: root, warn: (m) => warns.push(m) });
    expect(c.kind).toBe('anonymous');
    expect(warns).toEqual(['cloud credentials for us-docker.pkg.dev: gcloud auth print-access-token failed: not logged in; run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file); continuing without credentials']);
  }, 30_000);

  it('docker-credential-gcloud (first in the order when on PATH): "not logged in" too', async () => {
    const e = { ...env('/usr/bin:/bin'), CLOUDSDK_CONFIG: path.join(root, 'gcloud-config'), CLOUDSDK_CORE_DISABLE_PROMPTS: '1' };
    const warns: string[] = [];
    const c = await resolveCredential('gcr.io', { env: e, homeDir: root, warn: (m) => warns.push(m) });
    expect(c.kind).toBe('anonymous');
    expect(warns).toEqual(['cloud credentials for gcr.io: docker-credential-gcloud failed: not logged in; run gcloud auth login (or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file); continuing without credentials']);
  }, 30_000);
});
