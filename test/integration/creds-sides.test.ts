/**
 * Credentials go only where they belong, against two real registries: a token-auth registry
 * (its token server records every user name presented, accepted or not) and an htpasswd registry
 * over https (its log names every user that tried). Per-side flags (--src-creds, --dest-creds,
 * --src-username + --password-stdin), the usage errors of side-less --creds on two hosts, a
 * same-registry copy with two users (each side's requests carry its own user; mounts the
 * destination's), and --authfile in docker, podman (namespaced key) and Kubernetes formats.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { inspectDigest, pushWithSkopeo } from '../helpers/skopeo.js';
import type { TokenRequestRecord } from '../helpers/token-server.js';
import { accessLines, logMark, logSince } from './push-support.js';
import { expectFailure, ferryImage, ferryJson, oneImage, type TransferDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('openssl') && requireBinary('perl');
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe.skipIf(!has)('per-side credentials across two real registries', () => {
  let tok: RealRegistry; // token auth: alice read-write, bob read-only
  let ht: RealRegistry; // htpasswd over https: alice only
  let src: TempDir;
  let work: TempDir;
  let image: OciLayoutResult;
  let env: NodeJS.ProcessEnv;
  let BOB: string;
  let ALICE_TOK: string;
  let ALICE_HT: string;
  let n = 0;
  const file = (name: string, doc: unknown): string => {
    const p = join(work.path, `${++n}-${name}`);
    writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return p;
  };
  /** Token-server requests from `mark` on. */
  const tokenSince = (mark: number): TokenRequestRecord[] => tok.tokenServer!.requests.slice(mark);

  beforeAll(async () => {
    src = makeTempDir('creds-src');
    work = makeTempDir('creds-work');
    image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: 32 * 1024, seed: 'creds-sides' });
    [tok, ht] = await Promise.all([startRegistry('token'), startRegistry('htpasswd-tls')]);
    env = { NODE_EXTRA_CA_CERTS: ht.caFile };
    BOB = `bob:${tok.users.bob}`;
    ALICE_TOK = `alice:${tok.users.alice}`;
    ALICE_HT = `alice:${ht.users.alice}`;
    await Promise.all([
      pushWithSkopeo(src.path, 'v1', tok, 'private/src', { user: 'alice' }),
      pushWithSkopeo(src.path, 'v1', ht, 'team/app', { user: 'alice' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([tok?.stop(), ht?.stop()]);
    src?.remove();
    work?.remove();
  });

  it('the htpasswd registry log names a user that tried (so its absence below means something)', async () => {
    const mark = logMark(ht);
    const r = await runCli(['inspect', '--creds', 'bob:not-here-pw', `${ht.host}/team/app:v1`], { env });
    expect(r.code).toBe(3);
    expect(await logSince(ht, mark)).toContain('bob');
  });

  it('copy --src-creds bob --dest-creds alice: the source never sees alice, the destination never sees bob', async () => {
    const tMark = tok.tokenServer!.requests.length;
    const hMark = logMark(ht);
    const doc = await ferryImage(['copy', '-q', '--src-creds', BOB, '--dest-creds', ALICE_HT, `${tok.host}/private/src:v1`, `${ht.host}/team/copied:v1`], { env });
    expect(doc).toMatchObject({ digest: image.digest, changes: [] });
    expect(doc.blobs).toMatchObject({ total: 3, transferred: 3 });

    const asked = tokenSince(tMark);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.map((q) => q.attemptedUser)).not.toContain('alice');
    expect(asked.some((q) => q.user === 'bob')).toBe(true);
    const htLog = await logSince(ht, hMark);
    expect(accessLines(htLog).some((l) => l.target.startsWith('/v2/team/copied/manifests/v1') && l.status === 201)).toBe(true);
    expect(htLog).not.toContain('bob');
    expect(htLog).toContain('alice');
    expect(await inspectDigest(ht, 'team/copied', 'v1', 'alice')).toBe(image.digest);
  });

  it('--src-username with --password-stdin feeds the source side only', async () => {
    const tMark = tok.tokenServer!.requests.length;
    const hMark = logMark(ht);
    const r = await runCli(['copy', '-q', '--json', '--src-username', 'bob', '--password-stdin', '--dest-creds', ALICE_HT, `${tok.host}/private/src:v1`, `${ht.host}/team/stdin:v1`], { env, stdin: `${tok.users.bob}\n` });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(tokenSince(tMark).map((q) => q.attemptedUser)).not.toContain('alice');
    expect(tokenSince(tMark).some((q) => q.user === 'bob')).toBe(true);
    expect(await logSince(ht, hMark)).not.toContain('bob');
  });

  it('side-less --creds on a two-registry copy or pull → exit 2 naming the per-side flags; nothing is sent', async () => {
    const tMark = tok.tokenServer!.requests.length;
    const hMark = logMark(ht);
    const [copy, user, pull, stdin] = await Promise.all([
      runCli(['copy', '--creds', ALICE_TOK, `${tok.host}/private/src:v1`, `${ht.host}/team/x:v1`], { env }),
      runCli(['copy', '--username', 'alice', '--password-stdin', `${tok.host}/private/src:v1`, `${ht.host}/team/x:v1`], { env, stdin: 'pw\n' }),
      runCli(['pull', '--creds', ALICE_TOK, `${tok.host}/private/src:v1`, `${ht.host}/team/app:v1`, '-o', join(work.path, 'two.tar')], { env }),
      runCli(['copy', '--src-username', 'bob', '--dest-username', 'alice', '--password-stdin', `${tok.host}/private/src:v1`, `${ht.host}/team/x:v1`], { env, stdin: 'pw\n' }),
    ]);
    expectFailure(copy, 2, '--creds would go to every registry', tok.host, ht.host, /hint: .*--src-creds .*--dest-creds/);
    expectFailure(user, 2, '--username would go to every registry', /--src-creds/);
    expectFailure(pull, 2, '--creds would go to every registry', /hint: .*--authfile/);
    expectFailure(stdin, 2, '--password-stdin can give the password of only one of --src-username and --dest-username');
    for (const r of [copy, pull]) expect(r.stderr).not.toContain(tok.users.alice!);
    expect(tokenSince(tMark)).toEqual([]);
    expect(accessLines(await logSince(ht, hMark))).toEqual([]);
  });

  it('one registry, two users: bob reads the source, alice writes (and mounts into) the destination', async () => {
    const tMark = tok.tokenServer!.requests.length;
    const r = await runCli(['--debug', 'copy', '-q', '--json', '--src-creds', BOB, '--dest-creds', ALICE_TOK, `${tok.host}/private/src:v1`, `${tok.host}/private/dst:v1`]);
    expect(r.code, r.stderr).toBe(0);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
    expect(doc).toMatchObject({ digest: image.digest });
    expect(r.stderr).toContain(`credentials for ${tok.host} (source): basic (command line (--src-creds))`);
    expect(r.stderr).toContain(`credentials for ${tok.host} (destination): basic (command line (--dest-creds))`);
    for (const secret of [tok.users.bob!, tok.users.alice!, b64(BOB), b64(ALICE_TOK)]) expect(r.stderr).not.toContain(secret);
    expect(doc.blobs.mounted).toBe(3); // alice may pull private/src: the mount (with her token) works
    const asked = tokenSince(tMark);
    const byBob = asked.filter((q) => q.attemptedUser === 'bob');
    const byAlice = asked.filter((q) => q.attemptedUser === 'alice');
    expect(byBob.length).toBeGreaterThan(0);
    expect(byAlice.length).toBeGreaterThan(0);
    expect(asked.every((q) => q.attemptedUser === 'bob' || q.attemptedUser === 'alice')).toBe(true);
    // bob's tokens are for reading the source only; every write scope was asked for by alice
    for (const q of byBob) expect(q.scopes).toEqual(['repository:private/src:pull']);
    expect(byAlice.some((q) => q.scopes.includes('repository:private/dst:pull,push') && q.scopes.includes('repository:private/src:pull'))).toBe(true);
    expect(await inspectDigest(tok, 'private/dst', 'v1', 'alice')).toBe(image.digest);
  });

  it('--creds on a same-registry copy is one host: both sides use it', async () => {
    const tMark = tok.tokenServer!.requests.length;
    const doc = await ferryImage(['copy', '-q', '--creds', ALICE_TOK, `${tok.host}/private/src:v1`, `${tok.host}/private/same:v1`]);
    expect(doc.digest).toBe(image.digest);
    expect(new Set(tokenSince(tMark).map((q) => q.attemptedUser))).toEqual(new Set(['alice']));
  });

  it('--authfile (docker config.json): each registry gets its own entry', async () => {
    const authfile = file('config.json', { auths: { [tok.host]: { auth: b64(BOB) }, [`https://${ht.host}`]: { auth: b64(ALICE_HT) } } });
    const tMark = tok.tokenServer!.requests.length;
    const hMark = logMark(ht);
    const doc = await ferryImage(['copy', '-q', '--authfile', authfile, `${tok.host}/private/src:v1`, `${ht.host}/team/from-authfile:v1`], { env });
    expect(doc.digest).toBe(image.digest);
    expect(tokenSince(tMark).map((q) => q.attemptedUser)).not.toContain('alice');
    expect(tokenSince(tMark).some((q) => q.user === 'bob')).toBe(true);
    expect(await logSince(ht, hMark)).not.toContain('bob');
  });

  it('pull of two images from two registries with --authfile: each registry gets only its own user', async () => {
    const authfile = file('pull-auth.json', { auths: { [tok.host]: { auth: b64(BOB) }, [ht.host]: { auth: b64(ALICE_HT) } } });
    const tMark = tok.tokenServer!.requests.length;
    const hMark = logMark(ht);
    const r = await runCli(['pull', '-q', '--json', '--authfile', authfile, `${tok.host}/private/src:v1`, `${ht.host}/team/app:v1`, '-o', join(work.path, 'two.tar')], { env });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { images: unknown[] }).images).toHaveLength(2);
    expect(tokenSince(tMark).map((q) => q.attemptedUser)).not.toContain('alice');
    expect(tokenSince(tMark).some((q) => q.user === 'bob')).toBe(true);
    const htLog = await logSince(ht, hMark);
    expect(htLog).not.toContain('bob');
    // every request needs auth there: a 200 for the manifest means alice's entry was used
    expect(accessLines(htLog).some((l) => l.target.startsWith('/v2/team/app/manifests/') && l.status === 200)).toBe(true);
  });

  it('--src-authfile (podman auth.json, namespaced key) and --dest-authfile (Kubernetes Secret manifest)', async () => {
    const podman = file('auth.json', { auths: { [`${tok.host}/private`]: { auth: b64(BOB) }, [tok.host]: { auth: b64('alice:wrong-pw') } } });
    const secret = file('secret.json', {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', metadata: { name: 'pull' },
      data: { '.dockerconfigjson': b64(JSON.stringify({ auths: { [ht.host]: { username: 'alice', password: ht.users.alice } } })) },
    });
    const tMark = tok.tokenServer!.requests.length;
    const doc = await ferryImage(['copy', '-q', '--src-authfile', podman, '--dest-authfile', secret, `${tok.host}/private/src:v1`, `${ht.host}/team/from-k8s:v1`], { env });
    expect(doc.digest).toBe(image.digest);
    expect(new Set(tokenSince(tMark).map((q) => q.attemptedUser))).toEqual(new Set(['bob'])); // the namespaced key won
  });

  it('--authfile with a Kubernetes .dockerconfigjson value works for inspect; a missing or malformed one → exit 2 naming it', async () => {
    const k8s = file('dockerconfigjson', { auths: { [ht.host]: { auth: b64(ALICE_HT) } } });
    const doc = await ferryJson<{ digest: string }>(['inspect', '--authfile', k8s, `${ht.host}/team/app:v1`], { env });
    expect(doc.digest).toBe(image.digest);
    const missing = join(work.path, 'no-such-authfile.json');
    const broken = file('broken.json', `{"auths": {"${ht.host}": {"auth": "${b64(ALICE_HT)}"`);
    const [m, b] = await Promise.all([
      runCli(['inspect', '--authfile', missing, `${ht.host}/team/app:v1`], { env }),
      runCli(['inspect', '--authfile', broken, `${ht.host}/team/app:v1`], { env }),
    ]);
    expectFailure(m, 2, `cannot read authfile ${missing}: no such file`);
    expectFailure(b, 2, `cannot read authfile ${broken}`);
    expect(b.stderr).not.toContain(b64(ALICE_HT));
  });
});
