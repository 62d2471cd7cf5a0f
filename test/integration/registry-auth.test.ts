/**
 * ferry against authenticating registries: htpasswd (Basic over https with a harness CA) and
 * docker token auth (Bearer from our token server). Credentials from flags, stdin, docker's
 * config.json and a credential helper; TLS trust; exit statuses; and that no secret (password,
 * its base64, a bearer token) ever reaches stderr, even with --debug.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_MANIFEST, REF_NAME, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import { expectBlobs, expectFailure, ferryImage, ferryJson, ferryOk, layoutEntry, readLayoutIndex } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('openssl') && requireBinary('perl');

const ALICE = 'alice:alice-secret-pw';
const BOB = 'bob:bob-secret-pw';
const WRONG = 'wrong-pw-Zq81x';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

let image: OciLayoutResult;
let src: TempDir;
let work: TempDir;
let n = 0;
const out = (): string => join(work.path, `out-${++n}`);

beforeAll(async () => {
  src = makeTempDir('auth-src');
  work = makeTempDir('auth-work');
  image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: 64 * 1024, seed: 'auth' });
});
afterAll(() => {
  src?.remove();
  work?.remove();
});

/** Secrets that must never show up in ferry's output. */
function expectNoSecrets(r: CliResult, ...secrets: string[]): void {
  const all = r.stdout + r.stderr;
  for (const s of secrets) expect(all, `leaked ${s}`).not.toContain(s);
  expect(all, 'a JWT leaked').not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/);
}

/** `debug: → METHOD URL {headers}` lines, parsed. */
function requestLines(stderr: string): Array<{ method: string; url: URL; headers: Record<string, string> }> {
  return [...stderr.matchAll(/^debug: → (\S+) (\S+) (\{.*\})$/gm)].map((m) => ({
    method: m[1]!, url: new URL(m[2]!), headers: JSON.parse(m[3]!) as Record<string, string>,
  }));
}

/** Writes $DOCKER_CONFIG/config.json and returns the dir. */
function dockerConfig(doc: unknown): string {
  const dir = join(work.path, `docker-config-${++n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(doc));
  return dir;
}

describe.skipIf(!has)('htpasswd registry over https', () => {
  let reg: RealRegistry;
  let ref: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    reg = await startRegistry('htpasswd-tls');
    ref = `${reg.host}/team/app:v1`;
    env = { NODE_EXTRA_CA_CERTS: reg.caFile };
    expect(await pushWithSkopeo(src.path, 'v1', reg, 'team/app')).toBe(image.digest);
  });
  afterAll(async () => reg?.stop());

  it('--creds: inspect, tags and pull work', async () => {
    const dir = out();
    const [insp, tags, pull] = await Promise.all([
      ferryJson<{ digest: string }>(['inspect', '--creds', ALICE, ref], { env }),
      ferryOk(['tags', '--creds', ALICE, `${reg.host}/team/app`], { env }),
      ferryImage(['pull', '-q', '--creds', ALICE, ref, `oci:${dir}`], { env }),
    ]);
    expect(insp.digest).toBe(image.digest);
    expect(tags.stdout).toBe('v1\n');
    expect(pull.digest).toBe(image.digest);
    expect(layoutEntry(dir, 'v1').digest).toBe(image.digest);
    const m = image.manifests[0]!;
    expectBlobs(dir, [m.digest, m.configDigest, ...m.layerDigests]);
  });

  it('wrong password → exit 3 without echoing it; no credentials → exit 3 "authentication required"', async () => {
    const [wrong, none, pullWrong] = await Promise.all([
      runCli(['inspect', '--creds', `alice:${WRONG}`, ref], { env }),
      runCli(['inspect', ref], { env }),
      runCli(['pull', '--creds', `alice:${WRONG}`, ref, `oci:${join(work.path, 'denied')}`], { env }),
    ]);
    expectFailure(wrong, 3, 'credentials rejected');
    expectFailure(pullWrong, 3);
    for (const r of [wrong, pullWrong]) expectNoSecrets(r, WRONG, b64(`alice:${WRONG}`));
    expectFailure(none, 3, 'authentication required', /hint: .*--creds/);
    expect(readLayoutIndexSafe(join(work.path, 'denied'))).toBeUndefined();
  });

  it('--tls-verify=false works without trusting the CA', async () => {
    const doc = await ferryJson<{ digest: string }>(['inspect', '--tls-verify=false', '--creds', ALICE, ref]);
    expect(doc.digest).toBe(image.digest);
  });

  it('untrusted CA → exit 5 with a TLS message and a hint naming NODE_EXTRA_CA_CERTS / --tls-verify', async () => {
    // The https attempt fails verification; ferry must report that (not the registry's answer
    // to its plain-http retry on the same port) and say how to trust the CA.
    const results = await Promise.all([
      runCli(['inspect', '--creds', ALICE, ref]),
      runCli(['tags', '--creds', ALICE, `${reg.host}/team/app`]),
    ]);
    for (const r of results) {
      expectFailure(r, 5, /TLS|certificate/i, /hint: .*(NODE_EXTRA_CA_CERTS|--tls-verify)/);
      expect(r.stderr).not.toContain('HTTP 400');
    }
  });

  it('credentials from a docker config.json (auths, base64 auth) work', async () => {
    const DOCKER_CONFIG = dockerConfig({ auths: { [reg.host]: { auth: b64(ALICE) } } });
    const dir = out();
    const doc = await ferryImage(['pull', '-q', ref, `oci:${dir}:from-config`], { env: { ...env, DOCKER_CONFIG } });
    expect(doc.digest).toBe(image.digest);
    expect(layoutEntry(dir, 'from-config').digest).toBe(image.digest);
    const t = await ferryJson<{ tags: string[] }>(['tags', `${reg.host}/team/app`], { env: { ...env, DOCKER_CONFIG } });
    expect(t.tags).toEqual(['v1']);
  });

  it('--username with --password-stdin works; an empty stdin is a usage error', async () => {
    const [ok, empty] = await Promise.all([
      runCli(['inspect', '--json', '--username', 'alice', '--password-stdin', ref], { env, stdin: 'alice-secret-pw\n' }),
      runCli(['inspect', '--username', 'alice', '--password-stdin', ref], { env, stdin: '' }),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as { digest: string }).digest).toBe(image.digest);
    expectFailure(empty, 2, 'password-stdin');
  });

  it('--debug redacts the Authorization header and never prints the password or its base64', async () => {
    const r = await ferryOk(['--debug', 'inspect', '--creds', ALICE, ref], { env });
    const reqs = requestLines(r.stderr);
    expect(reqs.length).toBeGreaterThanOrEqual(3);
    const authed = reqs.filter((q) => q.headers['authorization'] !== undefined);
    expect(authed.length).toBeGreaterThanOrEqual(2);
    for (const q of authed) expect(q.headers['authorization']).toBe('Basic ***');
    expectNoSecrets(r, 'alice-secret-pw', b64(ALICE), b64('alice-secret-pw'));
  });
});

function readLayoutIndexSafe(dir: string): unknown {
  try {
    return readLayoutIndex(dir);
  } catch {
    return undefined;
  }
}

describe.skipIf(!has)('token-auth registry', () => {
  let reg: RealRegistry;
  let priv: string;
  let pub: string;

  beforeAll(async () => {
    reg = await startRegistry('token');
    priv = `${reg.host}/private/app:v1`;
    pub = `${reg.host}/public/app:v1`;
    await pushWithSkopeo(src.path, 'v1', reg, 'private/app', { user: 'alice' });
    await pushWithSkopeo(src.path, 'v1', reg, 'public/app', { user: 'alice' });
  });
  afterAll(async () => reg?.stop());

  it.each([
    ['alice (read-write)', 'private/app', 'alice'],
    ['bob (read-only)', 'private/app', 'bob'],
    ['anonymous', 'public/app', undefined],
  ])('%s can inspect and pull %s', async (_who, repo, user) => {
    const flags = user ? ['--creds', `${user}:${reg.users[user]}`] : [];
    const dir = out();
    const before = reg.tokenServer!.requests.length;
    const [insp, pull] = await Promise.all([
      ferryJson<{ digest: string }>(['inspect', ...flags, `${reg.host}/${repo}:v1`]),
      ferryImage(['pull', '-q', ...flags, `${reg.host}/${repo}:v1`, `oci:${dir}`]),
    ]);
    expect(insp.digest).toBe(image.digest);
    expect(pull.digest).toBe(image.digest);
    expect(pull.blobs.total).toBe(3);
    expect(readLayoutIndex(dir).manifests).toEqual([
      { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifests[0]!.size, annotations: { [REF_NAME]: 'v1', 'io.containerd.image.name': `${reg.host}/${repo}:v1` } },
    ]);
    const m = image.manifests[0]!;
    expectBlobs(dir, [m.digest, m.configDigest, ...m.layerDigests]);
    // Each run asked the token server for a pull token, as this principal.
    const seen = reg.tokenServer!.requests.slice(before);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const q of seen) {
      expect(q).toMatchObject({ path: '/token', status: 200, hasAuth: user !== undefined, user });
      expect(q.granted).toEqual([{ type: 'repository', name: repo, actions: ['pull'] }]);
    }
  });

  it('anonymous on private/ → exit 3; wrong password → exit 3 without echoing it', async () => {
    const [anon, anonPull, wrong] = await Promise.all([
      runCli(['inspect', priv]),
      runCli(['pull', priv, `oci:${join(work.path, 'anon')}`]),
      runCli(['inspect', '--creds', `bob:${WRONG}`, priv]),
    ]);
    expectFailure(anon, 3, 'authentication required');
    // The hint names the exact key ferry looked up, and where.
    expect(anon.stderr).toMatch(/hint: .*ferry login 127\.0\.0\.1:\d+; no credentials for "127\.0\.0\.1:\d+" in docker config \S+config\.json, nor in podman's auth files/);
    expectFailure(anonPull, 3);
    expectFailure(wrong, 3);
    expectNoSecrets(wrong, WRONG, b64(`bob:${WRONG}`));
  });

  it('a credential helper from credHelpers supplies alice', async () => {
    const bin = join(work.path, 'helper-bin');
    mkdirSync(bin, { recursive: true });
    const log = join(bin, 'asked.log');
    const script = join(bin, 'docker-credential-fake');
    writeFileSync(script, [
      '#!/bin/sh',
      '[ "$1" = get ] || exit 1',
      `read -r key || true; printf '%s' "$key" >> '${log}'`,
      `printf '{"ServerURL":"%s","Username":"alice","Secret":"alice-secret-pw"}' "$key"`,
      '',
    ].join('\n'));
    chmodSync(script, 0o755);
    const DOCKER_CONFIG = dockerConfig({ auths: {}, credHelpers: { [reg.host]: 'fake' } });
    const env = { DOCKER_CONFIG, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
    const before = reg.tokenServer!.requests.length;
    const r = await ferryOk(['--debug', 'inspect', '--json', priv], { env });
    expect((JSON.parse(r.stdout) as { digest: string }).digest).toBe(image.digest);
    expect(r.stderr).toContain('credential helper docker-credential-fake');
    expect(readFileSync(log, 'utf8')).toBe(reg.host);
    const reqs = reg.tokenServer!.requests.slice(before);
    expect(reqs.some((q) => q.user === 'alice' && q.granted.some((g) => g.name === 'private/app'))).toBe(true);
  });

  it('Basic credentials go only to the token server; the registry only ever sees Bearer ***', async () => {
    const before = reg.tokenServer!.requests.length;
    const r = await ferryOk(['--debug', 'pull', '--progress', 'none', '--creds', ALICE, priv, `oci:${out()}`]);
    const reqs = requestLines(r.stderr);
    const tokenHost = new URL(reg.tokenServer!.url).host;
    const toRegistry = reqs.filter((q) => q.url.host === reg.host);
    const toTokens = reqs.filter((q) => q.url.host === tokenHost);
    expect(toRegistry.length).toBeGreaterThanOrEqual(4);
    expect(toTokens.length).toBeGreaterThanOrEqual(1);
    expect(toRegistry.length + toTokens.length).toBe(reqs.length);
    for (const q of toRegistry) expect(q.headers['authorization'] ?? 'Bearer ***').toBe('Bearer ***');
    expect(toRegistry.some((q) => q.headers['authorization'] === 'Bearer ***')).toBe(true);
    for (const q of toTokens) expect(q.headers['authorization']).toBe('Basic ***');
    expectNoSecrets(r, 'alice-secret-pw', b64(ALICE));

    // One token exchange serves every request of the run (concurrent blob GETs share it).
    const seen = reg.tokenServer!.requests.slice(before);
    expect(seen).toHaveLength(1);
    for (const q of seen) expect(q).toMatchObject({ method: 'GET', path: '/token', hasAuth: true, user: 'alice', status: 200 });
    expect(seen.some((q) => q.scopes.includes('repository:private/app:pull'))).toBe(true);
  });
});
