/**
 * OCI image layouts ferry writes are usable by umoci and skopeo, and layouts umoci and skopeo
 * write are readable by ferry: same digests both ways, unpacked file contents byte-exact.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, OCI_INDEX, OCI_MANIFEST, seededBytes, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { inspectDigest, pushWithSkopeo, registryArgs, skopeo } from '../helpers/skopeo.js';
import { expectBlobs, ferryJson, ferryOk, layoutEntry, sha256Of, type InspectDoc } from '../integration/support.js';

const has = requireBinary('umoci') && requireBinary('skopeo') && requireBinary('docker-registry');

const LAYER_SIZE = 96 * 1024;
const SEED = 'interop';

function umoci(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('umoci', args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

async function umociOk(args: string[]): Promise<string> {
  const r = await umoci(args);
  expect(r.code, `umoci ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

async function skopeoOk(args: string[]): Promise<string> {
  const r = await skopeo(args);
  expect(r.code, `skopeo ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

describe.skipIf(!has)('OCI layout interop with umoci and skopeo', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let image: OciLayoutResult;
  let multi: OciLayoutResult;
  let pulled: string; // ferry pull → oci:<pulled>:v1

  beforeAll(async () => {
    src = makeTempDir('interop-src');
    work = makeTempDir('interop-work');
    image = await makeOciLayout(src.path, { tag: 'v1', layers: 2, layerSize: LAYER_SIZE, seed: SEED });
    multi = await makeOciLayout(src.path, {
      tag: 'multi', layers: 1, layerSize: 32 * 1024, seed: `${SEED}-multi`,
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    });
    reg = await startRegistry('open');
    expect(await pushWithSkopeo(src.path, 'v1', reg, 'library/app')).toBe(image.digest);
    expect(await pushWithSkopeo(src.path, 'multi', reg, 'library/multi', { all: true })).toBe(multi.indexDigest);
    pulled = join(work.path, 'pulled');
    await ferryOk(['pull', '-q', `${reg.host}/library/app:v1`, `oci:${pulled}`]);
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  it('umoci stat and umoci unpack accept the layout ferry wrote; files are byte-exact', async () => {
    expect(layoutEntry(pulled, 'v1').digest).toBe(image.digest);
    const stat = JSON.parse(await umociOk(['stat', '--json', '--image', `${pulled}:v1`])) as {
      history: Array<{ created_by?: string; layer?: { digest: string } }>;
    };
    expect(stat.history.map((h) => h.created_by)).toEqual(['ferry test layer 0', 'ferry test layer 1']);
    expect(stat.history.map((h) => h.layer?.digest)).toEqual(image.manifests[0]!.layerDigests);

    const bundle = join(work.path, 'bundle');
    await umociOk(['unpack', '--rootless', '--image', `${pulled}:v1`, bundle]);
    for (let i = 0; i < 2; i++) {
      const got = readFileSync(join(bundle, 'rootfs', `layer-${i}.bin`));
      expect(got.length).toBe(LAYER_SIZE);
      expect(got.equals(seededBytes(`${SEED}/linux/amd64/${i}`, LAYER_SIZE))).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; env: string[] } };
    expect(config.process.args).toEqual(['/bin/sh', '-c', 'echo hello from ferry tests']);
    expect(config.process.env).toContain(`FERRY_TEST_SEED=${SEED}`);
  });

  it('skopeo inspect oci: reports the registry digest; skopeo copy back to a registry keeps it', async () => {
    const raw = await skopeoOk(['inspect', '--raw', `oci:${pulled}:v1`]);
    expect(sha256Of(raw)).toBe(image.digest);
    const doc = JSON.parse(await skopeoOk(['inspect', `oci:${pulled}:v1`])) as { Digest: string; Layers: string[]; Architecture: string };
    expect(doc.Digest).toBe(image.digest);
    expect(doc.Layers).toEqual(image.manifests[0]!.layerDigests);
    expect(doc.Architecture).toBe('amd64');

    await skopeoOk(['copy', '--quiet', ...registryArgs(reg, 'dest-'), `oci:${pulled}:v1`, `docker://${reg.host}/copy/app:v1`]);
    expect(await inspectDigest(reg, 'copy/app', 'v1')).toBe(image.digest);
    expect((await ferryJson<InspectDoc>(['inspect', `${reg.host}/copy/app:v1`])).digest).toBe(image.digest);
  });

  it('a multi-platform pull (--all-platforms) is readable by skopeo with the index digest', async () => {
    const dir = join(work.path, 'multi');
    await ferryOk(['pull', '-q', '--all-platforms', `${reg.host}/library/multi:multi`, `oci:${dir}`]);
    expect(sha256Of(await skopeoOk(['inspect', '--raw', `oci:${dir}:multi`]))).toBe(multi.indexDigest);
    // skopeo resolves the index to the child for the platform asked for; Digest names the index.
    const doc = JSON.parse(await skopeoOk(['--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', `oci:${dir}:multi`])) as {
      Digest: string; Architecture: string; Layers: string[];
    };
    expect(doc.Digest).toBe(multi.indexDigest);
    expect(doc.Architecture).toBe('arm64');
    expect(doc.Layers).toEqual(multi.manifests[1]!.layerDigests);
  });

  it('ferry reads layouts skopeo wrote: same digests, tags listed', async () => {
    const dir = join(work.path, 'by-skopeo');
    await skopeoOk(['copy', '--quiet', ...registryArgs(reg, 'src-'), `docker://${reg.host}/library/app:v1`, `oci:${dir}:t`]);
    await skopeoOk(['copy', '--quiet', '--all', ...registryArgs(reg, 'src-'), `docker://${reg.host}/library/multi:multi`, `oci:${dir}:m`]);
    const [single, index, tags] = await Promise.all([
      ferryJson<InspectDoc>(['inspect', `oci:${dir}:t`]),
      ferryJson<InspectDoc>(['inspect', `oci:${dir}:m`]),
      ferryOk(['tags', `oci:${dir}`]),
    ]);
    expect(single).toMatchObject({ digest: image.digest, mediaType: OCI_MANIFEST, config: { digest: image.manifests[0]!.configDigest } });
    expect(single.layers?.map((l) => l.digest)).toEqual(image.manifests[0]!.layerDigests);
    expect(index).toMatchObject({ digest: multi.indexDigest, mediaType: OCI_INDEX });
    expect(index.children?.map((m) => [m.digest, m.platform])).toEqual([
      [multi.manifests[0]!.digest, 'linux/amd64'], [multi.manifests[1]!.digest, 'linux/arm64/v8'],
    ]);
    expect(tags.stdout.trim().split('\n').sort()).toEqual(['m', 't']);
    const raw = await ferryOk(['inspect', '--raw', `oci:${dir}:t`]);
    expect(sha256Of(raw.stdout)).toBe(image.digest);
  });

  it('ferry reads layouts umoci wrote: umoci tag and umoci repack', async () => {
    const dir = join(work.path, 'by-umoci');
    await ferryOk(['pull', '-q', `${reg.host}/library/app:v1`, `oci:${dir}:base`]);
    await umociOk(['tag', '--image', `${dir}:base`, 'renamed']);
    const bundle = join(work.path, 'repack-bundle');
    await umociOk(['unpack', '--rootless', '--image', `${dir}:base`, bundle]);
    mkdirSync(join(bundle, 'rootfs', 'etc'), { recursive: true });
    writeFileSync(join(bundle, 'rootfs', 'etc', 'added-by-umoci'), 'hello from umoci\n');
    await umociOk(['repack', '--image', `${dir}:changed`, bundle]);

    const tags = await ferryJson<{ source: string; tags: string[] }>(['tags', `oci:${dir}`]);
    expect(tags.tags.sort()).toEqual(['base', 'changed', 'renamed']);
    const [renamed, changed] = await Promise.all([
      ferryJson<InspectDoc>(['inspect', `oci:${dir}:renamed`]),
      ferryJson<InspectDoc>(['inspect', `oci:${dir}:changed`]),
    ]);
    expect(renamed.digest).toBe(image.digest);
    expect(changed.digest).toBe(layoutEntry(dir, 'changed').digest);
    expect(changed.digest).not.toBe(image.digest);
    expect(changed.layers).toHaveLength(3);
    expect(changed.layers!.slice(0, 2).map((l) => l.digest)).toEqual(image.manifests[0]!.layerDigests);
    const cfg = await ferryOk(['inspect', '--config', `oci:${dir}:changed`]);
    expect(sha256Of(cfg.stdout)).toBe(changed.config!.digest);
    expectBlobs(dir, [changed.digest, changed.config!.digest, ...changed.layers!.map((l) => l.digest)]);
  });
});
