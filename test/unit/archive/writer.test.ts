import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerArchiveDestination, OciArchiveDestination } from '../../../src/transports/archive-destination.js';
import type { BlobReader } from '../../../src/transports/types.js';
import {
  blob, hex, image, indexOf, memReader, OCI_INDEX, OCI_MANIFEST, planFor, rawHeaders, readTar, runDestination,
} from './writer-support.js';

const REF = 'org.opencontainers.image.ref.name';
const CTRD = 'io.containerd.image.name';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-archive-writer-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Files in the output directory other than the archive itself (temp files must never linger). */
const leftovers = (except: string[] = []) => readdirSync(dir).filter((f) => !except.includes(f));

function layers(...sizes: number[]): Buffer[] {
  return sizes.map((n) => randomBytes(n));
}

async function rejectionOf(p: Promise<unknown>): Promise<{ code?: string; name?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describe('oci-archive writer', () => {
  it('writes directories, oci-layout, every blob and index.json (ref.name and io.containerd.image.name) in order, as plain ustar files', async () => {
    const img = image(layers(70_000, 1000, 0));
    const { plan, contents } = planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]);
    const target = join(dir, 'out.tar');
    await runDestination(new OciArchiveDestination(target), plan, contents);

    const entries = await readTar(target);
    const blobNames = plan.blobs.map((b) => `blobs/sha256/${hex(b.digest)}`);
    expect(entries.map((e) => e.name)).toEqual([
      'blobs/', 'blobs/sha256/', 'oci-layout', ...blobNames, `blobs/sha256/${hex(img.manifest.d.digest)}`, 'index.json',
    ]);
    for (const e of entries) {
      expect(['file', 'directory']).toContain(e.type);
      expect(e.name.startsWith('./') || e.name.startsWith('/')).toBe(false);
      expect(e.mode).toBe(e.type === 'directory' ? 0o755 : 0o644);
      expect([e.uid, e.gid, e.mtime]).toEqual([0, 0, 0]);
    }
    const raw = rawHeaders(readFileSync(target));
    expect(raw.every((h) => h.magic === 'ustar\u000000' && (h.typeflag === '0' || h.typeflag === '5'))).toBe(true);
    expect(readFileSync(target).length % 512).toBe(0);

    const byName = new Map(entries.map((e) => [e.name, e]));
    expect(JSON.parse(byName.get('oci-layout')!.data.toString())).toEqual({ imageLayoutVersion: '1.0.0' });
    for (const [digest, bytes] of contents) {
      const e = byName.get(`blobs/sha256/${hex(digest)}`)!;
      expect(e.size).toBe(bytes.length);
      expect(e.data.equals(bytes)).toBe(true);
    }
    expect(byName.get(`blobs/sha256/${hex(img.manifest.d.digest)}`)!.data.equals(img.manifest.bytes)).toBe(true);
    const index = JSON.parse(byName.get('index.json')!.data.toString());
    expect(index).toEqual({
      schemaVersion: 2, mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: img.manifest.d.digest, size: img.manifest.d.size, annotations: { [REF]: 'v1', 'io.containerd.image.name': 'localhost:5000/app:v1' } }],
    });
    expect(byName.has('manifest.json')).toBe(false);
    expect(leftovers(['out.tar'])).toEqual([]);
  });

  it('keeps a multi-platform index as the root and stores every child manifest', async () => {
    const amd = image(layers(5000), 'amd');
    const arm = image(layers(6000), 'arm');
    const idx = indexOf([amd, arm]);
    const { plan, contents } = planFor([{ img: amd, children: [amd, arm], root: idx, names: { refName: 'multi' } }]);
    const target = join(dir, 'multi.tar');
    await runDestination(new OciArchiveDestination(target), plan, contents, { concurrent: true });
    const entries = await readTar(target);
    const names = entries.map((e) => e.name);
    for (const d of [amd.manifest, arm.manifest, idx]) expect(names).toContain(`blobs/sha256/${hex(d.d.digest)}`);
    const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.data.toString());
    expect(index.manifests).toEqual([{ mediaType: OCI_INDEX, digest: idx.d.digest, size: idx.d.size, annotations: { [REF]: 'multi' } }]);
    // Children before their index, the index last among blobs.
    expect(names.indexOf(`blobs/sha256/${hex(idx.d.digest)}`)).toBe(names.indexOf('index.json') - 1);
  });

  it('an unnamed image gets a descriptor without annotations', async () => {
    const img = image(layers(100));
    const { plan, contents } = planFor([{ img, names: {} }]);
    const target = join(dir, 'x.tar');
    await runDestination(new OciArchiveDestination(target), plan, contents);
    const index = JSON.parse((await readTar(target)).find((e) => e.name === 'index.json')!.data.toString());
    expect(index.manifests).toEqual([{ mediaType: OCI_MANIFEST, digest: img.manifest.d.digest, size: img.manifest.d.size }]);
  });
});

describe('docker-archive writer', () => {
  it('writes the docker ≥25 hybrid: OCI layout with both annotations plus manifest.json and repositories; shared blobs once', async () => {
    const shared = randomBytes(30_000);
    const a = image([shared, randomBytes(2000)], 'a');
    const b = image([shared, randomBytes(3000)], 'b');
    const { plan, contents } = planFor([
      { img: a, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } },
      { img: b, names: { refName: '3.20', repoTag: 'docker.io/library/alpine:3.20' } },
    ]);
    const target = join(dir, 'two.tar');
    await runDestination(new DockerArchiveDestination(target), plan, contents, { concurrent: true, order: 'random' });

    const entries = await readTar(target);
    const names = entries.map((e) => e.name);
    expect(names.slice(0, 3)).toEqual(['blobs/', 'blobs/sha256/', 'oci-layout']);
    expect(names.slice(-3)).toEqual(['index.json', 'manifest.json', 'repositories']);
    expect(names.filter((n) => n === `blobs/sha256/${hex(a.layers[0]!.d.digest)}`)).toHaveLength(1);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toHaveLength(3 + 7 /* 3 distinct layers + 2 configs + 2 manifests */ + 3);
    for (const e of entries) expect(['file', 'directory']).toContain(e.type);

    const get = (n: string) => JSON.parse(entries.find((e) => e.name === n)!.data.toString());
    expect(get('manifest.json')).toEqual([
      { Config: `blobs/sha256/${hex(a.config.d.digest)}`, RepoTags: ['localhost:5000/app:v1'], Layers: a.layers.map((l) => `blobs/sha256/${hex(l.d.digest)}`) },
      { Config: `blobs/sha256/${hex(b.config.d.digest)}`, RepoTags: ['alpine:3.20'], Layers: b.layers.map((l) => `blobs/sha256/${hex(l.d.digest)}`) },
    ]);
    expect(get('index.json').manifests).toEqual([
      { mediaType: OCI_MANIFEST, digest: a.manifest.d.digest, size: a.manifest.d.size, annotations: { [CTRD]: 'localhost:5000/app:v1', [REF]: 'v1' } },
      { mediaType: OCI_MANIFEST, digest: b.manifest.d.digest, size: b.manifest.d.size, annotations: { [CTRD]: 'docker.io/library/alpine:3.20', [REF]: '3.20' } },
    ]);
    expect(get('repositories')).toEqual({
      'localhost:5000/app': { v1: hex(a.layers[1]!.d.digest) },
      alpine: { '3.20': hex(b.layers[1]!.d.digest) },
    });
    // Every path manifest.json names is a regular file in the archive.
    for (const item of get('manifest.json')) for (const p of [item.Config, ...item.Layers]) expect(entries.find((e) => e.name === p)?.type).toBe('file');
  });

  it('RepoTags is empty (and there is no repositories file) for an untagged or digest-only name', async () => {
    const img = image(layers(100));
    const { plan, contents } = planFor([{ img, names: { repoTag: `localhost:5000/app@${img.manifest.d.digest}` } }]);
    const target = join(dir, 'x.tar');
    await runDestination(new DockerArchiveDestination(target), plan, contents);
    const entries = await readTar(target);
    expect(JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString())[0].RepoTags).toEqual([]);
    expect(entries.some((e) => e.name === 'repositories')).toBe(false);
  });

  it('the same image under two tags is one manifest.json item with both RepoTags', async () => {
    const img = image(layers(100));
    const { plan, contents } = planFor([
      { img, names: { refName: 'a', repoTag: 'localhost:5000/app:a' } },
      { img, names: { refName: 'b', repoTag: 'localhost:5000/app:b' } },
    ]);
    const target = join(dir, 'x.tar');
    await runDestination(new DockerArchiveDestination(target), plan, contents);
    const entries = await readTar(target);
    const items = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString());
    expect(items).toHaveLength(1);
    expect(items[0].RepoTags).toEqual(['localhost:5000/app:a', 'localhost:5000/app:b']);
    expect(JSON.parse(entries.find((e) => e.name === 'index.json')!.data.toString()).manifests).toHaveLength(2);
  });

  it('refuses an index root with E_USAGE before creating anything', async () => {
    const amd = image(layers(100));
    const arm = image(layers(100));
    const idx = indexOf([amd, arm]);
    const { plan } = planFor([{ img: amd, children: [amd, arm], root: idx, names: { repoTag: 'localhost:5000/multi:1' } }]);
    const dst = new DockerArchiveDestination(join(dir, 'x.tar'));
    const e = await rejectionOf(dst.prepare(plan));
    await dst.close();
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toMatch(/one platform per image.*multi-platform index/);
    expect(leftovers()).toEqual([]);
  });

  it('refuses two different images under one name', async () => {
    const { plan } = planFor([
      { img: image(layers(10)), names: { repoTag: 'localhost:5000/app:v1' } },
      { img: image(layers(11)), names: { repoTag: 'localhost:5000/app:v1' } },
    ]);
    const dst = new DockerArchiveDestination(join(dir, 'x.tar'));
    expect((await rejectionOf(dst.prepare(plan))).code).toBe('E_USAGE');
    await dst.close();
  });
});

describe('archive writer safety', () => {
  const one = () => {
    const img = image(layers(50_000, 5_000));
    return { img, ...planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]) };
  };

  it('a digest mismatch fails the blob with E_DIGEST_MISMATCH; no file at the target, temp file gone', async () => {
    const { img, plan, contents } = one();
    const bad = Buffer.from(contents.get(img.layers[0]!.d.digest)!);
    bad[100] ^= 0xff;
    const target = join(dir, 'out.tar');
    const e = await rejectionOf(runDestination(new DockerArchiveDestination(target), plan, contents, {
      reader: (d, bytes) => memReader(d.digest === img.layers[0]!.d.digest ? bad : bytes),
    }));
    expect(e.code).toBe('E_DIGEST_MISMATCH');
    expect(existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('too many or too few bytes fail with E_SIZE_MISMATCH', async () => {
    const { img, plan, contents } = one();
    const l = img.layers[1]!;
    for (const served of [Buffer.concat([l.bytes, Buffer.from('x')]), l.bytes.subarray(1)]) {
      const e = await rejectionOf(runDestination(new OciArchiveDestination(join(dir, 'o.tar')), plan, contents, {
        reader: (d, bytes) => memReader(d.digest === l.d.digest ? served : bytes),
      }));
      expect(e.code).toBe('E_SIZE_MISMATCH');
      expect(leftovers()).toEqual([]);
    }
  });

  it('close() without commit leaves nothing at the target and removes the temp file', async () => {
    const { plan, contents } = one();
    const target = join(dir, 'out.tar');
    const dst = new OciArchiveDestination(target);
    await dst.prepare(plan);
    const temps = leftovers();
    expect(temps).toHaveLength(1);
    expect(temps[0]).toMatch(/^\.out\.tar\..*\.partial$/);
    await dst.putBlob(plan.blobs[0]!, memReader(contents.get(plan.blobs[0]!.digest)!));
    await dst.close();
    expect(existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('an existing file at the target is untouched by a failed run and replaced by a successful one', async () => {
    const { img, plan, contents } = one();
    const target = join(dir, 'out.tar');
    writeFileSync(target, 'previous archive');
    await rejectionOf(runDestination(new DockerArchiveDestination(target), plan, contents, {
      reader: (d, bytes) => memReader(d.digest === img.config.d.digest ? Buffer.from(bytes).fill(0x20, 0, 1) : bytes),
    }));
    expect(readFileSync(target, 'utf8')).toBe('previous archive');
    expect(leftovers(['out.tar'])).toEqual([]);
    await runDestination(new DockerArchiveDestination(target), plan, contents);
    expect((await readTar(target)).map((e) => e.name)).toContain('manifest.json');
    expect(leftovers(['out.tar'])).toEqual([]);
  });

  it('concurrent putBlob calls in random order produce byte-identical archives (large blobs hashed off-thread)', async () => {
    const img = image(layers(6 * 1024 * 1024 + 123, 5 * 1024 * 1024, 300_000, 1, 0, 77_777));
    const { plan, contents } = planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]);
    const seq = join(dir, 'seq.tar');
    await runDestination(new DockerArchiveDestination(seq), plan, contents);
    const expected = readFileSync(seq);
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `par${i}.tar`);
      await runDestination(new DockerArchiveDestination(out), plan, contents, { concurrent: true, order: 'random' });
      expect(readFileSync(out).equals(expected)).toBe(true);
    }
    const entries = await readTar(seq);
    for (const l of img.layers) expect(entries.find((e) => e.name === `blobs/sha256/${hex(l.d.digest)}`)!.data.equals(l.bytes)).toBe(true);
  });

  for (const size of [200_000, 9 * 1024 * 1024]) {
    it(`a stream that breaks with a retryable error resumes at the durable offset (${size} bytes, ${size >= 4 << 20 ? 'worker' : 'inline'} hash)`, async () => {
      const data = randomBytes(size);
      const img = image([data]);
      const { plan, contents } = planFor([{ img, names: { refName: 'v1' } }]);
      const opens: number[] = [];
      const failAt = Math.floor(size / 2);
      let failed = false;
      const flaky: BlobReader = {
        async open(offset) {
          opens.push(offset);
          if (failed) return Readable.from(chunkGen(data.subarray(offset)));
          failed = true;
          return Readable.from((async function* () {
            yield* chunkGen(data.subarray(offset, failAt));
            await new Promise((r) => setTimeout(r, 20)); // let the in-flight write land
            throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
          })());
        },
      };
      const target = join(dir, 'out.tar');
      const dst = new OciArchiveDestination(target);
      let progress = 0;
      try {
        await dst.prepare(plan);
        await Promise.all(plan.blobs.map((d) => dst.putBlob(d, d.digest === img.layers[0]!.d.digest ? flaky : memReader(contents.get(d.digest)!), {
          onProgress: (n) => { if (d.digest === img.layers[0]!.d.digest) progress += n; },
        })));
        for (const m of plan.manifests) await dst.putManifest(m.bytes, m.descriptor, { root: { refName: 'v1' } });
        await dst.commit();
      } finally {
        await dst.close();
      }
      expect(opens).toHaveLength(2);
      expect(opens[0]).toBe(0);
      expect(opens[1]).toBeGreaterThan(0);
      expect(opens[1]).toBeLessThanOrEqual(failAt);
      expect(progress).toBe(size); // durable bytes are reported once
      const got = (await readTar(target)).find((e) => e.name === `blobs/sha256/${hex(img.layers[0]!.d.digest)}`)!;
      expect(got.data.equals(data)).toBe(true);
    });
  }

  it('a non-retryable stream error is not retried', async () => {
    const { img, plan, contents } = one();
    const opens: number[] = [];
    const dst = new OciArchiveDestination(join(dir, 'o.tar'));
    try {
      await dst.prepare(plan);
      const e = await rejectionOf(dst.putBlob(img.layers[0]!.d, {
        async open(offset) {
          opens.push(offset);
          return Readable.from((async function* () {
            yield contents.get(img.layers[0]!.d.digest)!.subarray(0, 1000);
            throw new Error('boom');
          })());
        },
      }));
      expect(e.message).toBe('boom');
      expect(opens).toEqual([0]);
    } finally {
      await dst.close();
    }
    expect(leftovers()).toEqual([]);
  });

  it('fails with E_NO_SPACE before downloading anything when statfs reports too little space', async () => {
    const { plan } = one();
    const target = join(dir, 'out.tar');
    const dst = new DockerArchiveDestination(target, { statfs: async () => ({ bavail: 10, bsize: 4096 }) });
    const e = await rejectionOf(dst.prepare(plan));
    await dst.close();
    expect(e.code).toBe('E_NO_SPACE');
    expect(e.message).toMatch(new RegExp(`^not enough space for ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: need \\d+ bytes, 40960 available$`));
    expect((e as { hint?: string }).hint).toMatch(/free/);
    expect(leftovers()).toEqual([]);
  });

  it('the space check asks for the exact archive size', async () => {
    const { plan, contents } = one();
    let asked = '';
    const probe = async (d: string) => { asked = d; return { bavail: 1e9, bsize: 4096 }; };
    const target = join(dir, 'out.tar');
    await runDestination(new DockerArchiveDestination(target, { statfs: probe }), plan, contents);
    expect(asked).toBe(dir);
    const size = readFileSync(target).length;
    const tooSmall = new DockerArchiveDestination(join(dir, 'b.tar'), { statfs: async () => ({ bavail: size - 1, bsize: 1 }) });
    expect((await rejectionOf(tooSmall.prepare(plan))).code).toBe('E_NO_SPACE');
    await tooSmall.close();
    const exact = new DockerArchiveDestination(join(dir, 'c.tar'), { statfs: async () => ({ bavail: size, bsize: 1 }) });
    await runDestination(exact, plan, contents);
    expect(readFileSync(join(dir, 'c.tar')).equals(readFileSync(target))).toBe(true);
  });

  it('a blob the plan did not announce is E_INTERNAL; so is committing with a blob missing', async () => {
    const { plan, contents } = one();
    const dst = new OciArchiveDestination(join(dir, 'o.tar'));
    try {
      await dst.prepare(plan);
      const stray = blob(Buffer.from('stray'));
      expect((await rejectionOf(dst.putBlob(stray.d, memReader(stray.bytes)))).code).toBe('E_INTERNAL');
      expect(await dst.hasBlob(plan.blobs[0]!)).toBe(false);
      await dst.putBlob(plan.blobs[0]!, memReader(contents.get(plan.blobs[0]!.digest)!));
      expect(await dst.hasBlob(plan.blobs[0]!)).toBe(true);
      const e = await rejectionOf(dst.commit());
      expect(e.code).toBe('E_INTERNAL');
      expect(e.message).toMatch(/never written/);
    } finally {
      await dst.close();
    }
    expect(leftovers()).toEqual([]);
  });

  it('an aborted putBlob rejects with an AbortError and close() afterwards removes the temp file', async () => {
    const { img, plan } = one();
    const target = join(dir, 'out.tar');
    const dst = new DockerArchiveDestination(target);
    const ac = new AbortController();
    await dst.prepare(plan);
    const hanging: BlobReader = {
      async open() {
        return new Readable({ read() {} }); // connected, but no byte ever arrives
      },
    };
    const neverOpens: BlobReader = { open: () => new Promise(() => {}) };
    const p1 = dst.putBlob(img.layers[0]!.d, hanging, { signal: ac.signal });
    const p2 = dst.putBlob(img.layers[1]!.d, neverOpens, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    ac.abort(new Error('SIGINT'));
    const [e1, e2] = await Promise.all([rejectionOf(p1), rejectionOf(p2)]);
    expect(e1.name).toBe('AbortError');
    expect(e2.name).toBe('AbortError');
    await dst.close();
    expect(existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('close() while blobs are still streaming stops them and removes the temp file', async () => {
    const { img, plan } = one();
    const dst = new OciArchiveDestination(join(dir, 'o.tar'));
    await dst.prepare(plan);
    const slow: BlobReader = {
      async open() {
        return Readable.from((async function* () {
          for (;;) { yield Buffer.alloc(10); await new Promise((r) => setTimeout(r, 5)); }
        })());
      },
    };
    const p = rejectionOf(dst.putBlob(img.layers[0]!.d, slow));
    await new Promise((r) => setTimeout(r, 20));
    await dst.close();
    expect((await p).name).toBe('AbortError');
    expect(leftovers()).toEqual([]);
    expect((await rejectionOf(dst.putBlob(img.layers[1]!.d, slow))).code).toBe('E_INTERNAL');
  });

  it('noClobber: an existing file is refused in prepare; one created meanwhile is not replaced at commit', async () => {
    const { plan, contents } = one();
    const target = join(dir, 'out.tar');
    writeFileSync(target, 'mine');
    expect((await rejectionOf(runDestination(new DockerArchiveDestination(target, { noClobber: true }), plan, contents))).code).toBe('E_USAGE');
    rmSync(target);
    const dst = new DockerArchiveDestination(target, { noClobber: true });
    await dst.prepare(plan);
    for (const d of plan.blobs) await dst.putBlob(d, memReader(contents.get(d.digest)!));
    for (const m of plan.manifests) await dst.putManifest(m.bytes, m.descriptor, {});
    writeFileSync(target, 'appeared meanwhile');
    const e = await rejectionOf(dst.commit());
    await dst.close();
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain('already exists');
    expect(readFileSync(target, 'utf8')).toBe('appeared meanwhile');
    expect(leftovers(['out.tar'])).toEqual([]);
    await runDestination(new DockerArchiveDestination(join(dir, 'new.tar'), { noClobber: true }), plan, contents);
    expect((await readTar(join(dir, 'new.tar'))).map((x) => x.name)).toContain('manifest.json');
  });

  it('refuses a directory as target', async () => {
    const { plan } = one();
    const dst = new OciArchiveDestination(dir);
    expect((await rejectionOf(dst.prepare(plan))).code).toBe('E_USAGE');
    await dst.close();
  });

  it('a missing parent directory is E_NO_SUCH_FILE (exit 8) naming it', async () => {
    const { plan } = one();
    const dst = new OciArchiveDestination(join(dir, 'nope', 'o.tar'));
    const e = await rejectionOf(dst.prepare(plan));
    expect(e).toMatchObject({ code: 'E_NO_SUCH_FILE', exitCode: 8 });
    expect(e.message).toContain(join(dir, 'nope'));
    await dst.close();
  });
});

function* chunkGen(buf: Buffer): Generator<Buffer> {
  for (let i = 0; i < buf.length; i += 65536) yield buf.subarray(i, Math.min(buf.length, i + 65536));
}
