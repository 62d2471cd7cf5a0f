/**
 * ferry's pushes read back by skopeo (containers/image), and archives skopeo wrote pushed by
 * ferry: a docker-archive with uncompressed layers (gzipped on push, config unchanged) and an
 * oci-archive (pushed verbatim: the original manifest digest).
 */
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_INDEX, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { inspectDigest, skopeo } from '../helpers/skopeo.js';
import { getBlob, getManifest, writeDockerSave } from '../integration/push-support.js';
import { ferryImage, ferryJson, ferryOk, layoutEntry, oneImage, readBlob, sha256Of, type TransferDoc } from '../integration/support.js';

const has = requireBinary('skopeo') && requireBinary('docker-registry');
const PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

async function skopeoOk(args: string[]): Promise<string> {
  const r = await skopeo(args);
  expect(r.code, `skopeo ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe.skipIf(!has)('ferry push ↔ skopeo', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let single: OciLayoutResult;
  let multi: OciLayoutResult;
  let n = 0;
  const fresh = (name: string): string => join(work.path, `${name}-${++n}`);

  beforeAll(async () => {
    src = makeTempDir('push-interop-src');
    work = makeTempDir('push-interop-work');
    single = await makeOciLayout(src.path, { tag: 'v1', layers: 3, layerSize: 128 * 1024, seed: 'push-interop' });
    multi = await makeOciLayout(src.path, { tag: 'multi', layers: 2, layerSize: 64 * 1024, seed: 'push-interop-multi', platforms: PLATFORMS });
    reg = await startRegistry('open');
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  it('skopeo copies what ferry pushed, with ferry\'s digest (image and index)', async () => {
    const [one, idx] = await Promise.all([
      ferryImage(['push', '-q', `oci:${src.path}:v1`, `${reg.host}/ferry/app:v1`]),
      ferryImage(['push', '-q', `oci:${src.path}:multi`, `${reg.host}/ferry/multi:multi`]),
    ]);
    expect(one.digest).toBe(single.digest);
    expect(idx).toMatchObject({ digest: multi.indexDigest, mediaType: OCI_INDEX });

    const dir = fresh('skopeo-pulled');
    await skopeoOk(['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/ferry/app:v1`, `oci:${dir}:t`]);
    await skopeoOk(['copy', '--quiet', '--all', '--src-tls-verify=false', `docker://${reg.host}/ferry/multi:multi`, `oci:${dir}:multi`]);
    expect(layoutEntry(dir, 't').digest).toBe(one.digest);
    expect(layoutEntry(dir, 'multi').digest).toBe(idx.digest);
    expect(await inspectDigest(reg, 'ferry/app', 'v1')).toBe(one.digest);
    expect(await inspectDigest(reg, 'ferry/multi', 'multi')).toBe(idx.digest);
    const doc = JSON.parse(await skopeoOk(['inspect', '--tls-verify=false', `docker://${reg.host}/ferry/app:v1`])) as { Digest: string; Layers: string[] };
    expect(doc.Digest).toBe(one.digest);
    expect(doc.Layers).toEqual(single.manifests[0]!.layerDigests);
  });

  it('skopeo copies an image ferry gzipped from a docker save archive; its layers match the diff-ids', async () => {
    const file = join(work.path, 'saved.tar');
    const [image] = await writeDockerSave(file, [{ repoTags: ['saved:1'], layers: 2, layerSize: 64 * 1024, seed: 'interop-save' }]);
    const pushed = await ferryImage(['push', '-q', file, `${reg.host}/ferry/saved:1`]);
    expect(pushed.changes.map((c) => c.reason)).toEqual(['compression']);
    const dir = fresh('skopeo-saved');
    await skopeoOk(['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/ferry/saved:1`, `oci:${dir}:t`]);
    const entry = layoutEntry(dir, 't');
    expect(entry.digest).toBe(pushed.digest);
    const manifest = JSON.parse(readBlob(dir, entry.digest).toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
    expect(manifest.config.digest).toBe(image!.configDigest);
    expect(manifest.layers.map((l) => sha256Of(gunzipSync(readBlob(dir, l.digest))))).toEqual(image!.diffIds);
  });

  it('ferry pushes a docker-archive skopeo wrote (uncompressed layers): the config digest is the original\'s', async () => {
    const m = single.manifests[0]!;
    const file = join(work.path, 'skopeo-docker.tar');
    await skopeoOk(['copy', '--quiet', `oci:${src.path}:v1`, `docker-archive:${file}:ferry-test/app:t`]);
    const r = await ferryOk(['push', '--json', file, `${reg.host}/from-skopeo/docker:t`]);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
    expect(doc.changes.map((c) => c.reason)).toEqual(['compression']);
    expect(r.stderr).toMatch(/^note: .*compress/m);

    const got = await getManifest(reg, 'from-skopeo/docker', 't');
    expect(got.digest).toBe(doc.digest);
    expect(got.doc.config?.digest).toBe(m.configDigest);
    const config = JSON.parse((await getBlob(reg, 'from-skopeo/docker', m.configDigest)).toString('utf8')) as { rootfs: { diff_ids: string[] } };
    const layers = await Promise.all(got.doc.layers!.map((l) => getBlob(reg, 'from-skopeo/docker', l.digest)));
    expect(layers.map((b) => sha256Of(gunzipSync(b)))).toEqual(config.rootfs.diff_ids);
    got.doc.layers!.forEach((l, i) => expect(sha256Of(layers[i]!)).toBe(l.digest));
    // skopeo reads it back.
    const insp = JSON.parse(await skopeoOk(['inspect', '--tls-verify=false', `docker://${reg.host}/from-skopeo/docker:t`])) as { Digest: string };
    expect(insp.Digest).toBe(doc.digest);
    // ferry's own view of the archive names the same config.
    // ferry's own view of the archive: the same config, and uncompressed layers (hence the gzip on push).
    const local = await ferryJson<{ digest: string; config: { digest: string }; layers: Array<{ mediaType: string }> }>(['inspect', `docker-archive:${file}`]);
    expect(local.config.digest).toBe(m.configDigest);
    expect(local.layers.map((l) => l.mediaType)).toEqual(m.layerDigests.map(() => 'application/vnd.oci.image.layer.v1.tar'));
    expect(doc.changes[0]!.from).toBe(local.digest);
  });

  it('ferry pushes an oci-archive skopeo wrote: exactly the original manifest digest', async () => {
    const file = join(work.path, 'skopeo-oci.tar');
    await skopeoOk(['copy', '--quiet', `oci:${src.path}:v1`, `oci-archive:${file}:t`]);
    const r = await ferryOk(['push', '--json', file, `${reg.host}/from-skopeo/oci:t`]);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc);
    expect(doc).toMatchObject({ digest: single.digest, sourceDigest: single.digest, changes: [] });
    expect(r.stderr).not.toContain('note:');
    expect(await inspectDigest(reg, 'from-skopeo/oci', 't')).toBe(single.digest);
  });
});
