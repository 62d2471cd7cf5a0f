/**
 * ferry push / copy / tag / delete against the real distribution registry without auth:
 * round trips through every local format, multi-platform copies (whole index, a platform subset,
 * one platform), cross-registry copies, same-registry mounts (checked in the access log),
 * chunked uploads, and classic `docker save` archives whose uncompressed layers are gzipped on push.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_INDEX, OCI_MANIFEST, type BuiltManifest, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { inspectDigest, inspectRaw, pushWithSkopeo } from '../helpers/skopeo.js';
import { accessLines, blobWrites, getBlob, getManifest, logMark, logSince, runOk, uploadRequests, writeDockerSave, type DockerSaveImage } from './push-support.js';
import { expectFailure, ferryImage, ferryJson, ferryOk, layoutEntry, oneImage, readBlob, sha256Of, type InspectDoc, type TransferDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];
const GZIP_LAYER_TYPES = ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip'];
const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

describe.skipIf(!has)('ferry push / copy / tag / delete against open registries', () => {
  let reg: RealRegistry;
  let reg2: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let single: OciLayoutResult;
  let multi: OciLayoutResult;
  let app: string; // host/lib/app
  let idx: string; // host/lib/multi
  let n = 0;
  const fresh = (name = 'out'): string => join(work.path, `${name}-${++n}`);
  const child = (arch: string): BuiltManifest => multi.manifests.find((m) => m.platform.architecture === arch)!;

  beforeAll(async () => {
    src = makeTempDir('push-src');
    work = makeTempDir('push-work');
    single = await makeOciLayout(src.path, { tag: 'v1', layers: 3, layerSize: 128 * 1024, seed: 'push-single' });
    multi = await makeOciLayout(src.path, { tag: 'multi', layers: 2, layerSize: 64 * 1024, seed: 'push-multi', platforms: PLATFORMS });
    [reg, reg2] = await Promise.all([startRegistry('open'), startRegistry('open')]);
    app = `${reg.host}/lib/app`;
    idx = `${reg.host}/lib/multi`;
    expect(await pushWithSkopeo(src.path, 'v1', reg, 'lib/app')).toBe(single.digest);
    expect(await pushWithSkopeo(src.path, 'multi', reg, 'lib/multi', { all: true })).toBe(multi.indexDigest);
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), reg2?.stop()]);
    src?.remove();
    work?.remove();
  });

  describe('round trips: pull into a local format, push it back, same digest', () => {
    it.each([
      ['oci layout', 'oci'],
      ['oci-archive', 'oci-archive'],
      ['docker-archive written by ferry', 'docker-archive'],
    ])('%s', async (_name, format) => {
      const m = single.manifests[0]!;
      let local: string;
      if (format === 'oci') {
        const dir = fresh('rt-oci');
        await ferryOk(['pull', '-q', `${app}:v1`, `oci:${dir}`]);
        local = `oci:${dir}:v1`;
      } else {
        const file = `${fresh(`rt-${format}`)}.tar`;
        await ferryOk(['pull', '-q', `${app}:v1`, '-o', file, ...(format === 'oci-archive' ? ['--format', 'oci-archive'] : [])]);
        local = file; // bare path: sniffed
      }
      const repo = `rt/${format}`;
      const r = await ferryOk(['push', '--json', local, `${reg.host}/${repo}:v1`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      expect(doc).toMatchObject({ digest: single.digest, sourceDigest: single.digest, mediaType: OCI_MANIFEST, changes: [], manifests: 1 });
      expect(doc.blobs).toMatchObject({ total: 4, skipped: 0, mounted: 0, transferred: 4 });
      expect(r.stderr).not.toContain('note:'); // compressed layers: nothing recompressed
      expect(await inspectDigest(reg, repo, 'v1')).toBe(single.digest);
      const back = fresh('rt-back');
      const pulled = await ferryImage(['pull', '-q', `${reg.host}/${repo}:v1`, `oci:${back}`]);
      expect(pulled.digest).toBe(single.digest);
      expect(layoutEntry(back, 'v1').digest).toBe(single.digest);
      const got = await getManifest(reg, repo, 'v1');
      expect(got.doc.config?.digest).toBe(m.configDigest);
      expect(got.doc.layers?.map((l) => l.digest)).toEqual(m.layerDigests);
    });
  });

  describe('multi-platform copies', () => {
    it('copy registry → registry keeps the index digest and every child', async () => {
      const doc = await ferryImage(['copy', '-q', `${idx}:multi`, `${reg.host}/copy/multi:multi`]);
      expect(doc).toMatchObject({ digest: multi.indexDigest, sourceDigest: multi.indexDigest, mediaType: OCI_INDEX, changes: [], manifests: 4 });
      expect(doc.blobs.total).toBe(3 * 3);
      const raw = await inspectRaw(reg, 'copy/multi', 'multi');
      expect(sha256Of(raw)).toBe(multi.indexDigest);
      const digests = await Promise.all(multi.manifests.map((m) => inspectDigest(reg, 'copy/multi', m.digest)));
      expect(digests).toEqual(multi.manifests.map((m) => m.digest));
    });

    it('--platform A --platform B writes a new index with exactly those two children and reports the change', async () => {
      const r = await ferryOk(['copy', '--json', '--platform', 'linux/amd64', '--platform', 'linux/arm/v7', `${idx}:multi`, `${reg.host}/copy/subset:two`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      expect(doc.digest).not.toBe(multi.indexDigest);
      expect(doc.mediaType).toBe(OCI_INDEX);
      expect(doc.changes).toEqual([{ reason: 'platform-subset', from: multi.indexDigest, to: doc.digest }]);
      expect(doc.manifests).toBe(3);
      expect(doc.blobs.total).toBe(2 * 3);
      expect(r.stderr).toMatch(/^note: .*index/m);
      expect(r.stderr).toContain(multi.indexDigest);
      expect(r.stderr).toContain(doc.digest);

      const raw = await inspectRaw(reg, 'copy/subset', 'two');
      expect(sha256Of(raw)).toBe(doc.digest);
      const index = JSON.parse(raw) as { schemaVersion: number; mediaType: string; manifests: Array<{ digest: string; size: number; mediaType: string; platform: unknown }> };
      expect(index.schemaVersion).toBe(2);
      expect(index.mediaType).toBe(OCI_INDEX);
      const want = [child('amd64'), child('arm')];
      expect(index.manifests).toEqual(want.map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.size, platform: m.platform })));
      // Every child is there and pullable; the dropped one is not in the target repository.
      const pulls = await Promise.all(want.map((m) => ferryImage(['pull', '-q', `${reg.host}/copy/subset@${m.digest}`, `oci:${fresh('subset')}`])));
      expect(pulls.map((p) => p.digest)).toEqual(want.map((m) => m.digest));
      const gone = await runCli(['inspect', `${reg.host}/copy/subset@${child('arm64').digest}`]);
      expectFailure(gone, 4, 'not found');
      const viaPlatform = await ferryJson<InspectDoc>(['inspect', '--platform', 'linux/arm/v7', `${reg.host}/copy/subset:two`]);
      expect(viaPlatform.digest).toBe(child('arm').digest);
      // sourceDigest is what the SOURCE resolved to (as with one --platform, and for pull), not the rewritten index.
      expect(doc.sourceDigest, 'sourceDigest').toBe(multi.indexDigest);
    });

    it('a single --platform copies just that child manifest', async () => {
      const arm = child('arm64');
      const doc = await ferryImage(['copy', '-q', '--platform', 'linux/arm64', `${idx}:multi`, `${reg.host}/copy/one:arm64`]);
      expect(doc).toMatchObject({ digest: arm.digest, sourceDigest: multi.indexDigest, mediaType: OCI_MANIFEST, manifests: 1 });
      expect(doc.blobs.total).toBe(3);
      expect(await inspectDigest(reg, 'copy/one', 'arm64')).toBe(arm.digest);
      const got = await getManifest(reg, 'copy/one', 'arm64');
      expect(got.doc.config?.digest).toBe(arm.configDigest);
    });
  });

  describe('cross-registry and same-registry copies', () => {
    it('registry 1 → registry 2: identical digests, bytes uploaded, no mount attempted', async () => {
      const mark = logMark(reg2);
      const [one, many] = await Promise.all([
        ferryImage(['copy', '-q', `${app}:v1`, `${reg2.host}/mirror/app:v1`]),
        ferryImage(['copy', '-q', `${idx}:multi`, `${reg2.host}/mirror/multi:multi`]),
      ]);
      expect(one).toMatchObject({ digest: single.digest, sourceDigest: single.digest, changes: [] });
      expect(one.blobs).toMatchObject({ total: 4, mounted: 0, transferred: 4 });
      expect(many).toMatchObject({ digest: multi.indexDigest, manifests: 4, changes: [] });
      expect(many.blobs).toMatchObject({ total: 9, mounted: 0, transferred: 9 });
      expect(await inspectDigest(reg2, 'mirror/app', 'v1')).toBe(single.digest);
      expect(await inspectDigest(reg2, 'mirror/multi', 'multi')).toBe(multi.indexDigest);
      const lines = accessLines(await logSince(reg2, mark));
      expect(lines.some((l) => l.target.includes('mount='))).toBe(false);
      expect(blobWrites(lines, 'mirror/app').length).toBeGreaterThanOrEqual(4);
    });

    it('same registry: every blob is mounted, no blob bytes are uploaded to the target', async () => {
      const mark = logMark(reg);
      const r = await ferryOk(['copy', '--json', '--progress', 'plain', `${app}:v1`, `${reg.host}/mnt/app:v1`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      const log = await logSince(reg, mark);
      expect(doc).toMatchObject({ digest: single.digest, changes: [] });
      expect(doc.blobs.total).toBe(4);
      expect(doc.blobs.mounted).toBe(doc.blobs.total);
      expect(doc.blobs).toMatchObject({ transferred: 0, transferredBytes: 0, skipped: 0 });
      expect(r.stderr.match(/^\s+mounted\s.* from lib\/app$/gm)).toHaveLength(4);
      const lines = accessLines(log);
      expect(lines.length, log).toBeGreaterThan(0);
      expect(blobWrites(lines, 'mnt/app'), log).toEqual([]);
      expect(lines.filter((l) => l.method === 'PATCH' && l.target.startsWith('/v2/mnt/app/'))).toEqual([]);
      const mounts = uploadRequests(lines, 'mnt/app').filter((l) => l.method === 'POST' && l.target.includes('mount='));
      expect(mounts).toHaveLength(4);
      expect(mounts.every((l) => l.status === 201 && l.target.includes('from=lib%2Fapp'))).toBe(true);
      expect(await inspectDigest(reg, 'mnt/app', 'v1')).toBe(single.digest);
    });

    it('same registry, whole index: mounted === total', async () => {
      const doc = await ferryImage(['copy', '-q', `${idx}:multi`, `${reg.host}/mnt/multi:multi`]);
      expect(doc.digest).toBe(multi.indexDigest);
      expect(doc.blobs).toMatchObject({ total: 9, mounted: 9, transferred: 0 });
    });
  });

  describe('tag and delete', () => {
    it('tag adds tags by manifest PUT only: same digest under every tag, no blob uploads', async () => {
      await ferryOk(['copy', '-q', `${app}:v1`, `${reg.host}/tagged/app:v1`]);
      const mark = logMark(reg);
      const r = await ferryOk(['tag', `${reg.host}/tagged/app:v1`, 'stable', '1.0']);
      const lines = accessLines(await logSince(reg, mark));
      expect(r.stdout).toContain(single.digest);
      const tags = await ferryJson<{ tags: string[] }>(['tags', `${reg.host}/tagged/app`]);
      expect([...tags.tags].sort()).toEqual(['1.0', 'stable', 'v1']);
      const list = JSON.parse(await runOk('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/tagged/app`])) as { Tags: string[] };
      expect([...list.Tags].sort()).toEqual(['1.0', 'stable', 'v1']);
      const digests = await Promise.all(['v1', 'stable', '1.0'].map((t) => inspectDigest(reg, 'tagged/app', t)));
      expect(digests).toEqual([single.digest, single.digest, single.digest]);
      expect(lines.filter((l) => l.target.includes('/blobs/uploads'))).toEqual([]);
      const puts = lines.filter((l) => l.method === 'PUT').map((l) => l.target);
      expect(puts.sort()).toEqual(['/v2/tagged/app/manifests/1.0', '/v2/tagged/app/manifests/stable']);
    });

    it('delete by tag removes the manifest and says every tag on it went', async () => {
      await ferryOk(['copy', '-q', `${app}:v1`, `${reg.host}/del/app:a`]);
      await ferryOk(['tag', `${reg.host}/del/app:a`, 'b', 'c']);
      const r = await ferryOk(['delete', `${reg.host}/del/app:b`]);
      expect(r.stdout).toContain(`deleted ${single.digest}`);
      expect(r.stderr).toMatch(/^note: .*every tag/m);
      expect(r.stderr).toContain(single.digest);
      const after = await Promise.all(['a', 'b', 'c'].map((t) => runCli(['inspect', `${reg.host}/del/app:${t}`])));
      for (const a of after) expectFailure(a, 4, 'not found');
      const byDigest = await runCli(['inspect', `${reg.host}/del/app@${single.digest}`]);
      expectFailure(byDigest, 4, 'not found');
      // The source repository is untouched.
      expect(await inspectDigest(reg, 'lib/app', 'v1')).toBe(single.digest);
    });
  });

  it('chunked push (--chunk-size 65536): same digest, PATCH requests in the log', async () => {
    const m = single.manifests[0]!;
    const mark = logMark(reg);
    const doc = await ferryImage(['push', '-q', '--chunk-size', '65536', `oci:${src.path}:v1`, `${reg.host}/chunked/app:v1`]);
    const lines = accessLines(await logSince(reg, mark));
    expect(doc).toMatchObject({ digest: single.digest, changes: [] });
    expect(doc.blobs).toMatchObject({ total: 4, transferred: 4 });
    const sizes = [m.configDigest, ...m.layerDigests].map((d) => readBlob(src.path, d).length);
    const patches = lines.filter((l) => l.method === 'PATCH' && l.target.startsWith('/v2/chunked/app/blobs/uploads/'));
    expect(patches.every((l) => l.status === 202)).toBe(true);
    expect(patches).toHaveLength(sizes.reduce((a, s) => a + Math.ceil(s / 65536), 0));
    expect(await inspectDigest(reg, 'chunked/app', 'v1')).toBe(single.digest);
  });

  describe('classic docker save archives (uncompressed layers)', () => {
    let tarFile: string;
    let tgzFile: string;
    let image: DockerSaveImage;
    let gzDigest: string;

    beforeAll(async () => {
      tarFile = join(work.path, 'app.tar');
      tgzFile = join(work.path, 'app.tgz');
      const spec = { repoTags: ['app:1'], layers: 3, layerSize: 96 * 1024, seed: 'dsave' };
      [image] = await writeDockerSave(tarFile, [spec]);
      await writeDockerSave(tgzFile, [spec], { gzip: true });
    });

    it('the archive is the classic layout: <id>/layer.tar symlinks to root <diffid>.tar files', async () => {
      const listing = (await runOk('tar', ['-tvf', tarFile])).trim().split('\n');
      const links = listing.filter((l) => /\/layer\.tar -> /.test(l));
      expect(links).toHaveLength(3);
      expect(links.every((l) => l.startsWith('l'))).toBe(true);
      for (const d of image.diffIds) expect(listing.some((l) => l.startsWith('-') && l.endsWith(` ${d.slice(7)}.tar`))).toBe(true);
      expect(listing.some((l) => l.endsWith(' manifest.json'))).toBe(true);
      expect(listing.some((l) => l.endsWith(' repositories'))).toBe(true);
      expect(listing.some((l) => l.endsWith(' index.json'))).toBe(false);
    });

    it('push gzips the layers: gzip media types, digests of the uploaded bytes, config unchanged, a note', async () => {
      const local = await ferryJson<InspectDoc>(['inspect', `docker-archive:${tarFile}`]);
      expect(local.layers!.map((l) => l.mediaType)).toEqual([OCI_LAYER_TAR, OCI_LAYER_TAR, OCI_LAYER_TAR]);
      expect(local.layers!.map((l) => l.digest)).toEqual(image.diffIds);

      const r = await ferryOk(['push', '--json', tarFile, `${reg.host}/dsave/app:1`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      gzDigest = doc.digest;
      expect(doc.digest).not.toBe(local.digest);
      expect(doc.changes).toEqual([{ reason: 'compression', from: local.digest, to: doc.digest }]);
      expect(r.stderr).toMatch(/^note: .*compress/m);
      expect(r.stderr).toContain('--compression none');

      const got = await getManifest(reg, 'dsave/app', '1');
      expect(got.digest).toBe(doc.digest);
      expect(got.doc.config?.digest).toBe(image.configDigest);
      expect(got.doc.layers).toHaveLength(3);
      const blobs = await Promise.all(got.doc.layers!.map((l) => getBlob(reg, 'dsave/app', l.digest)));
      got.doc.layers!.forEach((l, i) => {
        expect(GZIP_LAYER_TYPES).toContain(l.mediaType);
        const b = blobs[i]!;
        expect(sha256Of(b)).toBe(l.digest);
        expect(b.length).toBe(l.size);
        expect(sha256Of(gunzipSync(b))).toBe(image.diffIds[i]);
      });
      expect(sha256Of(await getBlob(reg, 'dsave/app', image.configDigest))).toBe(image.configDigest);
      // sourceDigest is the archive's own manifest digest, not the recompressed one.
      expect(doc.sourceDigest, 'sourceDigest').toBe(local.digest);
    });

    it.skipIf(!requireBinary('umoci'))('the pushed image pulls and umoci unpacks it with every file', async () => {
      const dir = fresh('dsave-pull');
      const pulled = await ferryImage(['pull', '-q', `${reg.host}/dsave/app:1`, `oci:${dir}`]);
      expect(pulled.digest).toBe(gzDigest);
      const bundle = fresh('dsave-bundle');
      await runOk('umoci', ['unpack', '--rootless', '--image', `${dir}:1`, bundle]);
      for (const f of image.files) expect(readFileSync(join(bundle, 'rootfs', f.name)).equals(f.data), f.name).toBe(true);
    });

    it('the same archive gzipped as a whole (app.tgz) pushes too, to the same digest', async () => {
      const r = await ferryOk(['push', '--json', tgzFile, `${reg.host}/dsave/app:tgz`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      expect(doc.changes.map((c) => c.reason)).toEqual(['compression']);
      expect(doc.digest).toBe(gzDigest);
      expect((await getManifest(reg, 'dsave/app', 'tgz')).doc.config?.digest).toBe(image.configDigest);
    });

    it('--compression none keeps the layers uncompressed: the digest is the archive\'s own', async () => {
      const local = await ferryJson<InspectDoc>(['inspect', `docker-archive:${tarFile}`]);
      const r = await ferryOk(['push', '--json', '--compression', 'none', tarFile, `${reg.host}/dsave/raw:1`]);
      const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
      expect(doc).toMatchObject({ digest: local.digest, sourceDigest: local.digest, changes: [] });
      expect(r.stderr).not.toContain('note:');
      const got = await getManifest(reg, 'dsave/raw', '1');
      expect(got.digest).toBe(local.digest);
      expect(got.doc.layers!.map((l) => l.mediaType)).toEqual([OCI_LAYER_TAR, OCI_LAYER_TAR, OCI_LAYER_TAR]);
      expect(got.doc.layers!.map((l) => l.digest)).toEqual(image.diffIds);
      expect(got.doc.config?.digest).toBe(image.configDigest);
      expect(sha256Of(await getBlob(reg, 'dsave/raw', image.diffIds[1]!))).toBe(image.diffIds[1]);
    });

    it('a multi-image archive needs a selector: exit 2 listing the images; :name:tag and @N work', async () => {
      const file = join(work.path, 'two.tar');
      const [first, second] = await writeDockerSave(file, [
        { repoTags: ['app:1'], layers: 2, layerSize: 64 * 1024, seed: 'two-a' },
        { repoTags: ['tool:2'], layers: 2, layerSize: 64 * 1024, seed: 'two-b' },
      ]);
      const bare = await runCli(['push', file, `${reg.host}/dsave/two:x`]);
      expectFailure(bare, 2, 'app:1', 'tool:2');
      const none = await runCli(['tags', `${reg.host}/dsave/two`]);
      expectFailure(none, 4, 'not found');

      const [byName, byIndex] = await Promise.all([
        ferryImage(['push', '-q', `docker-archive:${file}:tool:2`, `${reg.host}/dsave/two:tool`]),
        ferryImage(['push', '-q', `docker-archive:${file}:@0`, `${reg.host}/dsave/two:first`]),
      ]);
      const [toolM, firstM] = await Promise.all([getManifest(reg, 'dsave/two', 'tool'), getManifest(reg, 'dsave/two', 'first')]);
      expect(toolM.digest).toBe(byName.digest);
      expect(toolM.doc.config?.digest).toBe(second!.configDigest);
      expect(firstM.digest).toBe(byIndex.digest);
      expect(firstM.doc.config?.digest).toBe(first!.configDigest);
      const at1 = await ferryImage(['push', '-q', `docker-archive:${file}:@1`, `${reg.host}/dsave/two:at1`]);
      expect(at1.digest).toBe(byName.digest);
    });
  });
});
