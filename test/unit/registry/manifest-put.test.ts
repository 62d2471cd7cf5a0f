import { describe, expect, it } from 'vitest';
import { deleteManifest, putManifest } from '../../../src/registry/manifest-put.js';
import { deterministicBytes } from '../../helpers/mem-registry.js';
import { OCI_INDEX, OCI_MANIFEST, client, imageManifest, recordingRepo, setup, sha256 } from './support.js';

const H64 = 'a'.repeat(64);

async function withImage(opts: Parameters<typeof setup>[0] = {}, user?: [string, string]) {
  const env = await setup(opts, user);
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = deterministicBytes('layer', 3000);
  env.reg.putBlob('app', config);
  env.reg.putBlob('app', layer);
  return { ...env, manifest: imageManifest(config, [layer]) };
}

describe('putManifest', () => {
  it('stores the bytes verbatim under a tag and returns their digest', async () => {
    const { reg, repo, manifest } = await withImage();
    expect(Buffer.from(manifest).includes('\n   ')).toBe(true); // indented: re-serialising would change it
    const digest = await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1');
    expect(digest).toBe(sha256(manifest));
    const stored = reg.getManifest('app', 'v1');
    expect(stored?.bytes.equals(manifest)).toBe(true);
    expect(stored?.digest).toBe(sha256(manifest));
    expect(stored?.mediaType).toBe(OCI_MANIFEST);
  });

  it('by digest, then an index over it by tag; Content-Type without parameters', async () => {
    const { reg, manifest } = await withImage();
    const { repo, sent } = recordingRepo(reg, 'app');
    await putManifest(repo, manifest, `${OCI_MANIFEST}; charset=utf-8`, sha256(manifest));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(manifest), size: manifest.length }] }));
    await putManifest(repo, index, OCI_INDEX, 'multi');
    expect(reg.getManifest('app', 'multi')?.bytes.equals(index)).toBe(true);
    expect(sent[0]!.headers).toMatchObject({ 'content-type': OCI_MANIFEST, 'content-length': String(manifest.length) });
    expect(sent[0]!.body).toBeInstanceOf(Uint8Array);
  });

  it('MANIFEST_BLOB_UNKNOWN → E_REGISTRY with the registry message', async () => {
    const { reg, repo } = await setup();
    const manifest = imageManifest(Buffer.from('{}'), [Buffer.from('missing')]);
    const err = await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_REGISTRY', status: 400, registryCodes: ['MANIFEST_BLOB_UNKNOWN'] });
    expect((err as Error).message).toContain(`${reg.host}/app`);
    expect((err as Error).message).toContain('blob unknown to registry');
    const other = await putManifest(repo('app'), Buffer.from('{"schemaVersion":2,"mediaType":"x"}'), OCI_MANIFEST, 'v1').catch((e: unknown) => e);
    expect(other).toMatchObject({ code: 'E_REGISTRY', registryCodes: ['MANIFEST_INVALID'] });
  });

  it('Docker-Content-Digest: absent is fine, a different digest fails, an ill-formed one warns', async () => {
    const { reg, repo, manifest } = await withImage();
    const r = repo('app');
    const answer = (headers: Record<string, string>) =>
      reg.faults.push({ match: { method: 'PUT', path: /manifests/ }, times: 1, action: { kind: 'status', status: 201, headers, body: '' } });
    answer({});
    expect(await putManifest(r, manifest, OCI_MANIFEST, 'v1')).toBe(sha256(manifest));
    answer({ 'Docker-Content-Digest': `sha256:${H64}` });
    await expect(putManifest(r, manifest, OCI_MANIFEST, 'v1')).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    const warnings: string[] = [];
    answer({ 'Docker-Content-Digest': 'garbage' });
    await putManifest(r, manifest, OCI_MANIFEST, 'v1', { warn: (m) => warnings.push(m) });
    answer({ 'Docker-Content-Digest': sha256(manifest).slice(7) }); // Huawei: bare hex of the right digest
    await putManifest(r, manifest, OCI_MANIFEST, 'v1', { warn: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('garbage');
  });

  it('read-only user: E_DENIED naming the repository, and no tag is created', async () => {
    for (const auth of ['basic', 'token'] as const) {
      const { reg, repo, manifest } = await withImage({ auth, users: { bob: { password: 'pw', pull: ['*'] } } }, ['bob', 'pw']);
      const err = await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_DENIED' });
      expect((err as Error).message).toContain(`${reg.host}/app`);
      expect(reg.getManifest('app', 'v1')).toBeUndefined();
    }
  });

  it('anonymous push to a registry needing auth: E_UNAUTHORIZED naming the repository', async () => {
    const { reg, repo, manifest } = await withImage({ auth: 'token', users: { alice: { password: 'pw', push: ['*'] } } });
    const err = await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNAUTHORIZED' });
    expect((err as Error).message).toContain(`${reg.host}/app`);
  });
});

describe('deleteManifest', () => {
  it('DELETE by digest (token scope `delete`): the manifest and its tags are gone', async () => {
    const { reg, repo, manifest } = await withImage({ auth: 'token', users: { alice: { password: 'pw', push: ['*'] } } }, ['alice', 'pw']);
    await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1');
    await deleteManifest(repo('app'), sha256(manifest));
    expect(reg.getManifest('app', 'v1')).toBeUndefined();
    expect(reg.getManifest('app', sha256(manifest))).toBeUndefined();
    const tokens = reg.requests.filter((q) => q.path === '/token').map((q) => decodeURIComponent(q.query));
    expect(tokens.some((q) => q.includes('scope=repository:app:delete'))).toBe(true);
    await expect(deleteManifest(repo('app'), sha256(manifest))).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(deleteManifest(repo('app'), 'v1')).rejects.toMatchObject({ code: 'E_BAD_REFERENCE' });
  });

  it('deletion disabled (405 UNSUPPORTED) → E_UNSUPPORTED carrying the registry message', async () => {
    const { reg, repo, manifest } = await withImage({ deleteDisabled: true });
    await putManifest(repo('app'), manifest, OCI_MANIFEST, 'v1');
    const err = await deleteManifest(repo('app'), sha256(manifest)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_UNSUPPORTED', status: 405 });
    expect((err as Error).message).toContain('deletion is disabled');
    expect(reg.getManifest('app', 'v1')).toBeDefined();
  });

  it('a user who may only pull cannot delete: E_DENIED', async () => {
    const { reg, manifest } = await withImage({ auth: 'basic', users: { alice: { password: 'pw', push: ['*'] }, bob: { password: 'pw', pull: ['*'] } } }, ['alice', 'pw']);
    await putManifest(client(reg, ['alice', 'pw']).repo('app'), manifest, OCI_MANIFEST, 'v1');
    await expect(deleteManifest(client(reg, ['bob', 'pw']).repo('app'), sha256(manifest))).rejects.toMatchObject({ code: 'E_DENIED' });
    expect(reg.getManifest('app', 'v1')).toBeDefined();
  });
});
