/**
 * Writes against a docker-token-auth registry (alice read-write, bob read-only, anonymous pull on
 * public/*): push, permission failures (exit 3, nothing tagged), same-registry copies that mount,
 * cross-instance copies that upload without trying a mount, and tag / delete permissions.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_MANIFEST, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { inspectDigest, pushWithSkopeo } from '../helpers/skopeo.js';
import { accessLines, blobWrites, logMark, logSince, uploadRequests } from './push-support.js';
import { expectBlobs, expectFailure, ferryImage, ferryJson, ferryOk, layoutEntry, oneImage, type TransferDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('openssl');

describe.skipIf(!has)('push, copy, tag and delete with token auth', () => {
  let reg: RealRegistry;
  let other: RealRegistry; // an open registry: a source on another instance
  let src: TempDir;
  let work: TempDir;
  let image: OciLayoutResult;
  let alice: string[];
  let bob: string[];
  let n = 0;
  const out = (): string => join(work.path, `out-${++n}`);

  beforeAll(async () => {
    src = makeTempDir('push-auth-src');
    work = makeTempDir('push-auth-work');
    image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: 64 * 1024, seed: 'push-auth' });
    [reg, other] = await Promise.all([startRegistry('token'), startRegistry('open')]);
    alice = ['--creds', `alice:${reg.users.alice}`];
    bob = ['--creds', `bob:${reg.users.bob}`];
    await Promise.all([
      pushWithSkopeo(src.path, 'v1', reg, 'public/src', { user: 'alice' }),
      pushWithSkopeo(src.path, 'v1', other, 'lib/app'),
    ]);
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), other?.stop()]);
    src?.remove();
    work?.remove();
  });

  it('alice pushes to private/app; alice and bob can pull it', async () => {
    const m = image.manifests[0]!;
    const before = reg.tokenServer!.requests.length;
    const doc = await ferryImage(['push', '-q', ...alice, `oci:${src.path}:v1`, `${reg.host}/private/app:v1`]);
    expect(doc).toMatchObject({ digest: image.digest, mediaType: OCI_MANIFEST, changes: [] });
    expect(doc.blobs).toMatchObject({ total: 3, transferred: 3 });
    const asked = reg.tokenServer!.requests.slice(before);
    expect(asked.some((q) => q.user === 'alice' && q.granted.some((g) => g.name === 'private/app' && g.actions.includes('push')))).toBe(true);

    const [a, b] = [out(), out()];
    const [pa, pb] = await Promise.all([
      ferryImage(['pull', '-q', ...alice, `${reg.host}/private/app:v1`, `oci:${a}`]),
      ferryImage(['pull', '-q', ...bob, `${reg.host}/private/app:v1`, `oci:${b}`]),
    ]);
    expect(pa.digest).toBe(image.digest);
    expect(pb.digest).toBe(image.digest);
    expect(layoutEntry(a, 'v1').digest).toBe(image.digest);
    expectBlobs(b, [m.digest, m.configDigest, ...m.layerDigests]);
    expect(await inspectDigest(reg, 'private/app', 'v1', 'bob')).toBe(image.digest);
  });

  it('bob (read-only) pushing → exit 3 naming the repository; nothing is tagged', async () => {
    // Into a repository that exists (its blobs are already there, only the manifest PUT is left)…
    const existing = await runCli(['push', ...bob, `oci:${src.path}:v1`, `${reg.host}/private/app:by-bob`]);
    expectFailure(existing, 3, 'private/app', 'access denied');
    // …and into a new one (the blob upload is refused).
    const fresh = await runCli(['push', ...bob, `oci:${src.path}:v1`, `${reg.host}/private/bob-only:v1`]);
    expectFailure(fresh, 3, 'private/bob-only', 'access denied');

    const tags = await ferryJson<{ tags: string[] }>(['tags', ...alice, `${reg.host}/private/app`]);
    expect(tags.tags).not.toContain('by-bob');
    const [noTag, noRepo] = await Promise.all([
      runCli(['inspect', ...alice, `${reg.host}/private/app:by-bob`]),
      runCli(['tags', ...alice, `${reg.host}/private/bob-only`]),
    ]);
    expectFailure(noTag, 4, 'not found');
    expectFailure(noRepo, 4, 'not found');
  });

  it('anonymous push → exit 3 (public/ and private/)', async () => {
    const [pub, priv] = await Promise.all([
      runCli(['push', `oci:${src.path}:v1`, `${reg.host}/public/anon:v1`]),
      runCli(['push', `oci:${src.path}:v1`, `${reg.host}/private/anon:v1`]),
    ]);
    expectFailure(pub, 3, 'public/anon', 'authentication required');
    expectFailure(priv, 3, 'private/anon', 'authentication required');
    const pubTags = await runCli(['tags', `${reg.host}/public/anon`]);
    expectFailure(pubTags, 4, 'not found');
  });

  it('copy as alice from public/src to private/dst mounts every blob (no blob bytes uploaded)', async () => {
    const mark = logMark(reg);
    const before = reg.tokenServer!.requests.length;
    const r = await ferryOk(['copy', '--json', '--progress', 'plain', ...alice, `${reg.host}/public/src:v1`, `${reg.host}/private/dst:v1`]);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
    const log = await logSince(reg, mark);
    expect(doc).toMatchObject({ digest: image.digest, changes: [] });
    expect(doc.blobs.total).toBe(3);
    expect(doc.blobs.mounted).toBe(doc.blobs.total);
    expect(doc.blobs.transferred).toBe(0);
    expect(r.stderr).toContain('from public/src');
    const lines = accessLines(log);
    expect(blobWrites(lines, 'private/dst'), log).toEqual([]);
    expect(uploadRequests(lines, 'private/dst').filter((l) => l.target.includes('mount=') && l.status === 201)).toHaveLength(3);
    // The mount token covered both repositories.
    const asked = reg.tokenServer!.requests.slice(before);
    expect(asked.some((q) => q.scopes.includes('repository:public/src:pull') && q.scopes.some((s) => s.startsWith('repository:private/dst:')))).toBe(true);
    expect(await inspectDigest(reg, 'private/dst', 'v1', 'alice')).toBe(image.digest);
  });

  it('copy from another registry instance uploads normally: no mount attempted', async () => {
    const mark = logMark(reg);
    // two registries: --creds would be a usage error; the destination's credentials go to it alone
    const doc = await ferryImage(['copy', '-q', '--dest-creds', `alice:${reg.users.alice}`, `${other.host}/lib/app:v1`, `${reg.host}/private/from-other:v1`]);
    const lines = accessLines(await logSince(reg, mark));
    expect(doc).toMatchObject({ digest: image.digest, changes: [] });
    expect(doc.blobs).toMatchObject({ total: 3, mounted: 0, transferred: 3 });
    expect(lines.some((l) => l.target.includes('mount='))).toBe(false);
    expect(blobWrites(lines, 'private/from-other').filter((l) => l.method === 'PUT' && l.status === 201)).toHaveLength(3);
    expect(await inspectDigest(reg, 'private/from-other', 'v1', 'alice')).toBe(image.digest);
  });

  it('tag and delete as bob → exit 3, and nothing changed', async () => {
    await ferryOk(['copy', '-q', ...alice, `${reg.host}/public/src:v1`, `${reg.host}/private/keep:v1`]);
    const [tag, del] = await Promise.all([
      runCli(['tag', ...bob, `${reg.host}/private/keep:v1`, 'bob-tag']),
      runCli(['delete', ...bob, `${reg.host}/private/keep:v1`]),
    ]);
    expectFailure(tag, 3, 'private/keep', 'access denied');
    expectFailure(del, 3, 'private/keep', 'access denied');
    const [tags, digest] = await Promise.all([
      ferryJson<{ tags: string[] }>(['tags', ...alice, `${reg.host}/private/keep`]),
      inspectDigest(reg, 'private/keep', 'v1', 'alice'),
    ]);
    expect(tags.tags).toEqual(['v1']);
    expect(digest).toBe(image.digest);

    // alice may do both.
    await ferryOk(['tag', ...alice, `${reg.host}/private/keep:v1`, 'alice-tag']);
    const gone = await ferryOk(['delete', ...alice, `${reg.host}/private/keep:alice-tag`]);
    expect(gone.stdout).toContain(`deleted ${image.digest}`);
    expectFailure(await runCli(['inspect', ...alice, `${reg.host}/private/keep:v1`]), 4, 'not found');
  });
});
