/**
 * Archives ferry writes (docker-archive: the Docker ≥25 hybrid; oci-archive) are read by skopeo
 * (containers/image, as podman load does), GNU tar and umoci: same digests, layer diff-ids intact,
 * only directories and regular files (what Apptainer's extractor needs).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage, copyImages } from '../../src/copy/engine.js';
import { DockerArchiveDestination, OciArchiveDestination } from '../../src/transports/archive-destination.js';
import { OciLayoutSource } from '../../src/transports/oci-layout.js';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, seededBytes, type OciLayoutResult } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';

const LAYER_SIZE = 256 * 1024;
const SEED = 'archive-write';
const AMD64 = [{ os: 'linux', architecture: 'amd64' }] as [{ os: string; architecture: string }];

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

async function ok(cmd: string, args: string[]): Promise<string> {
  const r = cmd === 'skopeo' ? await skopeo(args) : await run(cmd, args);
  expect(r.code, `${cmd} ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

interface Manifest {
  config: { digest: string };
  layers: Array<{ digest: string; mediaType: string }>;
}

function blobFile(dir: string, digest: string): Buffer {
  return readFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** Reads an OCI layout's image by ref name: manifest, config diff-ids, layer blobs. */
function layoutImage(dir: string, ref: string): { manifest: Manifest; diffIds: string[]; layers: Buffer[] } {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
  const manifest = JSON.parse(blobFile(dir, entry.digest).toString('utf8')) as Manifest;
  const config = JSON.parse(blobFile(dir, manifest.config.digest).toString('utf8')) as { rootfs: { diff_ids: string[] } };
  return { manifest, diffIds: config.rootfs.diff_ids, layers: manifest.layers.map((l) => blobFile(dir, l.digest)) };
}

const uncompressed = (b: Buffer): Buffer => (b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b);

/** `tar -tvf`: type letter and name of every entry. */
async function tarList(file: string): Promise<Array<{ type: string; name: string }>> {
  const out = await ok('tar', ['--numeric-owner', '-tvf', file]);
  return out.trim().split('\n').map((line) => ({ type: line[0]!, name: line.split(/\s+/).slice(5).join(' ') }));
}

describe.skipIf(!requireBinary('skopeo') || !requireBinary('umoci'))('archives ferry writes, read by skopeo, tar and umoci', () => {
  let src: TempDir;
  let work: TempDir;
  let v1: OciLayoutResult;
  let v2: OciLayoutResult;
  let multi: OciLayoutResult;
  const source = (tag: string) => new OciLayoutSource(src.path, tag);

  beforeAll(async () => {
    src = makeTempDir('archive-src');
    work = makeTempDir('archive-work');
    v1 = await makeOciLayout(src.path, { tag: 'v1', layers: 3, layerSize: LAYER_SIZE, seed: SEED });
    // Same seed, fewer layers: layers 0 and 1 are the same blobs as v1's.
    v2 = await makeOciLayout(src.path, { tag: 'v2', layers: 2, layerSize: LAYER_SIZE, seed: SEED });
    multi = await makeOciLayout(src.path, {
      tag: 'multi', layers: 1, layerSize: 32 * 1024, seed: `${SEED}-multi`,
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    });
  });
  afterAll(() => {
    src?.remove();
    work?.remove();
  });

  it('docker-archive: skopeo inspects it and copies it to an OCI layout whose layers match the config diff-ids', async () => {
    const file = join(work.path, 'app.tar');
    const res = await copyImage(source('v1'), new DockerArchiveDestination(file), { platforms: AMD64, jobs: 4 }, { refName: 'v1', repoTag: 'localhost:5000/app:v1' });
    expect(res.root.digest).toBe(v1.digest);

    const doc = JSON.parse(await ok('skopeo', ['inspect', `docker-archive:${file}`])) as { Architecture: string; Os: string; Layers: string[]; Labels: Record<string, string> };
    expect(doc.Architecture).toBe('amd64');
    expect(doc.Os).toBe('linux');
    expect(doc.Layers).toHaveLength(3);
    expect(doc.Labels['ferry.test.seed']).toBe(SEED);
    // Selecting by the RepoTag works too.
    await ok('skopeo', ['inspect', `docker-archive:${file}:localhost:5000/app:v1`]);

    const out = join(work.path, 'from-docker-archive');
    await ok('skopeo', ['copy', '--quiet', `docker-archive:${file}`, `oci:${out}:t`]);
    const copied = layoutImage(out, 't');
    // (skopeo re-serialises the config when it converts docker → OCI, so its digest changes.)
    expect(copied.layers.map((l) => sha256(uncompressed(l)))).toEqual(copied.diffIds);
    const orig = layoutImage(src.path, 'v1');
    expect(copied.diffIds).toEqual(orig.diffIds);
    expect(orig.layers.map((l) => sha256(uncompressed(l)))).toEqual(orig.diffIds);

    // Only directories and regular files, explicit directories first, no ./ prefix.
    const entries = await tarList(file);
    expect(new Set(entries.map((e) => e.type))).toEqual(new Set(['d', '-']));
    expect(entries.slice(0, 3).map((e) => e.name)).toEqual(['blobs/', 'blobs/sha256/', 'oci-layout']);
    expect(entries.map((e) => e.name)).toEqual(expect.arrayContaining(['index.json', 'manifest.json', 'repositories']));
    expect(entries.some((e) => e.name.startsWith('./'))).toBe(false);

    // The hybrid is also a plain OCI layout once extracted (Apptainer's path).
    const dir = join(work.path, 'docker-archive-extracted');
    mkdirSync(dir);
    await ok('tar', ['-xf', file, '-C', dir]);
    const stat = JSON.parse(await ok('umoci', ['stat', '--json', '--image', `${dir}:v1`])) as { history: Array<{ layer?: { digest: string } }> };
    expect(stat.history.map((h) => h.layer?.digest)).toEqual(v1.manifests[0]!.layerDigests);
  });

  it('oci-archive: skopeo reports the source manifest digest; tar -xf gives a layout umoci accepts and unpacks', async () => {
    const file = join(work.path, 'app-oci.tar');
    await copyImage(source('v1'), new OciArchiveDestination(file), { platforms: AMD64, jobs: 4 }, { refName: 'v1' });

    const doc = JSON.parse(await ok('skopeo', ['inspect', `oci-archive:${file}:v1`])) as { Digest: string; Layers: string[] };
    expect(doc.Digest).toBe(v1.digest);
    expect(doc.Layers).toEqual(v1.manifests[0]!.layerDigests);
    expect(sha256(await ok('skopeo', ['inspect', '--raw', `oci-archive:${file}:v1`]))).toBe(v1.digest);

    const entries = await tarList(file);
    expect(new Set(entries.map((e) => e.type))).toEqual(new Set(['d', '-']));
    expect(entries.map((e) => e.name)).not.toContain('manifest.json');

    const dir = join(work.path, 'oci-extracted');
    mkdirSync(dir);
    await ok('tar', ['-xf', file, '-C', dir]);
    const stat = JSON.parse(await ok('umoci', ['stat', '--json', '--image', `${dir}:v1`])) as { history: Array<{ created_by?: string }> };
    expect(stat.history.map((h) => h.created_by)).toEqual(['ferry test layer 0', 'ferry test layer 1', 'ferry test layer 2']);
    const bundle = join(work.path, 'oci-bundle');
    await ok('umoci', ['unpack', '--rootless', '--image', `${dir}:v1`, bundle]);
    for (let i = 0; i < 3; i++) {
      expect(readFileSync(join(bundle, 'rootfs', `layer-${i}.bin`)).equals(seededBytes(`${SEED}/linux/amd64/${i}`, LAYER_SIZE))).toBe(true);
    }
  });

  it('oci-archive --all-platforms keeps the index; skopeo resolves it per platform', async () => {
    const file = join(work.path, 'multi-oci.tar');
    await copyImage(source('multi'), new OciArchiveDestination(file), { platforms: 'all', jobs: 4 }, { refName: 'multi' });
    expect(sha256(await ok('skopeo', ['inspect', '--raw', `oci-archive:${file}:multi`]))).toBe(multi.indexDigest);
    const arm = JSON.parse(await ok('skopeo', ['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', `oci-archive:${file}:multi`])) as { Architecture: string; Layers: string[] };
    expect(arm.Architecture).toBe('arm64');
    expect(arm.Layers).toEqual(multi.manifests[1]!.layerDigests);
  });

  it('docker-archive from a multi-platform source: one platform works, all platforms is E_USAGE with nothing written', async () => {
    const file = join(work.path, 'multi-docker.tar');
    await copyImage(source('multi'), new DockerArchiveDestination(file), { platforms: [{ os: 'linux', architecture: 'arm64' }], jobs: 4 }, { refName: 'multi', repoTag: 'localhost:5000/multi:1' });
    const doc = JSON.parse(await ok('skopeo', ['inspect', `docker-archive:${file}`])) as { Architecture: string };
    expect(doc.Architecture).toBe('arm64');

    const bad = join(work.path, 'multi-all.tar');
    await expect(copyImage(source('multi'), new DockerArchiveDestination(bad), { platforms: 'all', jobs: 4 }, { repoTag: 'localhost:5000/multi:1' }))
      .rejects.toMatchObject({ code: 'E_USAGE' });
    expect((await run('ls', ['-A', work.path])).stdout).not.toMatch(/multi-all/);
  });

  it('a two-image docker-archive lists both in manifest.json, stores shared blobs once, and each image is selectable', async () => {
    const file = join(work.path, 'two.tar');
    await copyImages([
      { src: source('v1'), names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } },
      { src: source('v2'), names: { refName: 'v2', repoTag: 'localhost:5000/app:v2' } },
    ], new DockerArchiveDestination(file), { platforms: AMD64, jobs: 4 });

    const dir = join(work.path, 'two-extracted');
    mkdirSync(dir);
    await ok('tar', ['-xf', file, '-C', dir]);
    const items = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(items.map((i) => i.RepoTags)).toEqual([['localhost:5000/app:v1'], ['localhost:5000/app:v2']]);
    expect(items[0]!.Layers.slice(0, 2)).toEqual(items[1]!.Layers);
    expect(items.map((i) => i.Config)).toEqual([v1, v2].map((x) => `blobs/sha256/${x.manifests[0]!.configDigest.slice(7)}`));
    expect(sha256(readFileSync(join(dir, items[1]!.Config)))).toBe(v2.manifests[0]!.configDigest);
    const names = (await tarList(file)).map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    const distinct = new Set([...v1.manifests[0]!.layerDigests, ...v2.manifests[0]!.layerDigests, v1.manifests[0]!.configDigest, v2.manifests[0]!.configDigest, v1.digest, v2.digest]);
    expect(names.filter((n) => n.startsWith('blobs/sha256/') && n.length > 'blobs/sha256/'.length)).toHaveLength(distinct.size);

    for (const [tag, img] of [['v1', v1], ['v2', v2]] as const) {
      const doc = JSON.parse(await ok('skopeo', ['inspect', `docker-archive:${file}:localhost:5000/app:${tag}`])) as { Layers: string[] };
      expect(doc.Layers).toHaveLength(img.manifests[0]!.layerDigests.length);
      const out = join(work.path, `two-${tag}`);
      await ok('skopeo', ['copy', '--quiet', `docker-archive:${file}:localhost:5000/app:${tag}`, `oci:${out}:t`]);
      const copied = layoutImage(out, 't');
      expect(copied.diffIds).toEqual(layoutImage(src.path, tag).diffIds);
      expect(copied.layers.map((l) => sha256(uncompressed(l)))).toEqual(copied.diffIds);
    }
    // Without a selector skopeo needs exactly one image: the archive really holds two.
    const r = await skopeo(['inspect', `docker-archive:${file}`]);
    expect(r.code).not.toBe(0);
  });
});
