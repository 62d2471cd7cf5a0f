/**
 * DockerArchiveSource and OciArchiveSource over archives built in the test: classic `docker save`
 * (symlinked / hardlinked layers, uncompressed), Docker 25 hybrids (index.json manifest returned
 * verbatim), compressed layers, whole-archive gzip, multi-image selection, malformed archives.
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage } from '../../../src/copy/engine.js';
import { parseReference } from '../../../src/ref/index.js';
import { DockerArchiveSource } from '../../../src/transports/docker-archive-source.js';
import { OciArchiveSource } from '../../../src/transports/oci-archive-source.js';
import { OciLayoutDestination, OciLayoutSource } from '../../../src/transports/oci-layout.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { makeTempDir, type TempDir } from '../../helpers/binaries.js';
import { makeOciLayout, seededBytes, ustarSingleFile, type OciLayoutResult } from '../../helpers/images.js';
import { collect, hex, type Member, packTar, sha256 } from './reader-support.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

let tmp: TempDir;
let n = 0;
const write = (buf: Buffer, name = `x${n++}.tar`): string => {
  const p = join(tmp.path, name);
  writeFileSync(p, buf);
  return p;
};

beforeAll(() => {
  tmp = makeTempDir('archive-read');
});
afterAll(() => tmp.remove());

interface Img {
  tags: string[];
  config: Buffer;
  layers: Buffer[]; // uncompressed layer tars
  diffIds: string[];
}

function image(seed: string, layers = 2, tags = [`example.com/${seed}:v1`]): Img {
  const tars = Array.from({ length: layers }, (_, i) => ustarSingleFile(`f-${i}`, seededBytes(`${seed}/${i}`, 1500 + i * 700)));
  const diffIds = tars.map((t) => sha256(t));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: [`SEED=${seed}`] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  return { tags, config, layers: tars, diffIds };
}

/** The classic layout containers/image writes: `<diffid>.tar` at the root, `<id>/layer.tar` links. */
function classicMembers(imgs: Img[], link: 'symlink' | 'link' = 'symlink'): Member[] {
  const members: Member[] = [];
  const seen = new Set<string>();
  const manifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const img of imgs) {
    const layerPaths: string[] = [];
    img.layers.forEach((tar, i) => {
      const dh = hex(img.diffIds[i]!);
      const id = hex(sha256(`v1id:${dh}:${i}`));
      if (!seen.has(dh)) {
        seen.add(dh);
        members.push({ name: `${dh}.tar`, data: tar });
        members.push({ name: `${id}/`, type: 'directory' });
        members.push(link === 'symlink'
          ? { name: `${id}/layer.tar`, type: 'symlink', linkname: `../${dh}.tar` }
          : { name: `${id}/layer.tar`, type: 'link', linkname: `${dh}.tar` });
        members.push({ name: `${id}/json`, data: JSON.stringify({ id }) });
        members.push({ name: `${id}/VERSION`, data: '1.0' });
      }
      layerPaths.push(`${id}/layer.tar`);
      if (i === img.layers.length - 1) {
        for (const t of img.tags) {
          const r = parseReference(t);
          (repositories[r.name()] ??= {})[r.tag!] = id;
        }
      }
    });
    const ch = hex(sha256(img.config));
    if (!seen.has(ch)) {
      seen.add(ch);
      members.push({ name: `${ch}.json`, data: img.config });
    }
    manifest.push({ Config: `${ch}.json`, RepoTags: img.tags, Layers: layerPaths });
  }
  members.push({ name: 'repositories', data: JSON.stringify(repositories) });
  members.push({ name: 'manifest.json', data: JSON.stringify(manifest) });
  return members;
}

async function manifestOf(src: DockerArchiveSource | OciArchiveSource): Promise<{ d: Descriptor; bytes: Buffer; m: { config: Descriptor; layers: Descriptor[]; mediaType: string } }> {
  const d = await src.resolve();
  const bytes = Buffer.from(await src.fetchManifest(d));
  return { d, bytes, m: JSON.parse(bytes.toString()) };
}

/** Copies with the engine into a fresh layout dir (verifying every blob); returns the dir. */
async function copyToLayout(src: DockerArchiveSource | OciArchiveSource, refName = 't'): Promise<{ dir: string; root: Descriptor }> {
  const dir = join(tmp.path, `layout${n++}`);
  const r = await copyImage(src, new OciLayoutDestination(dir), { platforms: 'all', jobs: 4 }, { refName });
  return { dir, root: r.root };
}

describe('DockerArchiveSource: classic docker save', () => {
  const img = image('classic');

  it('synthesises an OCI manifest: config sha256, layer digests = diff_ids, uncompressed layer type', async () => {
    const path = write(await packTar(classicMembers([img])));
    const src = new DockerArchiveSource(path);
    expect(src.description).toBe(`docker-archive:${path}`);
    const { d, bytes, m } = await manifestOf(src);
    expect(d).toEqual({ mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length });
    expect(m).toEqual({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(img.config), size: img.config.length },
      layers: img.layers.map((l, i) => ({ mediaType: LAYER_TAR, digest: img.diffIds[i], size: l.length })),
    });
    // Blobs stream from the tar, through the <id>/layer.tar symlinks, from any offset.
    expect((await collect(await src.fetchBlob(m.layers[1]!))).equals(img.layers[1]!)).toBe(true);
    expect((await collect(await src.fetchBlob(m.layers[0]!, { offset: 1000 }))).equals(img.layers[0]!.subarray(1000))).toBe(true);
    expect((await collect(await src.fetchBlob(m.config))).equals(img.config)).toBe(true);
    await expect(src.fetchBlob({ mediaType: LAYER_TAR, digest: sha256('nope') as `sha256:${string}`, size: 4 })).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', exitCode: 2 });
    expect(await src.listTags()).toEqual(['example.com/classic:v1']);
    await src.close();
  });

  it('hardlinked layers; copying with the engine verifies every blob', async () => {
    const path = write(await packTar(classicMembers([img], 'link')));
    const src = new DockerArchiveSource(path);
    const { d, m } = await manifestOf(new DockerArchiveSource(path));
    const { dir, root } = await copyToLayout(src);
    expect(root.digest).toBe(d.digest);
    for (const b of [m.config, ...m.layers]) {
      expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', hex(b.digest))))).toBe(b.digest);
    }
    // The copy reads back as the same image.
    expect((await new OciLayoutSource(dir, 't').resolve()).digest).toBe(d.digest);
  });

  it('a gzipped archive (docker save | gzip) reads the same, and close() removes the temp copy', async () => {
    const plain = write(await packTar(classicMembers([img])));
    const gz = write(gzipSync(readFileSync(plain)), 'classic.tar.gz');
    const scratch = join(tmp.path, 'tmpdir');
    mkdirSync(scratch);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = scratch;
    try {
      const src = new DockerArchiveSource(gz);
      const want = (await manifestOf(new DockerArchiveSource(plain))).d;
      expect((await src.resolve()).digest).toBe(want.digest);
      expect(readdirSync(scratch)).toHaveLength(1);
      const { m } = await manifestOf(src);
      expect((await collect(await src.fetchBlob(m.layers[0]!))).equals(img.layers[0]!)).toBe(true);
      await src.close();
      expect(readdirSync(scratch)).toHaveLength(0);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });

  it('./-prefixed names (as tar -C dir . writes them)', async () => {
    const members = classicMembers([img]).map((mb) => ({ ...mb, name: `./${mb.name}` }));
    const { m } = await manifestOf(new DockerArchiveSource(write(await packTar(members))));
    expect(m.layers.map((l) => l.digest)).toEqual(img.diffIds);
  });
});

describe('DockerArchiveSource: selection among several images', () => {
  const a = image('alpine', 1, ['docker.io/library/alpine:3', 'alpine:latest']);
  const b = image('app', 2, ['ghcr.io/o/app:1.0']);
  const c = image('untagged', 1, []);
  let path: string;
  beforeAll(async () => {
    path = write(await packTar(classicMembers([a, b, c])));
  });
  const configOf = async (src: DockerArchiveSource): Promise<string> => (await manifestOf(src)).m.config.digest;

  it('by reference, normalised both ways', async () => {
    expect(await configOf(new DockerArchiveSource(path, { ref: parseReference('alpine:3') }))).toBe(sha256(a.config));
    expect(await configOf(new DockerArchiveSource(path, { ref: parseReference('docker.io/library/alpine') }))).toBe(sha256(a.config));
    expect(await configOf(new DockerArchiveSource(path, { ref: parseReference('ghcr.io/o/app:1.0') }))).toBe(sha256(b.config));
    expect(new DockerArchiveSource(path, { ref: parseReference('alpine:3') }).description).toBe(`docker-archive:${path}:alpine:3`);
  });

  it('by @index', async () => {
    expect(await configOf(new DockerArchiveSource(path, { index: 2 }))).toBe(sha256(c.config));
    expect(new DockerArchiveSource(path, { index: 2 }).description).toBe(`docker-archive:${path}:@2`);
    await expect(new DockerArchiveSource(path, { index: 3 }).resolve()).rejects.toMatchObject({ code: 'E_LOCAL_NOT_FOUND', exitCode: 2, message: expect.stringMatching(/@3/) });
  });

  it('without a selector: E_BAD_REFERENCE listing RepoTags and @N', async () => {
    const err = await new DockerArchiveSource(path).resolve().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_REFERENCE', message: expect.stringMatching(/holds 3 images/) });
    expect((err as { hint: string }).hint).toBe('available: docker.io/library/alpine:3, alpine:latest, ghcr.io/o/app:1.0, @2');
  });

  it('an unknown tag is E_LOCAL_NOT_FOUND (exit 2) listing what it holds; digests are refused', async () => {
    await expect(new DockerArchiveSource(path, { ref: parseReference('alpine:4') }).resolve()).rejects.toMatchObject({ code: 'E_LOCAL_NOT_FOUND', exitCode: 2, hint: expect.stringContaining('ghcr.io/o/app:1.0') });
    await expect(new DockerArchiveSource(path, { ref: parseReference(`alpine@${sha256('x')}`) }).resolve()).rejects.toMatchObject({ code: 'E_BAD_REFERENCE' });
  });

  it('listTags returns every RepoTags entry as written', async () => {
    expect(await new DockerArchiveSource(path).listTags()).toEqual(['docker.io/library/alpine:3', 'alpine:latest', 'ghcr.io/o/app:1.0']);
  });
});

describe('DockerArchiveSource: layer digests and media types', () => {
  it('gzip layer (hashed once), LayerSources (trusted when the size matches), blobs/<alg>/<hex> paths, zstd', async () => {
    const img = image('compressed', 3);
    const gz = gzipSync(img.layers[0]!);
    const gz2 = gzipSync(img.layers[1]!);
    const zst = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(60, 1)]); // zstd magic only
    const fakeDigest = sha256('trusted without hashing');
    const members: Member[] = [
      { name: 'l0.tar.gz', data: gz },
      { name: 'l1.tar.gz', data: gz2 },
      { name: `blobs/sha256/${hex(sha256(zst))}`, data: zst },
      { name: 'cfg.json', data: img.config },
      {
        name: 'manifest.json',
        data: JSON.stringify([{
          Config: 'cfg.json', RepoTags: ['x:1'], Layers: ['l0.tar.gz', 'l1.tar.gz', `blobs/sha256/${hex(sha256(zst))}`],
          LayerSources: {
            [img.diffIds[0]!]: { mediaType: LAYER_GZIP, digest: sha256('other'), size: gz.length + 1 }, // wrong size: ignored
            [img.diffIds[1]!]: { mediaType: LAYER_GZIP, digest: fakeDigest, size: gz2.length },
          },
        }]),
      },
    ];
    const src = new DockerArchiveSource(write(await packTar(members)));
    const { m } = await manifestOf(src);
    expect(m.layers).toEqual([
      { mediaType: LAYER_GZIP, digest: sha256(gz), size: gz.length },
      { mediaType: LAYER_GZIP, digest: fakeDigest, size: gz2.length },
      { mediaType: LAYER_ZSTD, digest: sha256(zst), size: zst.length },
    ]);
    expect((await collect(await src.fetchBlob(m.layers[0]!))).equals(gz)).toBe(true);
  });

  it('a config named blobs/sha256/<hex> must hash to that digest', async () => {
    const img = image('badcfg', 1);
    const members: Member[] = [
      { name: 'l.tar', data: img.layers[0]! },
      { name: `blobs/sha256/${hex(sha256('something else'))}`, data: img.config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: `blobs/sha256/${hex(sha256('something else'))}`, RepoTags: [], Layers: ['l.tar'] }]) },
    ];
    await expect(new DockerArchiveSource(write(await packTar(members))).resolve()).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
  });
});

/** Docker ≥25: an OCI layout and docker metadata in one tar, layers uncompressed under blobs/. */
async function hybrid(img: Img, opts: { nested?: boolean; mismatch?: boolean } = {}): Promise<{ path: string; manifest: Buffer; index?: Buffer }> {
  const blob = (b: Buffer): Member => ({ name: `blobs/sha256/${hex(sha256(b))}`, data: b });
  // Deliberately not what ferry would synthesise (key order, whitespace, annotations).
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256(img.config), size: img.config.length },
    layers: img.layers.map((l) => ({ mediaType: LAYER_TAR, digest: sha256(l), size: l.length })).slice(0, opts.mismatch ? 1 : undefined),
    annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
  }, null, 3));
  const mdesc = { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } };
  const nested = opts.nested ? Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [mdesc] })) : undefined;
  const top = nested ? { mediaType: OCI_INDEX, digest: sha256(nested), size: nested.length } : mdesc;
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...top, annotations: { 'io.containerd.image.name': 'docker.io/library/hy:1', 'org.opencontainers.image.ref.name': '1' } }] };
  const members: Member[] = [
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    ...img.layers.map(blob),
    blob(img.config),
    blob(manifest),
    ...(nested ? [blob(nested)] : []),
    { name: 'index.json', data: JSON.stringify(index) },
    {
      name: 'manifest.json',
      data: JSON.stringify([{
        Config: `blobs/sha256/${hex(sha256(img.config))}`, RepoTags: ['hy:1'], Layers: img.layers.map((l) => `blobs/sha256/${hex(sha256(l))}`),
        LayerSources: Object.fromEntries(img.layers.map((l, i) => [img.diffIds[i], { mediaType: LAYER_TAR, digest: sha256(l), size: l.length }])),
      }]),
    },
    { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'repositories', data: '{"hy":{"1":"x"}}' },
  ];
  return { path: write(await packTar(members)), manifest, ...(nested ? { index: nested } : {}) };
}

describe('DockerArchiveSource: Docker 25 hybrid archives', () => {
  const img = image('hybrid', 2);

  it("returns index.json's manifest verbatim (digest preserved)", async () => {
    const h = await hybrid(img);
    const src = new DockerArchiveSource(h.path, { ref: parseReference('hy:1') });
    const { d, bytes } = await manifestOf(src);
    expect(d).toEqual({ mediaType: OCI_MANIFEST, digest: sha256(h.manifest), size: h.manifest.length });
    expect(bytes.equals(h.manifest)).toBe(true);
    const { root } = await copyToLayout(src);
    expect(root.digest).toBe(sha256(h.manifest));
  });

  it('finds the manifest one level down when the index.json entry is an index', async () => {
    const h = await hybrid(img, { nested: true });
    const { d, bytes } = await manifestOf(new DockerArchiveSource(h.path));
    expect(d.digest).toBe(sha256(h.manifest));
    expect(bytes.equals(h.manifest)).toBe(true);
  });

  it('synthesises when index.json describes something else', async () => {
    const h = await hybrid(img, { mismatch: true });
    const { d, m } = await manifestOf(new DockerArchiveSource(h.path));
    expect(d.digest).not.toBe(sha256(h.manifest));
    expect(m.layers.map((l) => l.digest)).toEqual(img.diffIds);
  });
});

describe('DockerArchiveSource: malformed archives', () => {
  const img = image('bad', 2);

  it('Layers and rootfs.diff_ids of different lengths → E_BAD_ARCHIVE', async () => {
    const members = classicMembers([img]).map((mb) => {
      if (mb.name !== 'manifest.json') return mb;
      const items = JSON.parse(String(mb.data)) as Array<{ Layers: string[] }>;
      items[0]!.Layers = items[0]!.Layers.slice(0, 1);
      return { ...mb, data: JSON.stringify(items) };
    });
    await expect(new DockerArchiveSource(write(await packTar(members))).resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/1 layers but its config has 2 diff_ids/) });
  });

  it('a legacy-only archive (no manifest.json) → E_BAD_ARCHIVE with a hint', async () => {
    const members = classicMembers([img]).filter((mb) => mb.name !== 'manifest.json');
    const src = new DockerArchiveSource(write(await packTar(members)));
    await expect(src.resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/legacy/), hint: expect.stringMatching(/docker load/) });
    await expect(src.listTags()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE' });
  });

  it('a layer that is not in the archive, and a truncated archive → E_BAD_ARCHIVE', async () => {
    const members = classicMembers([img]).filter((mb) => !mb.name.endsWith('.tar') || mb.type === 'symlink');
    await expect(new DockerArchiveSource(write(await packTar(members))).resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/not in the archive/) });
    const whole = await packTar(classicMembers([img]));
    const cut = write(whole.subarray(0, 2000));
    await expect(new DockerArchiveSource(cut).resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringContaining(cut) });
  });

  it('an OCI archive read as a docker-archive says so', async () => {
    const members: Member[] = [{ name: 'oci-layout', data: '{}' }, { name: 'index.json', data: '{"manifests":[]}' }];
    await expect(new DockerArchiveSource(write(await packTar(members))).resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', hint: expect.stringMatching(/oci-archive:/) });
  });
});

/** Tars a directory the way `tar -C dir .` does: `./` prefixes, directory entries first. */
async function tarDir(dir: string): Promise<Buffer> {
  const members: Member[] = [{ name: './', type: 'directory' }];
  const walk = (d: string): void => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const rel = `./${relative(dir, p)}`;
      if (statSync(p).isDirectory()) {
        members.push({ name: `${rel}/`, type: 'directory' });
        walk(p);
      } else {
        members.push({ name: rel, data: readFileSync(p) });
      }
    }
  };
  walk(dir);
  return packTar(members);
}

describe('OciArchiveSource', () => {
  let layout: string;
  let v1: OciLayoutResult;
  let multi: OciLayoutResult;
  let path: string;
  beforeAll(async () => {
    layout = join(tmp.path, 'oci-src');
    v1 = await makeOciLayout(layout, { tag: 'v1', seed: 'oa' });
    multi = await makeOciLayout(layout, { tag: 'multi', seed: 'oa-m', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    path = write(await tarDir(layout), 'layout.tar');
  });

  it('selects by ref name or digest, lists tags, and copies with every digest preserved', async () => {
    const src = new OciArchiveSource(path, 'v1');
    expect(src.description).toBe(`oci-archive:${path}:v1`);
    expect((await src.resolve()).digest).toBe(v1.digest);
    expect((await new OciArchiveSource(path, multi.digest).resolve()).digest).toBe(multi.digest);
    expect(await src.listTags()).toEqual(['v1', 'multi']);
    const { root } = await copyToLayout(new OciArchiveSource(path, 'multi'));
    expect(root.digest).toBe(multi.indexDigest);
    const { dir } = await copyToLayout(src);
    expect((await new OciLayoutSource(dir, 't').resolve()).digest).toBe(v1.digest);
  });

  it('without a tag: exactly one image, else E_BAD_REFERENCE listing the tags; unknown tag → E_LOCAL_NOT_FOUND', async () => {
    await expect(new OciArchiveSource(path).resolve()).rejects.toMatchObject({ code: 'E_BAD_REFERENCE', hint: 'available: v1, multi' });
    await expect(new OciArchiveSource(path, 'v9').resolve()).rejects.toMatchObject({ code: 'E_LOCAL_NOT_FOUND', exitCode: 2 });
    const one = join(tmp.path, 'oci-one');
    const img = await makeOciLayout(one, { tag: 'only', seed: 'one' });
    const gz = write(gzipSync(await tarDir(one)), 'one.tar.gz');
    const src = new OciArchiveSource(gz);
    const d = await src.resolve();
    expect(d.digest).toBe(img.digest);
    const m = JSON.parse(Buffer.from(await src.fetchManifest(d)).toString()) as { layers: Descriptor[] };
    expect(sha256(await collect(await src.fetchBlob(m.layers[0]!)))).toBe(m.layers[0]!.digest);
    await src.close();
  });

  it('a manifest whose bytes do not match is rejected; a docker-archive is pointed at docker-archive:', async () => {
    const src = new OciArchiveSource(path, 'v1');
    const d = await src.resolve();
    await expect(src.fetchManifest({ ...d, size: d.size + 1 })).rejects.toMatchObject({ code: 'E_SIZE_MISMATCH' });
    const docker = write(await packTar(classicMembers([image('d', 1)])));
    await expect(new OciArchiveSource(docker).resolve()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', hint: `read it with docker-archive:${docker}` });
    await expect(new OciArchiveSource(docker).listTags()).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE' });
  });
});
