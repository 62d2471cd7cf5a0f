/**
 * `ferry pull` into archives against the real distribution registry (open mode): docker-archive
 * (`-o x.tar`, `docker-archive:FILE:name:tag`) and oci-archive (`--format oci-archive`,
 * `oci-archive:FILE:tag`); what ferry inspect/tags read back from them; the tar structure
 * (tar-stream); several images in one archive with shared layers stored once; --all-platforms;
 * and the failure surface (usage errors, missing tags, missing directories, an existing target
 * replaced only on success, no `*.partial` leftovers).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_INDEX, OCI_MANIFEST, REF_NAME, type BuiltManifest, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import {
  blobDigests, blobName, CONTAINERD_NAME, entryJson, expectArchiveStructure, normalizeName, partials, readTar,
  type DockerManifestItem, type ImageManifestDoc, type OciIndexDoc, type TarEntry,
} from './archive-support.js';
import { expectFailure, ferryImage, ferryJson, ferryOk, type InspectDoc, type TransferDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const SEED = 'pull-archives';
const KiB = 1024;


describe.skipIf(!has)('ferry pull into docker-archive and oci-archive', () => {
  let reg: RealRegistry;
  let srcA: TempDir;
  let srcB: TempDir;
  let work: TempDir;
  let a: OciLayoutResult; // 2 layers
  let b: OciLayoutResult; // a's 2 layers + 1 more (same seed), different config
  let multi: OciLayoutResult; // 2 platforms
  let broken: OciLayoutResult; // its first layer gets corrupted in the registry's storage
  let app: string;
  let base: string;
  let n = 0;
  const dir = (): string => {
    const d = join(work.path, `case-${++n}`);
    mkdirSync(d);
    return d;
  };
  const img = (r: OciLayoutResult): BuiltManifest => r.manifests[0]!;
  const layers = (r: OciLayoutResult): string[] => img(r).layerDigests;

  beforeAll(async () => {
    srcA = makeTempDir('pa-src-a');
    srcB = makeTempDir('pa-src-b');
    work = makeTempDir('pa-work');
    a = await makeOciLayout(srcA.path, { tag: 'v1', layers: 2, layerSize: 128 * KiB, seed: SEED });
    await makeOciLayout(srcA.path, { tag: 'same', layers: 2, layerSize: 128 * KiB, seed: SEED });
    b = await makeOciLayout(srcB.path, { tag: 'v2', layers: 3, layerSize: 128 * KiB, seed: SEED });
    await makeOciLayout(srcB.path, { tag: 'same', layers: 3, layerSize: 128 * KiB, seed: SEED });
    multi = await makeOciLayout(srcA.path, {
      tag: 'multi', layers: 1, layerSize: 64 * KiB, seed: `${SEED}-multi`,
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    });
    broken = await makeOciLayout(srcA.path, { tag: 'broken', layers: 2, layerSize: 64 * KiB, seed: `${SEED}-broken` });
    expect(layers(b).slice(0, 2)).toEqual(layers(a)); // the shared layers
    expect(img(b).configDigest).not.toBe(img(a).configDigest);

    reg = await startRegistry('open');
    app = `${reg.host}/library/app`;
    base = `${reg.host}/library/base`;
    await Promise.all([
      pushWithSkopeo(srcA.path, 'v1', reg, 'library/app'),
      pushWithSkopeo(srcA.path, 'same', reg, 'library/app'),
      pushWithSkopeo(srcB.path, 'v2', reg, 'library/base'),
      pushWithSkopeo(srcB.path, 'same', reg, 'library/base'),
      pushWithSkopeo(srcA.path, 'multi', reg, 'library/multi', { all: true }),
      pushWithSkopeo(srcA.path, 'broken', reg, 'library/broken'),
    ]);
    // Same size, other bytes: the registry serves it, ferry's digest check must refuse it.
    const layer0 = join(reg.storageDir, 'docker/registry/v2/blobs/sha256', layers(broken)[0]!.slice(7, 9), layers(broken)[0]!.slice(7), 'data');
    const bytes = readFileSync(layer0);
    writeFileSync(layer0, Buffer.alloc(bytes.length, 0x5a));
  });
  afterAll(async () => {
    await reg?.stop();
    srcA?.remove();
    srcB?.remove();
    work?.remove();
  });

  /** index.json → the one image manifest, manifest.json (docker-archive) and the blobs, checked. */
  function expectSingleImage(entries: TarEntry[], format: 'docker-archive' | 'oci-archive', r: OciLayoutResult, names: { refName: string; repoTag?: string }): void {
    expectArchiveStructure(entries, format);
    const m = img(r);
    const index = entryJson<OciIndexDoc>(entries, 'index.json');
    expect(index.schemaVersion).toBe(2);
    expect(index.manifests).toHaveLength(1);
    const d = index.manifests[0]!;
    expect(d).toMatchObject({ mediaType: OCI_MANIFEST, digest: r.digest, size: m.size });
    expect(d.annotations?.[REF_NAME]).toBe(names.refName);
    if (format === 'docker-archive') {
      expect(normalizeName(d.annotations?.[CONTAINERD_NAME] ?? '(missing)')).toBe(normalizeName(names.repoTag!));
      const items = entryJson<DockerManifestItem[]>(entries, 'manifest.json');
      expect(items).toEqual([{ Config: blobName(m.configDigest), RepoTags: [names.repoTag], Layers: m.layerDigests.map(blobName) }]);
    } else {
      // oci-archive: the full reference beside ref.name (ctr import names the image from it).
      expect(d.annotations?.[CONTAINERD_NAME]).toBe(names.repoTag);
    }
    expect(blobDigests(entries).sort()).toEqual([r.digest, m.configDigest, ...m.layerDigests].sort());
    const manifest = JSON.parse(entries.find((e) => e.name === blobName(r.digest))!.data.toString('utf8')) as ImageManifestDoc;
    expect(manifest.layers.map((l) => l.digest)).toEqual(m.layerDigests);
  }

  async function expectInspect(location: string, r: OciLayoutResult): Promise<void> {
    const doc = await ferryJson<InspectDoc>(['inspect', location]);
    expect(doc.digest).toBe(r.digest);
    expect(doc.mediaType).toBe(OCI_MANIFEST);
    expect(doc.config?.digest).toBe(img(r).configDigest);
    expect(doc.layers?.map((l) => l.digest)).toEqual(layers(r));
    expect(doc.platform).toBe('linux/amd64');
  }

  async function tagsOf(location: string): Promise<string[]> {
    const [text, doc] = await Promise.all([ferryOk(['tags', location]), ferryJson<{ tags: string[] }>(['tags', location])]);
    expect(text.stdout.trim().split('\n')).toEqual(doc.tags);
    return doc.tags;
  }

  it('-o x.tar writes a docker-archive: registry digest, inspect, tags, structure', async () => {
    const file = join(dir(), 'x.tar');
    const doc = await ferryImage(['pull', '-q', `${app}:v1`, '-o', file]);
    expect(doc).toMatchObject({
      source: `${app}:v1`, destination: `docker-archive:${file}`, digest: a.digest, sourceDigest: a.digest,
      mediaType: OCI_MANIFEST, manifests: 1, refName: 'v1', repoTag: `${app}:v1`,
    });
    expect(doc.blobs).toMatchObject({ total: 3, skipped: 0, transferred: 3 });
    expect(doc.images).toHaveLength(1);
    expect(existsSync(file)).toBe(true);

    expectSingleImage(await readTar(file), 'docker-archive', a, { refName: 'v1', repoTag: `${app}:v1` });
    await expectInspect(`docker-archive:${file}`, a);
    await expectInspect(`docker-archive:${file}:${app}:v1`, a);
    expect(await tagsOf(`docker-archive:${file}`)).toEqual([`${app}:v1`]);
    expect(partials(join(file, '..'))).toEqual([]);
  });

  it('docker-archive:FILE:name:tag names the image name:tag (RepoTags, containerd name, ref.name)', async () => {
    const file = join(dir(), 'named.tar');
    const doc = await ferryImage(['pull', '-q', `${app}:v1`, `docker-archive:${file}:myname:tag`]);
    expect(doc).toMatchObject({ digest: a.digest, repoTag: 'myname:tag' });
    expect(doc.destination).toBe(`docker-archive:${file}:myname:tag`);
    // Docker ≥25 `docker save myname:tag`: ref.name is the tag of the saved name.
    expectSingleImage(await readTar(file), 'docker-archive', a, { refName: 'tag', repoTag: 'myname:tag' });
    await expectInspect(`docker-archive:${file}:myname:tag`, a);
    await expectInspect(`docker-archive:${file}`, a);
    expect(await tagsOf(`docker-archive:${file}`)).toEqual(['myname:tag']);
  });

  it('--format oci-archive writes an oci-archive tagged with the source tag, the full reference beside it', async () => {
    const file = join(dir(), 'y.tar');
    const doc = await ferryImage(['pull', '-q', '--format', 'oci-archive', `${app}:v1`, '-o', file]);
    expect(doc).toMatchObject({ digest: a.digest, sourceDigest: a.digest, destination: `oci-archive:${file}:v1`, refName: 'v1' });
    expectSingleImage(await readTar(file), 'oci-archive', a, { refName: 'v1', repoTag: `${app}:v1` });
    await expectInspect(`oci-archive:${file}:v1`, a);
    await expectInspect(`oci-archive:${file}:${app}:v1`, a);
    await expectInspect(`oci-archive:${file}`, a);
    expect(await tagsOf(`oci-archive:${file}`)).toEqual(['v1']);
  });

  it('oci-archive:FILE:t names the image t', async () => {
    const file = join(dir(), 'y.tar');
    const doc = await ferryImage(['pull', '-q', `${app}:v1`, `oci-archive:${file}:t`]);
    expect(doc).toMatchObject({ digest: a.digest, destination: `oci-archive:${file}:t`, refName: 't' });
    expectSingleImage(await readTar(file), 'oci-archive', a, { refName: 't', repoTag: `${app}:t` });
    await expectInspect(`oci-archive:${file}:t`, a);
    expect(await tagsOf(`oci-archive:${file}`)).toEqual(['t']);
    const missing = await runCli(['inspect', `oci-archive:${file}:v1`]);
    expectFailure(missing, 2, 'no image tagged "v1"'); // a local archive: never the registry's 4
  });

  it('several images into one docker-archive: two manifest.json entries, shared layers stored once', async () => {
    const file = join(dir(), 'bundle.tar');
    const doc = await ferryJson<TransferDoc>(['pull', '-q', `${app}:v1`, `${base}:v2`, '-o', file]);
    expect(doc.images.map((i) => [i.source, i.digest, i.repoTag])).toEqual([
      [`${app}:v1`, a.digest, `${app}:v1`],
      [`${base}:v2`, b.digest, `${base}:v2`],
    ]);
    expect(doc).not.toHaveProperty('digest'); // images[0] is not repeated at the top level
    // Run totals count the two layers the images share once; each image counts its own.
    expect(doc.images.map((i) => i.blobs.total)).toEqual([3, 4]);
    expect(doc.blobs).toMatchObject({ total: 5, transferred: 5 });

    const entries = await readTar(file);
    expectArchiveStructure(entries, 'docker-archive');
    const items = entryJson<DockerManifestItem[]>(entries, 'manifest.json');
    expect(items).toEqual([
      { Config: blobName(img(a).configDigest), RepoTags: [`${app}:v1`], Layers: layers(a).map(blobName) },
      { Config: blobName(img(b).configDigest), RepoTags: [`${base}:v2`], Layers: layers(b).map(blobName) },
    ]);
    const index = entryJson<OciIndexDoc>(entries, 'index.json');
    expect(index.manifests.map((d) => [d.digest, normalizeName(d.annotations![CONTAINERD_NAME]!)])).toEqual([
      [a.digest, normalizeName(`${app}:v1`)],
      [b.digest, normalizeName(`${base}:v2`)],
    ]);
    // 2 manifests + 2 configs + 3 distinct layers (a's two are b's first two), each once.
    const blobs = blobDigests(entries);
    expect(blobs.sort()).toEqual([a.digest, b.digest, img(a).configDigest, img(b).configDigest, ...layers(b)].sort());
    for (const l of layers(a)) expect(entries.filter((e) => e.name === blobName(l))).toHaveLength(1);

    await expectInspect(`docker-archive:${file}:${app}:v1`, a);
    await expectInspect(`docker-archive:${file}:${base}:v2`, b);
    await expectInspect(`docker-archive:${file}:@1`, b);
    expect(await tagsOf(`docker-archive:${file}`)).toEqual([`${app}:v1`, `${base}:v2`]);
    expectFailure(await runCli(['inspect', `docker-archive:${file}`]), 2, 'holds 2 images');
  });

  it('several images into one oci-archive: each named by its familiar reference', async () => {
    const file = join(dir(), 'bundle-oci.tar');
    await ferryOk(['pull', '-q', '--format', 'oci-archive', `${app}:v1`, `${base}:v2`, '-o', file]);
    const entries = await readTar(file);
    expectArchiveStructure(entries, 'oci-archive');
    const index = entryJson<OciIndexDoc>(entries, 'index.json');
    expect(index.manifests.map((d) => [d.digest, d.annotations?.[REF_NAME]])).toEqual([[a.digest, `${app}:v1`], [b.digest, `${base}:v2`]]);
    expect(blobDigests(entries)).toHaveLength(7);
    await expectInspect(`oci-archive:${file}:${app}:v1`, a);
    await expectInspect(`oci-archive:${file}:${base}:v2`, b);
  });

  it('two different images with the same tag (app:same, base:same) go into one docker-archive', async () => {
    // docker save app:same base:same does this: RepoTags differ, ref.name is "same" for both.
    const file = join(dir(), 'same-tag.tar');
    const r = await runCli(['pull', '-q', `${app}:same`, `${base}:same`, '-o', file]);
    expect(r.code, r.stderr).toBe(0);
    const entries = await readTar(file);
    expect(entryJson<DockerManifestItem[]>(entries, 'manifest.json').map((i) => i.RepoTags)).toEqual([[`${app}:same`], [`${base}:same`]]);
    await expectInspect(`docker-archive:${file}:${base}:same`, b);
  });

  it('--all-platforms into an oci-archive keeps the index digest and every platform', async () => {
    const file = join(dir(), 'all.tar');
    const doc = await ferryImage(['pull', '-q', '--all-platforms', '--format', 'oci-archive', `${reg.host}/library/multi:multi`, '-o', file]);
    expect(doc).toMatchObject({ digest: multi.indexDigest, sourceDigest: multi.indexDigest, mediaType: OCI_INDEX, manifests: 3 });
    const entries = await readTar(file);
    expectArchiveStructure(entries, 'oci-archive');
    const index = entryJson<OciIndexDoc>(entries, 'index.json');
    expect(index.manifests).toEqual([{ mediaType: OCI_INDEX, digest: multi.indexDigest, size: expect.any(Number) as unknown, annotations: { [REF_NAME]: 'multi', [CONTAINERD_NAME]: `${reg.host}/library/multi:multi` } }]);
    expect(blobDigests(entries).sort()).toEqual([multi.indexDigest!, ...multi.manifests.flatMap((m) => [m.digest, m.configDigest, ...m.layerDigests])].sort());
    const idx = await ferryJson<InspectDoc>(['inspect', `oci-archive:${file}:multi`]);
    expect(idx).toMatchObject({ digest: multi.indexDigest, mediaType: OCI_INDEX });
    expect(idx.manifests).toBe(3);
    expect(idx.children?.map((m) => m.digest)).toEqual(multi.manifests.map((m) => m.digest));
    const arm = await ferryJson<InspectDoc>(['inspect', '--platform', 'linux/arm64', `oci-archive:${file}:multi`]);
    expect(arm.digest).toBe(multi.manifests[1]!.digest);
  });

  it('--all-platforms -o x.tar (docker-archive) → exit 2 naming docker-archive, with a hint; nothing written', async () => {
    const d = dir();
    const file = join(d, 'x.tar');
    const r = await runCli(['pull', '--all-platforms', `${reg.host}/library/multi:multi`, '-o', file]);
    expectFailure(r, 2, 'docker-archive', /hint: .*(oci-archive|--platform)/);
    expect(r.stdout).toBe('');
    expect(readdirSync(d)).toEqual([]);
  });

  it('a missing tag → exit 4; no file at the target and no *.partial left', async () => {
    const d = dir();
    const [docker, oci] = await Promise.all([
      runCli(['pull', `${app}:nope`, '-o', join(d, 'x.tar')]),
      runCli(['pull', `${app}:nope`, `oci-archive:${join(d, 'y.tar')}:t`]),
    ]);
    expectFailure(docker, 4, 'not found');
    expectFailure(oci, 4, 'not found');
    expect(readdirSync(d)).toEqual([]);
  });

  it('a target in a directory that does not exist → a clear error naming the path', async () => {
    const d = dir();
    const missingDir = join(d, 'no', 'such', 'dir');
    const [docker, oci] = await Promise.all([
      runCli(['pull', `${app}:v1`, '-o', join(missingDir, 'x.tar')]),
      runCli(['pull', `${app}:v1`, `oci-archive:${join(missingDir, 'y.tar')}`]),
    ]);
    for (const r of [docker, oci]) expectFailure(r, 8, missingDir); // local: never the registry's 4
    expect(readdirSync(d)).toEqual([]);
  });

  it('an existing file at the target is replaced only when the pull succeeds', async () => {
    const d = dir();
    const file = join(d, 'x.tar');
    writeFileSync(file, 'old');
    // Fails before anything is written (unknown tag)…
    expectFailure(await runCli(['pull', `${app}:nope`, '-o', file]), 4);
    expect(readFileSync(file, 'utf8')).toBe('old');
    // …and while blobs stream into the temp file (a layer whose bytes do not match its digest).
    const bad = await runCli(['pull', `${reg.host}/library/broken:broken`, '-o', file]);
    expectFailure(bad, 6, layers(broken)[0]!);
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(partials(d)).toEqual([]);
    expect(readdirSync(d)).toEqual(['x.tar']);
    // A successful pull replaces it.
    await ferryOk(['pull', '-q', `${app}:v1`, '-o', file]);
    expectSingleImage(await readTar(file), 'docker-archive', a, { refName: 'v1', repoTag: `${app}:v1` });
    expect(readdirSync(d)).toEqual(['x.tar']);
  });
});
