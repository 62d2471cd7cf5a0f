/**
 * ferry against the real distribution registry without auth: inspect (text, --json, --raw,
 * --config, --platform), tags, pull into OCI layouts (single image, one platform of an index,
 * --all-platforms, re-pull skipping) and the error surface (exit statuses, messages, hints).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_INDEX, OCI_MANIFEST, REF_NAME, type BuiltManifest, type OciLayoutResult } from '../helpers/images.js';
import { freePort, startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import {
  blobSizes, expectBlobs, expectFailure, ferryImage, ferryJson, ferryOk, layoutEntry, oneImage, readBlob, readLayoutIndex, sha256Of,
  type InspectDoc, type TransferDoc,
} from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const TAGS = ['v1', 'v2', 'v3'];
const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];

describe.skipIf(!has)('ferry against an open registry', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let single: OciLayoutResult;
  let multi: OciLayoutResult;
  let app: string; // host/library/app
  let idx: string; // host/library/multi
  let n = 0;
  const fresh = (): string => join(work.path, `out-${++n}`);
  const child = (arch: string): BuiltManifest => multi.manifests.find((m) => m.platform.architecture === arch)!;

  beforeAll(async () => {
    src = makeTempDir('open-src');
    work = makeTempDir('open-work');
    for (const tag of TAGS) single = await makeOciLayout(src.path, { tag, layers: 3, layerSize: 128 * 1024, seed: 'open-single' });
    multi = await makeOciLayout(src.path, { tag: 'multi', layers: 2, layerSize: 64 * 1024, seed: 'open-multi', platforms: PLATFORMS });
    reg = await startRegistry('open');
    app = `${reg.host}/library/app`;
    idx = `${reg.host}/library/multi`;
    for (const tag of TAGS) expect(await pushWithSkopeo(src.path, tag, reg, 'library/app')).toBe(single.digest);
    expect(await pushWithSkopeo(src.path, 'multi', reg, 'library/multi', { all: true })).toBe(multi.indexDigest);
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  it('inspect (text) shows digest, media type, platform, config and every layer', async () => {
    const r = await ferryOk(['inspect', `${app}:v1`]);
    const m = single.manifests[0]!;
    expect(r.stdout).toContain(`Reference:  ${app}:v1`);
    expect(r.stdout).toContain(`Digest:     ${single.digest}`);
    expect(r.stdout).toContain(`MediaType:  ${OCI_MANIFEST}`);
    expect(r.stdout).toContain(`Size:       ${m.size}`);
    expect(r.stdout).toContain('Platform:   linux/amd64');
    expect(r.stdout).toContain('Entrypoint: ["/bin/sh","-c"]');
    expect(r.stdout).toContain('Cmd:        ["echo hello from ferry tests"]');
    expect(r.stdout).toContain('  FERRY_TEST_SEED=open-single');
    expect(r.stdout).toContain('  ferry.test.seed=open-single');
    expect(r.stdout).toContain(`Config:     ${m.configDigest}`);
    expect(r.stdout).toMatch(/^Layers: +3 /m);
    for (const l of m.layerDigests) expect(r.stdout).toContain(`  ${l}  `);
    expect(r.stderr).toBe('');
  });

  it('inspect --json: digest, config, layers and sizes match what was pushed', async () => {
    const doc = await ferryJson<InspectDoc>(['inspect', `${app}:v2`]);
    const m = single.manifests[0]!;
    const sizes = blobSizes(src.path, m.layerDigests);
    const configSize = readBlob(src.path, m.configDigest).length;
    expect(doc).toMatchObject({
      source: `${app}:v2`, digest: single.digest, mediaType: OCI_MANIFEST, size: m.size, manifests: 1,
      platform: 'linux/amd64', created: '2024-01-01T00:00:00Z',
      config: { digest: m.configDigest, size: configSize, mediaType: 'application/vnd.oci.image.config.v1+json' },
      entrypoint: ['/bin/sh', '-c'], cmd: ['echo hello from ferry tests'],
      labels: { 'org.opencontainers.image.title': 'ferry-test-image', 'ferry.test.seed': 'open-single' },
    });
    expect(doc.env).toContain('FERRY_TEST_SEED=open-single');
    expect(doc.layers!.map((l) => [l.digest, l.size])).toEqual(m.layerDigests.map((d, i) => [d, sizes[i]]));
    expect(doc.layers!.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
    expect(doc.totalSize).toBe(configSize + sizes.reduce((a, b) => a + b, 0));
    expect(sizes.every((s) => s > 128 * 1024)).toBe(true); // random bytes do not compress
    expect(doc.index).toBeUndefined();
  });

  it('inspect of an index lists its three platforms (text and --json)', async () => {
    const [text, doc] = await Promise.all([ferryOk(['inspect', `${idx}:multi`]), ferryJson<InspectDoc>(['inspect', `${idx}:multi`])]);
    expect(text.stdout).toContain(`Digest:     ${multi.indexDigest}`);
    expect(text.stdout).toContain(`MediaType:  ${OCI_INDEX}`);
    expect(text.stdout).toMatch(/^Platforms: +3$/m);
    for (const m of multi.manifests) {
      const p = [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/');
      expect(text.stdout).toMatch(new RegExp(`^  ${p.replace(/\//g, '\\/')} +${m.digest}  `, 'm'));
    }
    expect(doc.digest).toBe(multi.indexDigest);
    expect(doc.mediaType).toBe(OCI_INDEX);
    expect(doc.manifests).toBe(1 + multi.manifests.length); // a count, as in pull/push/copy
    expect(doc.children).toEqual(multi.manifests.map((m) => ({
      digest: m.digest, mediaType: OCI_MANIFEST, size: m.size,
      platform: [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/'),
    })));
    expect(doc.layers).toBeUndefined();
  });

  it.each([
    ['linux/arm64', 'arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'arm64', 'linux/arm64/v8'],
    ['linux/arm/v7', 'arm', 'linux/arm/v7'],
    ['linux/amd64', 'amd64', 'linux/amd64'],
  ])('inspect --platform %s picks the %s child and names the index', async (platform, arch, shown) => {
    const doc = await ferryJson<InspectDoc>(['inspect', '--platform', platform, `${idx}:multi`]);
    const c = child(arch);
    expect(doc.digest).toBe(c.digest);
    expect(doc.size).toBe(c.size);
    expect(doc.platform).toBe(shown);
    expect(doc.index).toEqual({ digest: multi.indexDigest, mediaType: OCI_INDEX, size: readBlob(src.path, multi.indexDigest!).length });
    expect(doc.config?.digest).toBe(c.configDigest);
    expect(doc.layers?.map((l) => l.digest)).toEqual(c.layerDigests);
  });

  it('--raw prints the manifest bytes verbatim; --config the config bytes', async () => {
    const amd = child('amd64');
    const arm = child('arm');
    const cases: Array<[string[], string]> = [
      [['inspect', '--raw', `${app}:v1`], single.digest],
      [['inspect', '--raw', `${idx}:multi`], multi.indexDigest!],
      [['inspect', '--raw', '--platform', 'linux/arm/v7', `${idx}:multi`], arm.digest],
      [['inspect', '--config', `${app}:v3`], single.manifests[0]!.configDigest],
      [['inspect', '--config', `${idx}:multi`], amd.configDigest], // host platform
      [['inspect', '--config', '--platform', 'linux/arm/v7', `${idx}:multi`], arm.configDigest],
    ];
    const results = await Promise.all(cases.map(([args]) => ferryOk(args)));
    results.forEach((r, i) => {
      const want = cases[i]![1];
      expect(sha256Of(r.stdout), cases[i]![0].join(' ')).toBe(want);
      expect(r.stdout).toBe(readBlob(src.path, want).toString('utf8'));
    });
  });

  it('tags lists every tag (text and --json)', async () => {
    const [text, doc] = await Promise.all([ferryOk(['tags', app]), ferryJson<{ source: string; tags: string[] }>(['tags', app])]);
    expect(text.stdout.trim().split('\n').sort()).toEqual(TAGS);
    expect(doc).toEqual({ schemaVersion: 1, command: 'tags', source: app, tags: expect.arrayContaining(TAGS) as unknown });
    expect(doc.tags).toHaveLength(TAGS.length);
    expect((await ferryJson<{ tags: string[] }>(['tags', idx])).tags).toEqual(['multi']);
  });

  it('pull writes an OCI layout whose entry is the registry digest, tagged from the source', async () => {
    const dir = fresh();
    const doc = await ferryImage(['pull', '--progress', 'none', `${app}:v2`, `oci:${dir}`]);
    const m = single.manifests[0]!;
    expect(doc).toMatchObject({ source: `${app}:v2`, destination: `oci:${dir}:v2`, digest: single.digest, sourceDigest: single.digest, mediaType: OCI_MANIFEST, manifests: 1 });
    expect(doc.blobs).toMatchObject({ total: 4, skipped: 0, transferred: 4 });
    expect(doc.blobs.bytes).toBe(blobSizes(src.path, [m.configDigest, ...m.layerDigests]).reduce((a, b) => a + b, 0));
    expect(doc.blobs.transferredBytes).toBe(doc.blobs.bytes);
    const idxJson = readLayoutIndex(dir);
    expect(idxJson.manifests).toHaveLength(1);
    // ref.name stays the tag (oci:DIR:v2 selects it, as with skopeo); the full name goes beside it.
    expect(idxJson.manifests[0]).toEqual({ mediaType: OCI_MANIFEST, digest: single.digest, size: m.size, annotations: { [REF_NAME]: 'v2', 'io.containerd.image.name': `${app}:v2` } });
    expectBlobs(dir, [single.digest, m.configDigest, ...m.layerDigests]);
    expect(existsSync(join(dir, 'oci-layout'))).toBe(true);

    // An explicit destination tag wins over the source's.
    await ferryOk(['pull', '--quiet', `${app}:v1`, `oci:${dir}:custom`]);
    expect(layoutEntry(dir, 'custom').digest).toBe(single.digest);
    expect(layoutEntry(dir, 'v2').digest).toBe(single.digest);
  });

  it('pull by digest verifies it and records the destination tag (none given → no ref.name)', async () => {
    const dir = fresh();
    const arm = child('arm64');
    const byDigest = await ferryImage(['pull', '-q', `${idx}@${arm.digest}`, `oci:${dir}:pinned`]);
    expect(byDigest).toMatchObject({ digest: arm.digest, sourceDigest: arm.digest, mediaType: OCI_MANIFEST });
    expect(layoutEntry(dir, 'pinned')).toMatchObject({ digest: arm.digest, size: arm.size });
    const bare = fresh();
    await ferryOk(['pull', '-q', `${app}@${single.digest}`, `oci:${bare}`]);
    expect(readLayoutIndex(bare).manifests).toEqual([{ mediaType: OCI_MANIFEST, digest: single.digest, size: single.manifests[0]!.size }]);
    expect((await ferryJson<InspectDoc>(['inspect', `oci:${bare}`])).digest).toBe(single.digest);
  });

  it('pull of an index picks the host platform (linux/amd64) by default', async () => {
    const dir = fresh();
    const amd = child('amd64');
    const doc = await ferryImage(['pull', '--progress', 'none', `${idx}:multi`, `oci:${dir}`]);
    expect(doc).toMatchObject({ digest: amd.digest, sourceDigest: multi.indexDigest, platform: 'linux/amd64', mediaType: OCI_MANIFEST, manifests: 1 });
    expect(layoutEntry(dir, 'multi')).toMatchObject({ digest: amd.digest, mediaType: OCI_MANIFEST, size: amd.size });
    expectBlobs(dir, [amd.digest, amd.configDigest, ...amd.layerDigests]);
    expect(existsSync(join(dir, 'blobs', 'sha256', child('arm64').layerDigests[0]!.slice(7)))).toBe(false);
  });

  it('pull --platform picks another child; --all-platforms keeps the index digest', async () => {
    const one = fresh();
    const arm = await ferryImage(['pull', '-q', '--platform', 'linux/arm/v7', `${idx}:multi`, `oci:${one}:arm`]);
    expect(arm.digest).toBe(child('arm').digest);
    expect(layoutEntry(one, 'arm').digest).toBe(child('arm').digest);

    const all = fresh();
    const doc = await ferryImage(['pull', '-q', '--all-platforms', `${idx}:multi`, `oci:${all}`]);
    expect(doc).toMatchObject({ digest: multi.indexDigest, sourceDigest: multi.indexDigest, mediaType: OCI_INDEX, manifests: 4 });
    expect(doc.platform).toBeUndefined();
    expect(doc.blobs.total).toBe(3 * 3);
    expect(layoutEntry(all, 'multi')).toMatchObject({ digest: multi.indexDigest, mediaType: OCI_INDEX });
    expectBlobs(all, [multi.indexDigest!, ...multi.manifests.flatMap((m) => [m.digest, m.configDigest, ...m.layerDigests])]);
  });

  it('pulling again skips every blob, and --json stdout holds only the JSON document', async () => {
    const dir = fresh();
    await ferryOk(['pull', '--quiet', '--all-platforms', `${idx}:multi`, `oci:${dir}`]);
    const r = await ferryOk(['pull', '--progress', 'plain', '--all-platforms', '--json', `${idx}:multi`, `oci:${dir}`]);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc); // throws if anything else is on stdout
    expect(r.stdout.trim().startsWith('{') && r.stdout.trim().endsWith('}')).toBe(true);
    expect(doc.blobs.total).toBe(9);
    expect(doc.blobs.skipped).toBe(doc.blobs.total);
    expect(doc.blobs).toMatchObject({ transferred: 0, transferredBytes: 0 });
    expect(r.stderr).toContain('already present'); // progress went to stderr
    expect(readLayoutIndex(dir).manifests).toHaveLength(1);

    const ndjson = await ferryOk(['pull', '--progress', 'json', '--json', `${idx}:multi`, `oci:${dir}:again`]);
    expect((oneImage(JSON.parse(ndjson.stdout) as TransferDoc)).digest).toBe(child('amd64').digest);
    const events = ndjson.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toContain('committed');
  });

  it('missing tag or repository: exit 4, "not found", a hint naming ferry tags', async () => {
    const [tag, repo, tagsMissing, pullMissing] = await Promise.all([
      runCli(['inspect', `${app}:nope`]),
      runCli(['inspect', `${reg.host}/no/such-repo:v1`]),
      runCli(['tags', `${reg.host}/no/such-repo`]),
      runCli(['pull', `${app}:nope`, `oci:${join(work.path, 'never')}`]),
    ]);
    expectFailure(tag, 4, 'not found', /hint: .*ferry tags /, `ferry tags ${app}`);
    expectFailure(repo, 4, 'not found');
    expectFailure(tagsMissing, 4, 'not found');
    expectFailure(pullMissing, 4, 'not found', 'ferry tags');
    expect(existsSync(join(work.path, 'never', 'index.json'))).toBe(false);
  });

  it.each([
    ['UPPER/Case'],
    ['x@sha256:123'],
    ['localhost:5000/app:bad tag'],
  ])('bad reference %s → exit 2 "invalid reference"', async (ref) => {
    const r = await runCli(['inspect', ref]);
    expectFailure(r, 2, 'invalid reference');
    expect(r.stdout).toBe('');
  });

  it('connection refused → exit 5 naming the host', async () => {
    const port = await freePort();
    const [insp, pull] = await Promise.all([
      runCli(['inspect', `127.0.0.1:${port}/app:v1`]),
      runCli(['pull', `127.0.0.1:${port}/app:v1`, `oci:${join(work.path, 'refused')}`]),
    ]);
    expectFailure(insp, 5, 'connection refused', `127.0.0.1:${port}`);
    expectFailure(pull, 5, 'connection refused');
  });

  it('unknown platform → exit 4 listing the available platforms', async () => {
    const [insp, pull] = await Promise.all([
      runCli(['inspect', '--platform', 'linux/s390x', `${idx}:multi`]),
      runCli(['pull', '--platform', 'linux/s390x', `${idx}:multi`, `oci:${join(work.path, 's390x')}`]),
    ]);
    for (const r of [insp, pull]) expectFailure(r, 4, 'linux/s390x', 'available', 'linux/amd64', 'linux/arm64/v8', 'linux/arm/v7');
    expect(existsSync(join(work.path, 's390x', 'index.json'))).toBe(false);
  });

  it('regression: --platform linux/arm64 on a single-platform amd64 image → exit 4 saying what it is (pull, inspect, copy); no --platform still pulls it', async () => {
    const out = fresh();
    const [insp, pull, copy] = await Promise.all([
      runCli(['inspect', '--platform', 'linux/arm64', `${app}:v1`]),
      runCli(['pull', '--platform', 'linux/arm64', `${app}:v1`, `oci:${out}`]),
      runCli(['copy', '--platform', 'linux/arm64', `${app}:v1`, `${reg.host}/library/app-arm64:v1`]),
    ]);
    for (const r of [insp, pull, copy]) expectFailure(r, 4, 'linux/arm64', 'the image is linux/amd64');
    expect(existsSync(join(out, 'index.json'))).toBe(false);
    const tags = await runCli(['tags', `${reg.host}/library/app-arm64`]);
    expect(tags.code).toBe(4); // nothing was pushed
    await ferryOk(['pull', '--platform', 'linux/amd64', `${app}:v1`, `oci:${fresh()}`]);
  });

  it('--debug adds a stack trace (mapped from the minified bundle back to src/*.ts) and the error code; without it there is none', async () => {
    const r = await runCli(['--debug', 'inspect', `${app}:nope`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('code: E_NOT_FOUND');
    expect(r.stderr).toMatch(/^\s+at .*[/\\]src[/\\]registry[/\\]client\.ts:\d+:\d+\)$/m);
    expect(r.stderr).not.toMatch(/ferry\.mjs:\d+/);
    expect(r.stderr).toMatch(/^debug: → (GET|HEAD) https?:\/\/127\.0\.0\.1:\d+\/v2\//m);
  });
});
