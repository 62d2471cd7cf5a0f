/**
 * Archives skopeo (containers/image) writes are readable by ferry's archive sources:
 * oci-archive keeps every digest; docker-archive (uncompressed layers, symlinked legacy layer
 * dirs) yields a synthesised manifest whose config digest is the original's and whose layer
 * digests are the diff_ids, and the engine copies it into an OCI layout umoci accepts.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage } from '../../src/copy/engine.js';
import { parseReference } from '../../src/ref/index.js';
import { DockerArchiveSource } from '../../src/transports/docker-archive-source.js';
import { OciArchiveSource } from '../../src/transports/oci-archive-source.js';
import { OciLayoutDestination, OciLayoutSource } from '../../src/transports/oci-layout.js';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { skopeo } from '../helpers/skopeo.js';

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

async function skopeoOk(args: string[]): Promise<string> {
  const r = await skopeo(args);
  expect(r.code, `skopeo ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

function umoci(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('umoci', args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

interface Manifest {
  mediaType: string;
  config: { digest: string; size: number };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

describe.skipIf(!requireBinary('skopeo'))('reading archives skopeo wrote', () => {
  let work: TempDir;
  let image: OciLayoutResult;
  let diffIds: string[];
  let dockerTar: string;
  let ociTar: string;

  beforeAll(async () => {
    work = makeTempDir('archive-read');
    const src = join(work.path, 'src');
    image = await makeOciLayout(src, { tag: 'v1', layers: 2, layerSize: 96 * 1024, seed: 'archive-read' });
    const cfg = JSON.parse(readFileSync(join(src, 'blobs', 'sha256', image.manifests[0]!.configDigest.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
    diffIds = cfg.rootfs.diff_ids;
    dockerTar = join(work.path, 'x.tar');
    ociTar = join(work.path, 'y.tar');
    await skopeoOk(['copy', '--quiet', '--additional-tag', 'example.com/app:extra', `oci:${src}:v1`, `docker-archive:${dockerTar}:example.com/app:v1`]);
    await skopeoOk(['copy', '--quiet', `oci:${src}:v1`, `oci-archive:${ociTar}:v1`]);
  });
  afterAll(() => work?.remove());

  it('oci-archive: same digest as the source layout, every blob verified by a copy', async () => {
    const src = new OciArchiveSource(ociTar, 'v1');
    expect((await src.resolve()).digest).toBe(image.digest);
    expect(await src.listTags()).toEqual(['v1']);
    expect((await new OciArchiveSource(ociTar).resolve()).digest).toBe(image.digest);
    const dir = join(work.path, 'from-oci-archive');
    const r = await copyImage(src, new OciLayoutDestination(dir), { platforms: 'all', jobs: 4 }, { refName: 't' });
    expect(r.root.digest).toBe(image.digest);
  });

  it('docker-archive: config digest preserved, layer digests = diff_ids (uncompressed), RepoTags listed', async () => {
    const src = new DockerArchiveSource(dockerTar);
    expect(await src.listTags()).toEqual(['example.com/app:v1', 'example.com/app:extra']);
    const d = await src.resolve();
    const bytes = await src.fetchManifest(d);
    expect(d.digest).toBe(sha256(bytes));
    const m = JSON.parse(Buffer.from(bytes).toString()) as Manifest;
    expect(m.config.digest).toBe(image.manifests[0]!.configDigest);
    expect(m.layers.map((l) => l.digest)).toEqual(diffIds);
    expect(m.layers.every((l) => l.mediaType === LAYER_TAR)).toBe(true);
    // Selecting by either tag (normalised) gives the same image.
    const byTag = await new DockerArchiveSource(dockerTar, { ref: parseReference('example.com/app:extra') }).resolve();
    expect(byTag.digest).toBe(d.digest);
    await src.close();
  });

  it('docker-archive gzipped as a whole reads the same', async () => {
    const gz = join(work.path, 'x.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(dockerTar)));
    const want = await new DockerArchiveSource(dockerTar).resolve();
    const src = new DockerArchiveSource(gz, { index: 0 });
    expect((await src.resolve()).digest).toBe(want.digest);
    await src.close();
  });

  it('docker-archive copied by the engine into an OCI layout: every blob verified; umoci accepts it', async () => {
    const dir = join(work.path, 'from-docker-archive');
    const src = new DockerArchiveSource(dockerTar, { ref: parseReference('example.com/app:v1') });
    const r = await copyImage(src, new OciLayoutDestination(dir), { platforms: 'all', jobs: 4 }, { refName: 't' });
    const back = new OciLayoutSource(dir, 't');
    const root = await back.resolve();
    expect(root.digest).toBe(r.root.digest);
    const m = JSON.parse(Buffer.from(await back.fetchManifest(root)).toString()) as Manifest;
    for (const b of [m.config, ...m.layers]) {
      expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', b.digest.slice(7))))).toBe(b.digest);
    }
    expect(m.layers.map((l) => l.digest)).toEqual(diffIds);
    if (requireBinary('umoci')) {
      const stat = await umoci(['stat', '--json', '--image', `${dir}:t`]);
      expect(stat.code, stat.stderr).toBe(0);
      const doc = JSON.parse(stat.stdout) as { history: Array<{ created_by?: string; layer?: { digest: string } }> };
      expect(doc.history.map((h) => h.created_by)).toEqual(['ferry test layer 0', 'ferry test layer 1']);
      expect(doc.history.map((h) => h.layer?.digest)).toEqual(diffIds);
    }
  });
});
