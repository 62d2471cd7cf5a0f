/**
 * Archives `ferry pull … -o` writes are read by skopeo (containers/image, as podman load does) and,
 * after a skopeo copy into an OCI layout, unpacked by umoci; archives skopeo writes from the same
 * registry image are read by ferry inspect/tags with the same config and manifest digests.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_MANIFEST, REF_NAME, seededBytes, type BuiltManifest, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { pushWithSkopeo, registryArgs, skopeo } from '../helpers/skopeo.js';
import {
  blobData, entryJson, normalizeName, readTar, sha256, uncompressed,
  type ConfigDoc, type DockerManifestItem, type ImageManifestDoc, type OciIndexDoc, type TarEntry,
} from '../integration/archive-support.js';
import { ferryJson, ferryOk, type InspectDoc } from '../integration/support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo') && requireBinary('umoci');
const SEED = 'archive-cli';
const LAYERS = 3;
const LAYER_SIZE = 96 * 1024;

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

async function skopeoOk(args: string[]): Promise<string> {
  const r = await skopeo(args);
  expect(r.code, `skopeo ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

interface SkopeoInspect {
  Digest: string;
  Architecture: string;
  Os: string;
  Layers: string[];
  Labels: Record<string, string> | null;
}

describe.skipIf(!has)('archives between ferry and skopeo/umoci', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let img: OciLayoutResult;
  let m: BuiltManifest;
  let ref: string;
  let dockerTar: string; // ferry pull -o x.tar
  let ociTar: string; // ferry pull oci-archive:y.tar:t

  beforeAll(async () => {
    src = makeTempDir('acli-src');
    work = makeTempDir('acli-work');
    img = await makeOciLayout(src.path, { tag: 'v1', layers: LAYERS, layerSize: LAYER_SIZE, seed: SEED });
    m = img.manifests[0]!;
    reg = await startRegistry('open');
    ref = `${reg.host}/library/app:v1`;
    expect(await pushWithSkopeo(src.path, 'v1', reg, 'library/app')).toBe(img.digest);
    dockerTar = join(work.path, 'x.tar');
    ociTar = join(work.path, 'y.tar');
    await Promise.all([
      ferryOk(['pull', '-q', ref, '-o', dockerTar]),
      ferryOk(['pull', '-q', ref, `oci-archive:${ociTar}:t`]),
    ]);
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  /** config.rootfs.diff_ids are the sha256 of the gunzipped layer blobs stored in the archive. */
  function expectDiffIds(entries: TarEntry[], manifest: ImageManifestDoc): void {
    const config = JSON.parse(blobData(entries, manifest.config.digest).toString('utf8')) as ConfigDoc;
    const layers = manifest.layers.map((l) => blobData(entries, l.digest));
    layers.forEach((l, i) => expect(sha256(l), `layer ${i}`).toBe(manifest.layers[i]!.digest));
    expect(layers.map((l) => sha256(uncompressed(l)))).toEqual(config.rootfs.diff_ids);
    expect(config.rootfs.diff_ids).toHaveLength(LAYERS);
  }

  it('ferry docker-archive: skopeo inspects it, copies it to OCI, umoci unpacks the layer files', async () => {
    const doc = JSON.parse(await skopeoOk(['inspect', `docker-archive:${dockerTar}`])) as SkopeoInspect;
    expect(doc).toMatchObject({ Architecture: 'amd64', Os: 'linux' });
    expect(doc.Layers).toHaveLength(LAYERS);
    expect(doc.Labels?.['ferry.test.seed']).toBe(SEED);
    // The config blob is passed through untouched.
    expect(sha256(await skopeoOk(['inspect', '--raw', '--config', `docker-archive:${dockerTar}`]))).toBe(m.configDigest);
    // Selecting the image by its RepoTag works too.
    await skopeoOk(['inspect', `docker-archive:${dockerTar}:${ref}`]);

    const layout = join(work.path, 'from-ferry-docker-archive');
    await skopeoOk(['copy', '--quiet', `docker-archive:${dockerTar}`, `oci:${layout}:t`]);
    const bundle = join(work.path, 'bundle-docker-archive');
    const u = await run('umoci', ['unpack', '--rootless', '--image', `${layout}:t`, bundle]);
    expect(u.code, u.stderr).toBe(0);
    for (let i = 0; i < LAYERS; i++) {
      const f = join(bundle, 'rootfs', `layer-${i}.bin`);
      expect(existsSync(f), f).toBe(true);
      expect(readFileSync(f).equals(seededBytes(`${SEED}/linux/amd64/${i}`, LAYER_SIZE)), f).toBe(true);
    }
  });

  it('ferry docker-archive: diff_ids equal the sha256 of the gunzipped layers', async () => {
    const entries = await readTar(dockerTar);
    const [item] = entryJson<DockerManifestItem[]>(entries, 'manifest.json');
    const index = entryJson<OciIndexDoc>(entries, 'index.json');
    const manifest = JSON.parse(blobData(entries, index.manifests[0]!.digest).toString('utf8')) as ImageManifestDoc;
    expect(item!.Config).toBe(`blobs/sha256/${manifest.config.digest.slice(7)}`);
    expect(item!.Layers).toEqual(manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`));
    expectDiffIds(entries, manifest);
  });

  it('ferry oci-archive: skopeo inspect reports the registry digest; diff_ids match the layers', async () => {
    const doc = JSON.parse(await skopeoOk(['inspect', `oci-archive:${ociTar}:t`])) as SkopeoInspect;
    expect(doc.Digest).toBe(img.digest);
    expect(doc.Layers).toEqual(m.layerDigests);
    expect(sha256(await skopeoOk(['inspect', '--raw', `oci-archive:${ociTar}:t`]))).toBe(img.digest);

    const layout = join(work.path, 'from-ferry-oci-archive');
    await skopeoOk(['copy', '--quiet', '--preserve-digests', `oci-archive:${ociTar}:t`, `oci:${layout}:t`]);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as OciIndexDoc;
    expect(index.manifests.find((d) => d.annotations?.[REF_NAME] === 't')?.digest).toBe(img.digest);

    const entries = await readTar(ociTar);
    const manifest = JSON.parse(blobData(entries, img.digest).toString('utf8')) as ImageManifestDoc;
    expectDiffIds(entries, manifest);
  });

  it('skopeo docker-archive (uncompressed layers): ferry reads the same config; layer digests are the diff_ids', async () => {
    const file = join(work.path, 'z.tar');
    await skopeoOk(['copy', '--quiet', ...registryArgs(reg, 'src-', null), `docker://${ref}`, `docker-archive:${file}:name:tag`]);
    const diffIds = (JSON.parse(readFileSync(join(src.path, 'blobs/sha256', m.configDigest.slice(7)), 'utf8')) as ConfigDoc).rootfs.diff_ids;

    for (const loc of [`docker-archive:${file}`, `docker-archive:${file}:name:tag`]) {
      const doc = await ferryJson<InspectDoc>(['inspect', loc]);
      expect(doc.mediaType).toBe(OCI_MANIFEST);
      expect(doc.config?.digest).toBe(m.configDigest);
      expect(doc.layers?.map((l) => l.digest)).toEqual(diffIds);
      expect(doc.layers?.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar')).toBe(true);
      expect(doc.platform).toBe('linux/amd64');
    }
    const tags = await ferryJson<{ tags: string[] }>(['tags', `docker-archive:${file}`]);
    expect(tags.tags.map(normalizeName)).toEqual(['docker.io/library/name:tag']);
  });

  it('skopeo oci-archive: ferry inspect reports the registry manifest digest', async () => {
    const file = join(work.path, 'w.tar');
    await skopeoOk(['copy', '--quiet', ...registryArgs(reg, 'src-', null), `docker://${ref}`, `oci-archive:${file}:t`]);
    for (const loc of [`oci-archive:${file}:t`, `oci-archive:${file}`]) {
      const doc = await ferryJson<InspectDoc>(['inspect', loc]);
      expect(doc).toMatchObject({ digest: img.digest, mediaType: OCI_MANIFEST, size: m.size });
      expect(doc.config?.digest).toBe(m.configDigest);
      expect(doc.layers?.map((l) => l.digest)).toEqual(m.layerDigests);
    }
    expect((await ferryJson<{ tags: string[] }>(['tags', `oci-archive:${file}`])).tags).toEqual(['t']);
  });
});
