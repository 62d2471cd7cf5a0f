/**
 * `ferry auth explain` against the REAL distribution registry in token, htpasswd and open modes:
 * the credential source and user (never the secret), the challenge, the scopes asked and granted
 * for pull and push, and whether each is allowed — checked by a manifest HEAD and an upload
 * session that is deleted at once (the registry's log shows the DELETE; nothing is written).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { TOKEN_SERVICE } from '../helpers/token-server.js';
import { expectDocument } from './json-contract.js';
import { expectFailure, ferryJson } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Explain {
  schemaVersion: number;
  command: string;
  source: string;
  registry: string;
  repository: string;
  credentials: { pull: { kind: string; username?: string; source?: string }; push: { kind: string; username?: string; source?: string } };
  challenge: { scheme: string; realm?: string; service?: string } | null;
  pull: { allowed: boolean | null; status?: number; scopesAsked: string[]; scopesGranted: string[] | null; checkedBy: string; reason?: string };
  push: { allowed: boolean | null; status?: number; scopesAsked: string[]; scopesGranted: string[] | null; checkedBy: string; reason?: string };
}

let work: TempDir;
let n = 0;
beforeAll(() => {
  work = makeTempDir('auth-explain');
});
afterAll(() => work?.remove());

function dockerDir(auths: Record<string, string>): string {
  const dir = join(work.path, `docker-${++n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: Object.fromEntries(Object.entries(auths).map(([k, v]) => [k, { auth: b64(v) }])) }));
  return dir;
}

/**
 * Upload sessions the registry opened for `repo` and whether each was cancelled (DELETE → 204),
 * from its access log; and whether anything was written (layers or manifests). distribution 2.8
 * keeps a cancelled session's directory (its filesystem driver fails closing the writer), so the
 * log is the witness, not the storage.
 */
function uploadTrace(reg: RealRegistry, repo: string): { opened: number; cancelled: number; written: boolean } {
  const log = readFileSync(reg.logFile, 'utf8');
  const esc = repo.replace(/[/.]/g, (c) => `\\${c}`);
  const opened = (log.match(new RegExp(`"POST /v2/${esc}/blobs/uploads/ HTTP/1.1" 202`, 'g')) ?? []).length;
  const cancelled = (log.match(new RegExp(`"DELETE /v2/${esc}/blobs/uploads/[0-9a-f-]+\\?[^ ]* HTTP/1.1" 204`, 'g')) ?? []).length;
  const base = join(reg.storageDir, 'docker/registry/v2/repositories', repo);
  return { opened, cancelled, written: existsSync(join(base, '_layers')) || existsSync(join(base, '_manifests')) };
}

describe.skipIf(!has)('auth explain against a real token-auth registry', () => {
  let reg: RealRegistry;
  beforeAll(async () => {
    reg = await startRegistry('token');
  }, 60_000);
  afterAll(async () => reg?.stop());

  it('read-write user from the docker config: source, user, challenge, scopes granted, pull and push allowed; no secret; nothing left behind', async () => {
    const pw = reg.users['alice']!;
    const dir = dockerDir({ [reg.host]: `alice:${pw}` });
    const r = await runCli(['auth', 'explain', '--json', `${reg.host}/team/app:1.0`], { env: { DOCKER_CONFIG: dir } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(pw);
    expect(r.stdout + r.stderr).not.toContain(b64(`alice:${pw}`));
    const e = JSON.parse(r.stdout) as Explain;
    expectDocument(e, 'auth explain');
    expect(e).toMatchObject({ schemaVersion: 1, command: 'auth explain', source: `${reg.host}/team/app`, registry: reg.host, repository: 'team/app' });
    expect(e.credentials.pull).toEqual({ kind: 'basic', username: 'alice', source: `docker config ${join(dir, 'config.json')} (auths)` });
    expect(e.challenge).toEqual({ scheme: 'bearer', realm: reg.tokenServer!.realm, service: TOKEN_SERVICE });
    expect(e.pull).toMatchObject({ allowed: true, status: 404, scopesAsked: ['repository:team/app:pull'] });
    expect(e.pull.scopesGranted).toEqual(['repository:team/app:pull']);
    expect(e.push).toMatchObject({ allowed: true, status: 202, scopesAsked: ['repository:team/app:pull,push'] });
    expect(e.push.scopesGranted).toEqual(['repository:team/app:pull,push']);
    expect(uploadTrace(reg, 'team/app')).toEqual({ opened: 1, cancelled: 1, written: false });
    // --debug logs every request and token exchange, redacted: still no secret, no token
    const d = await runCli(['auth', 'explain', '--debug', `${reg.host}/team/app:1.0`], { env: { DOCKER_CONFIG: dir } });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/token: requesting repository:team\/app:pull,push/);
    expect(d.stdout + d.stderr).not.toContain(pw);
    expect(d.stdout + d.stderr).not.toContain(b64(`alice:${pw}`));
    expect(d.stdout + d.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}/); // no JWT
  });

  it('read-only user: pull allowed, push not — granted only pull, said in text', async () => {
    const dir = dockerDir({ [reg.host]: `bob:${reg.users['bob']!}` });
    const e = await ferryJson<Explain>(['auth', 'explain', `${reg.host}/team/app`], { env: { DOCKER_CONFIG: dir } });
    expect(e.pull.allowed).toBe(true);
    expect(e.push.allowed).toBe(false);
    expect(e.push.scopesGranted).toEqual(['repository:team/app:pull']);
    const t = await runCli(['auth', 'explain', `${reg.host}/team/app`], { env: { DOCKER_CONFIG: dir } });
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^Credentials: user\/password, user "bob", from docker config .*\(auths\)$/m);
    expect(t.stdout).toMatch(/^Challenge:   Bearer realm="[^"]+\/token" service="ferry-test-registry"$/m);
    expect(t.stdout).toMatch(/^Pull:        allowed \(HTTP 404 to HEAD \/v2\/team\/app\/manifests\/latest\)$/m);
    expect(t.stdout).toMatch(/^Push:        NOT allowed \(HTTP 401 to POST/m);
    expect(t.stdout).toMatch(/scopes granted: repository:team\/app:pull$/m);
    expect(t.stderr).toBe('');
  });

  it('anonymous: says what was looked up; public/* pull allowed, private pull not', async () => {
    const pub = await ferryJson<Explain>(['auth', 'explain', `${reg.host}/public/tool`]);
    expect(pub.credentials.pull.kind).toBe('anonymous');
    expect(pub.credentials.pull.source).toContain(`no credentials for "${reg.host}"`);
    expect(pub.pull.allowed).toBe(true);
    expect(pub.push.allowed).toBe(false);
    const priv = await ferryJson<Explain>(['auth', 'explain', `${reg.host}/team/app`]);
    expect(priv.pull).toMatchObject({ allowed: false, status: 401, scopesGranted: [] });
  });

  it('wrong password: pull and push not allowed, the token server\'s refusal is the reason (exit 0, a report)', async () => {
    const dir = dockerDir({ [reg.host]: 'alice:not-her-password' });
    const e = await ferryJson<Explain>(['auth', 'explain', `${reg.host}/team/app`], { env: { DOCKER_CONFIG: dir } });
    expect(e.pull.allowed).toBe(false);
    expect(e.pull.reason).toMatch(/authentication failed/);
    expect(e.push.allowed).toBe(false);
  });

  it('--creds binds to the one registry; a local location is a usage error', async () => {
    const e = await ferryJson<Explain>(['auth', 'explain', '--creds', `alice:${reg.users['alice']!}`, `${reg.host}/team/app`]);
    expect(e.credentials.pull).toEqual({ kind: 'basic', username: 'alice', source: 'command line (--creds)' });
    expect(e.push.allowed).toBe(true);
    const bad = await runCli(['auth', 'explain', 'not a ref']);
    expectFailure(bad, 2);
  });
});

describe.skipIf(!has)('auth explain against Basic and open registries', () => {
  let basic: RealRegistry;
  let open: RealRegistry;
  beforeAll(async () => {
    [basic, open] = await Promise.all([startRegistry('htpasswd-tls'), startRegistry('open')]);
  }, 60_000);
  afterAll(async () => Promise.all([basic?.stop(), open?.stop()]));

  it('htpasswd: Basic challenge, no scopes, allowed by the registry\'s answers', async () => {
    const dir = dockerDir({ [basic.host]: `alice:${basic.users['alice']!}` });
    const e = await ferryJson<Explain>(['auth', 'explain', `${basic.host}/x/y`], { env: { DOCKER_CONFIG: dir, NODE_EXTRA_CA_CERTS: basic.caFile! } });
    expect(e.challenge?.scheme).toBe('basic');
    expect(e.pull).toMatchObject({ allowed: true, scopesAsked: [], scopesGranted: null });
    expect(e.push).toMatchObject({ allowed: true, status: 202 });
    expect(uploadTrace(basic, 'x/y')).toEqual({ opened: 1, cancelled: 1, written: false });
  });

  it('open registry: no challenge', async () => {
    const e = await ferryJson<Explain>(['auth', 'explain', `${open.host}/x/y`]);
    expect(e.challenge).toBeNull();
    expectDocument(e, 'auth explain');
    expect(e.credentials.pull.kind).toBe('anonymous');
    expect(e.pull.allowed).toBe(true);
    expect(e.push.allowed).toBe(true);
    expect(uploadTrace(open, 'x/y')).toEqual({ opened: 1, cancelled: 1, written: false });
  });
});
