import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { copyImage } from '../../../src/copy/engine.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { parseReference } from '../../../src/ref/index.js';
import { RegistryDestination } from '../../../src/transports/registry-destination.js';
import { RegistrySource } from '../../../src/transports/registry.js';
import { deterministicBytes, seedImage, type MemRegistry } from '../../helpers/mem-registry.js';
import { client, imageManifest, OCI_MANIFEST, setup, sha256, uploadRequests } from './support.js';

const PLATFORMS = [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }];

function source(reg: MemRegistry, repo: (name: string) => ReturnType<ReturnType<typeof client>['repo']>, name: string, tag: string): RegistrySource {
  return new RegistrySource(repo(name), parseReference(`${reg.host}/${name}:${tag}`));
}

function destination(reg: MemRegistry, repo: (name: string) => ReturnType<ReturnType<typeof client>['repo']>, name: string, tag: string, opts: Partial<ConstructorParameters<typeof RegistryDestination>[1]> = {}) {
  return new RegistryDestination(repo(name), { ref: parseReference(`${reg.host}/${name}:${tag}`), ...opts });
}

/** Blob bytes moved into `repo` by PUT/PATCH requests. */
function bytesUploaded(reg: MemRegistry): number {
  return [...uploadRequests(reg, 'PUT'), ...uploadRequests(reg, 'PATCH')].reduce((a, r) => a + r.bytesIn, 0);
}

/** A BlobReader over bytes held by the test registry (reads them in-process, no HTTP). */
function storeReader(reg: MemRegistry, repo: string, d: Descriptor) {
  return { open: async (offset: number) => Readable.from([reg.getBlob(repo, d.digest)!.subarray(offset)], { objectMode: false }) };
}

describe('RegistryDestination', () => {
  it('copies a multi-platform index between registries: blobs, children by digest, root under its tag, verbatim', async () => {
    const a = await setup();
    const b = await setup();
    const seeded = seedImage(a.reg, 'src/app', 'v1', { platforms: PLATFORMS, layers: 2, layerSize: 5000 });
    const dst = destination(b.reg, b.repo, 'dst/app', 'v2');
    expect(dst.capabilities.concurrentWrites).toBe(true);
    const r = await copyImage(source(a.reg, a.repo, 'src/app', 'v1'), dst, { platforms: 'all', jobs: 4 });
    expect(r.root.digest).toBe(seeded.digest);
    expect(b.reg.getManifest('dst/app', 'v2')?.bytes.equals(a.reg.getManifest('src/app', 'v1')!.bytes)).toBe(true);
    for (const m of seeded.manifestDigests) expect(b.reg.getManifest('dst/app', m)).toBeDefined();
    for (const d of seeded.blobs) expect(b.reg.getBlob('dst/app', d)?.equals(a.reg.getBlob('src/app', d)!)).toBe(true);
    // Children went by digest, and only the root by tag, after every blob.
    const manifestPuts = b.reg.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/'));
    expect(manifestPuts.map((q) => q.path.split('/manifests/')[1])).toEqual([...seeded.manifestDigests, 'v2']);
    const lastBlob = b.reg.requests.findLastIndex((q) => q.path.includes('/blobs/'));
    expect(b.reg.requests.findIndex((q) => q.path.includes('/manifests/'))).toBeGreaterThan(lastBlob);

    // Again: every blob is found by HEAD and skipped.
    const again = await copyImage(source(a.reg, a.repo, 'src/app', 'v1'), destination(b.reg, b.repo, 'dst/app', 'v2'), { platforms: 'all', jobs: 4 });
    expect(again.blobs.skipped).toBe(seeded.blobs.length);
  });

  it('mounts from a same-registry repository: no blob bytes move', async () => {
    const { reg, repo } = await setup();
    const seeded = seedImage(reg, 'src/app', 'v1', { layers: 3, layerSize: 4000 });
    const dst = destination(reg, repo, 'dst/app', 'v1', {
      mountFrom: [{ registry: 'elsewhere.example', repository: 'src/app' }, { registry: reg.host, repository: 'src/app' }],
    });
    const before = reg.requests.length;
    await copyImage(source(reg, repo, 'src/app', 'v1'), dst, { platforms: 'all', jobs: 2 });
    const mine = reg.requests.slice(before);
    expect(mine.filter((q) => q.method === 'POST' && /(^|&)mount=/.test(q.query) && q.status === 201)).toHaveLength(seeded.blobs.length);
    expect(mine.filter((q) => q.method === 'GET' && q.path.includes('/blobs/'))).toHaveLength(0);
    expect(bytesUploaded(reg)).toBe(0);
    expect(reg.getManifest('dst/app', 'v1')?.digest).toBe(seeded.digest);
    for (const d of seeded.blobs) expect(reg.getBlob('dst/app', d)).toBeDefined();
  });

  it('mount refused (user may not pull the source repo): uploads into the session the mount opened', async () => {
    const { reg, repo } = await setup({ auth: 'token', users: { carol: { password: 'pw', push: ['dst/*'] } } }, ['carol', 'pw']);
    const data = deterministicBytes('layer', 6000);
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: reg.putBlob('secret/app', data) as Descriptor['digest'], size: data.length };
    const dst = destination(reg, repo, 'dst/app', 'v1', { mountFrom: [{ registry: reg.host, repository: 'secret/app' }] });
    expect(await dst.hasBlob(d)).toBe(false);
    let progress = 0;
    await dst.putBlob(d, storeReader(reg, 'secret/app', d), { onProgress: (n) => (progress += n) });
    await dst.close();
    expect(reg.getBlob('dst/app', d.digest)?.equals(data)).toBe(true);
    expect(progress).toBe(data.length);
    const posts = reg.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/blobs/uploads/'));
    expect(posts.filter((q) => q.status === 202)).toHaveLength(1); // the mount's session, reused
    expect(bytesUploaded(reg)).toBe(data.length);
  });

  it('several tags (names.tags + extraTags), bytes verbatim; without tags the root goes by digest only', async () => {
    const { reg, repo } = await setup();
    const config = Buffer.from('{"os":"linux"}');
    const layer = deterministicBytes('l', 100);
    const manifest = imageManifest(config, [layer]);
    const d: Descriptor = { mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length };
    for (const b of [config, layer]) {
      const bd: Descriptor = { mediaType: 'application/octet-stream', digest: sha256(b), size: b.length };
      const dst = destination(reg, repo, 'app', 'x');
      await dst.putBlob(bd, { open: async (o) => Readable.from([b.subarray(o)], { objectMode: false }) });
    }
    const dst = destination(reg, repo, 'app', 'v1', { extraTags: ['latest', 'v1'] });
    await dst.putManifest(manifest, d, { root: { tags: ['v1', 'v1.0'] } });
    await dst.commit();
    for (const t of ['v1', 'v1.0', 'latest']) expect(reg.getManifest('app', t)?.bytes.equals(manifest)).toBe(true);
    const puts = reg.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/')).map((q) => q.path.split('/manifests/')[1]);
    expect(puts).toEqual(['v1', 'v1.0', 'latest']);

    const byDigest = destination(reg, repo, 'other', 'v9');
    for (const b of [config, layer]) reg.putBlob('other', b);
    await byDigest.putManifest(manifest, d, { root: { tags: [] } });
    expect(reg.getManifest('other', d.digest)).toBeDefined();
    expect(reg.getManifest('other', 'v9')).toBeUndefined();

    // The reference's own tag when the engine names none.
    await destination(reg, repo, 'other', 'v9').putManifest(manifest, d, { root: {} });
    expect(reg.getManifest('other', 'v9')?.digest).toBe(d.digest);

    // A destination reference with a digest must name the root.
    const pinned = new RegistryDestination(repo('other'), { ref: parseReference(`${reg.host}/other@sha256:${'b'.repeat(64)}`) });
    await expect(pinned.putManifest(manifest, d, { root: {} })).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    // Bytes that do not match their descriptor are never sent.
    await expect(dst.putManifest(Buffer.concat([manifest, Buffer.from(' ')]), d, {})).rejects.toMatchObject({ code: 'E_SIZE_MISMATCH' });
  });

  it('read-only user: the push fails with E_DENIED naming the repository, and no tag exists', async () => {
    const { reg } = await setup({ auth: 'token', users: { alice: { password: 'pw', push: ['*'] }, bob: { password: 'pw', pull: ['*'] } } });
    const admin = client(reg, ['alice', 'pw']);
    seedImage(reg, 'src/app', 'v1');
    const bob = client(reg, ['bob', 'pw']);
    const dst = destination(reg, bob.repo, 'dst/app', 'v1', { mountFrom: [{ registry: reg.host, repository: 'src/app' }] });
    const err = await copyImage(source(reg, admin.repo, 'src/app', 'v1'), dst, { platforms: 'all', jobs: 2 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: expect.stringMatching(/^E_(DENIED|UNAUTHORIZED)$/) });
    expect((err as Error).message).toContain(`${reg.host}/dst/app`);
    expect(reg.getManifest('dst/app', 'v1')).toBeUndefined();
  });

  it('an interrupted upload leaves no session open (DELETE on abort; close() is the safety net)', async () => {
    const { reg, repo } = await setup();
    const d: Descriptor = { mediaType: 'application/octet-stream', digest: sha256(Buffer.alloc(100_000)), size: 100_000 };
    const ac = new AbortController();
    const stalled = { open: async () => new Readable({ read() { this.push(Buffer.alloc(1000)); ac.abort(new Error('stop')); } }) };
    const dst = destination(reg, repo, 'app', 'v1');
    await expect(dst.putBlob(d, stalled, { signal: ac.signal })).rejects.toBeDefined();
    await dst.close();
    const deletes = uploadRequests(reg, 'DELETE');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.status).toBe(204);
    expect(reg.getBlob('app', d.digest)).toBeUndefined();
  });
});
