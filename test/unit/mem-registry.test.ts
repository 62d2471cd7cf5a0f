import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { deterministicBytes, seedImage, startMemRegistry, type MemRegistry, type MemRegistryOptions } from '../helpers/mem-registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCTET = 'application/octet-stream';

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const bytes = (s: string) => new Uint8Array(Buffer.from(s));

const running: MemRegistry[] = [];
async function start(opts?: MemRegistryOptions): Promise<MemRegistry> {
  const reg = await startMemRegistry(opts);
  running.push(reg);
  return reg;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

const at = (reg: MemRegistry, pathOrLocation: string) => new URL(pathOrLocation, reg.url).toString();
async function errCode(res: Response): Promise<string> {
  const j = (await res.json()) as { errors: Array<{ code: string }> };
  return j.errors[0]!.code;
}

/** Single-POST monolithic upload. */
async function pushBlob(reg: MemRegistry, repo: string, data: Uint8Array, headers: Record<string, string> = {}) {
  const d = sha256(data);
  const res = await fetch(at(reg, `/v2/${repo}/blobs/uploads/?digest=${d}`), {
    method: 'POST', body: data, headers: { 'Content-Type': OCTET, ...headers },
  });
  return { res, digest: d };
}

function manifestFor(config: Uint8Array, layers: Uint8Array[]): Uint8Array {
  return bytes(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
  }));
}

function parseChallenge(h: string | null): Record<string, string> & { scheme: string } {
  expect(h).toBeTruthy();
  const [scheme, rest] = [h!.slice(0, h!.indexOf(' ')), h!.slice(h!.indexOf(' ') + 1)];
  const out: Record<string, string> & { scheme: string } = { scheme };
  for (const m of rest.matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

async function tokenFor(reg: MemRegistry, scopes: string[], creds?: [string, string]): Promise<string> {
  const q = new URLSearchParams({ service: 'mem-registry' });
  scopes.forEach((s) => q.append('scope', s));
  const res = await fetch(`${reg.tokenRealm}?${q}`, { headers: creds ? { Authorization: basic(...creds) } : {} });
  expect(res.status).toBe(200);
  const j = (await res.json()) as { token: string; access_token: string; expires_in: number };
  expect(j.token).toBe(j.access_token);
  expect(j.expires_in).toBe(300);
  return j.access_token;
}

describe('ping and challenges', () => {
  it('open: GET /v2/ → 200 with API version header', async () => {
    const reg = await start();
    expect(reg.url).toBe(`http://${reg.host}`);
    expect(reg.tokenRealm).toBeUndefined();
    const res = await fetch(at(reg, '/v2/'));
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('basic: challenge, credentials, denied, anonymous pull globs', async () => {
    const reg = await start({
      auth: 'basic',
      users: { alice: { password: 'pw', pull: ['public/*'], push: ['alice/*'] } },
      anonymousPull: ['open/*'],
    });
    seedImage(reg, 'private/x', 'v1');
    seedImage(reg, 'open/x', 'v1');
    const anon = await fetch(at(reg, '/v2/'));
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="mem-registry"');
    expect(await errCode(anon)).toBe('UNAUTHORIZED');
    expect((await fetch(at(reg, '/v2/'), { headers: { Authorization: basic('alice', 'nope') } })).status).toBe(401);
    expect((await fetch(at(reg, '/v2/'), { headers: { Authorization: basic('alice', 'pw') } })).status).toBe(200);
    const denied = await fetch(at(reg, '/v2/private/x/manifests/v1'), { headers: { Authorization: basic('alice', 'pw') } });
    expect(denied.status).toBe(403);
    expect(await errCode(denied)).toBe('DENIED');
    expect((await fetch(at(reg, '/v2/open/x/manifests/v1'))).status).toBe(200);
    expect((await fetch(at(reg, '/v2/private/x/manifests/v1'))).status).toBe(401);
    // push implies pull
    const pushRes = await pushBlob(reg, 'alice/app', bytes('hi'), { Authorization: basic('alice', 'pw') });
    expect(pushRes.res.status).toBe(201);
    const rec = reg.requests.at(-1)!;
    expect(rec).toMatchObject({ method: 'POST', path: '/v2/alice/app/blobs/uploads/', hasAuth: true, authScheme: 'Basic', status: 201, bytesIn: 2 });
    expect(JSON.stringify(reg.requests)).not.toContain(Buffer.from('alice:pw').toString('base64'));
  });

  it('token: ping challenge without scope, repo challenge with pull / pull,push / delete scope', async () => {
    const reg = await start({ auth: 'token' });
    expect(reg.tokenRealm).toBe(`${reg.url}/token`);
    const ping = parseChallenge((await fetch(at(reg, '/v2/'))).headers.get('www-authenticate'));
    expect(ping).toEqual({ scheme: 'Bearer', realm: `${reg.url}/token`, service: 'mem-registry' });
    const pull = parseChallenge((await fetch(at(reg, '/v2/a/b/c/manifests/latest'))).headers.get('www-authenticate'));
    expect(pull.scope).toBe('repository:a/b/c:pull');
    const push = await fetch(at(reg, '/v2/a/b/c/blobs/uploads/'), { method: 'POST' });
    expect(push.status).toBe(401);
    expect(parseChallenge(push.headers.get('www-authenticate')).scope).toBe('repository:a/b/c:pull,push');
    const del = await fetch(at(reg, '/v2/a/manifests/latest'), { method: 'DELETE' });
    expect(parseChallenge(del.headers.get('www-authenticate')).scope).toBe('repository:a:delete');
  });
});

describe('token flow', () => {
  const users = { bob: { password: 'secret', pull: ['team/*'] }, carol: { password: 'pw2', push: ['team/*'] } };

  it('GET token with Basic, insufficient_scope, invalid_token, expiry', async () => {
    const reg = await start({ auth: 'token', users, anonymousPull: ['library/*'] });
    const { digest } = seedImage(reg, 'team/app', 'v1');
    seedImage(reg, 'library/alpine', 'latest');

    const bad = await fetch(`${reg.tokenRealm}?service=mem-registry&scope=repository:team/app:pull`, { headers: { Authorization: basic('bob', 'x') } });
    expect(bad.status).toBe(401);

    const t = await tokenFor(reg, ['repository:team/app:pull,push'], ['bob', 'secret']); // push not granted
    const auth = { Authorization: `Bearer ${t}` };
    expect((await fetch(at(reg, '/v2/'), { headers: auth })).status).toBe(200);
    const got = await fetch(at(reg, '/v2/team/app/manifests/v1'), { headers: auth });
    expect(got.status).toBe(200);
    expect(got.headers.get('docker-content-digest')).toBe(digest);

    const push = await fetch(at(reg, '/v2/team/app/blobs/uploads/'), { method: 'POST', headers: auth });
    expect(push.status).toBe(401);
    const ch = parseChallenge(push.headers.get('www-authenticate'));
    expect(ch).toMatchObject({ error: 'insufficient_scope', scope: 'repository:team/app:pull,push', service: 'mem-registry' });

    const unknown = await fetch(at(reg, '/v2/team/app/manifests/v1'), { headers: { Authorization: 'Bearer nope' } });
    expect(unknown.status).toBe(401);
    expect(parseChallenge(unknown.headers.get('www-authenticate')).error).toBe('invalid_token');

    // anonymous token: only anonymousPull repos
    const anon = await tokenFor(reg, ['repository:library/alpine:pull', 'repository:team/app:pull']);
    expect((await fetch(at(reg, '/v2/library/alpine/manifests/latest'), { headers: { Authorization: `Bearer ${anon}` } })).status).toBe(200);
    const no = await fetch(at(reg, '/v2/team/app/manifests/v1'), { headers: { Authorization: `Bearer ${anon}` } });
    expect(parseChallenge(no.headers.get('www-authenticate')).error).toBe('insufficient_scope');

    reg.expireTokens();
    const expired = await fetch(at(reg, '/v2/team/app/manifests/v1'), { headers: auth });
    expect(parseChallenge(expired.headers.get('www-authenticate')).error).toBe('invalid_token');

    const tokenReqs = reg.requests.filter((r) => r.path === '/token');
    expect(tokenReqs.every((r) => !r.query.includes('secret'))).toBe(true);
    expect(reg.requests.some((r) => r.authScheme === 'Bearer')).toBe(true);
  });

  it('OAuth2 POST: password grant with offline refresh token, refresh grant, scope intersection', async () => {
    const reg = await start({ auth: 'token', users });
    const form = (f: Record<string, string>) =>
      fetch(reg.tokenRealm!, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(f).toString() });
    const r1 = await form({
      grant_type: 'password', username: 'bob', password: 'secret', service: 'mem-registry', client_id: 'ferry',
      access_type: 'offline', scope: 'repository:team/app:pull,push repository:other/x:pull',
    });
    expect(r1.status).toBe(200);
    expect(r1.headers.get('set-cookie')).toBeNull();
    const j1 = (await r1.json()) as { access_token: string; refresh_token: string; scope: string; expires_in: number };
    expect(j1.scope).toBe('repository:team/app:pull');
    expect(j1.refresh_token).toBeTruthy();
    expect(j1.expires_in).toBe(300);

    const r2 = await form({ grant_type: 'refresh_token', refresh_token: j1.refresh_token, service: 'mem-registry', client_id: 'ferry', scope: 'repository:team/app:pull' });
    const j2 = (await r2.json()) as { access_token: string };
    expect(r2.status).toBe(200);
    expect(j2.access_token).not.toBe(j1.access_token);

    const noOffline = await form({ grant_type: 'password', username: 'carol', password: 'pw2', service: 'mem-registry', client_id: 'ferry', scope: 'repository:team/app:pull,push' });
    const j3 = (await noOffline.json()) as { scope: string; refresh_token?: string };
    expect(j3.scope).toBe('repository:team/app:pull,push');
    expect(j3.refresh_token).toBeUndefined();

    expect((await form({ grant_type: 'password', username: 'bob', password: 'bad', service: 'mem-registry', client_id: 'ferry' })).status).toBe(400);
    expect((await form({ grant_type: 'refresh_token', refresh_token: 'bogus', service: 'mem-registry', client_id: 'ferry' })).status).toBe(400);
    expect((await form({ grant_type: 'password', username: 'bob', password: 'secret', service: 'mem-registry' })).status).toBe(400);

    // GET with offline_token=true also yields a refresh token
    const g = await fetch(`${reg.tokenRealm}?service=mem-registry&offline_token=true&client_id=ferry`, { headers: { Authorization: basic('bob', 'secret') } });
    expect(((await g.json()) as { refresh_token?: string }).refresh_token).toBeTruthy();
  });

  it('mount in token mode: 202 when the token lacks pull on `from`, 201 when it has it', async () => {
    const reg = await start({ auth: 'token', users: { carol: { password: 'pw2', push: ['team/*'], pull: ['src/*'] } } });
    const blob = reg.putBlob('src/base', bytes('shared layer'));
    const narrow = await tokenFor(reg, ['repository:team/app:pull,push'], ['carol', 'pw2']);
    const r1 = await fetch(at(reg, `/v2/team/app/blobs/uploads/?mount=${blob}&from=src/base`), { method: 'POST', headers: { Authorization: `Bearer ${narrow}` } });
    expect(r1.status).toBe(202);
    const wide = await tokenFor(reg, ['repository:team/app:pull,push', 'repository:src/base:pull'], ['carol', 'pw2']);
    const r2 = await fetch(at(reg, `/v2/team/app/blobs/uploads/?mount=${blob}&from=src/base`), { method: 'POST', headers: { Authorization: `Bearer ${wide}` } });
    expect(r2.status).toBe(201);
    expect(r2.headers.get('docker-content-digest')).toBe(blob);
    expect(reg.getBlob('team/app', blob)?.toString()).toBe('shared layer');
  });
});

describe('push and pull round trip', () => {
  it('monolithic uploads, manifest PUT, GET/HEAD with digest checks, tag list', async () => {
    const reg = await start();
    const layer = deterministicBytes('layer', 5000);
    const config = bytes('{"architecture":"amd64","os":"linux"}');
    const { res: r1, digest: ld } = await pushBlob(reg, 'org/app', layer);
    expect(r1.status).toBe(201);
    expect(r1.headers.get('location')).toBe(`/v2/org/app/blobs/${ld}`);
    expect(r1.headers.get('docker-content-digest')).toBe(ld);

    // POST then PUT
    const post = await fetch(at(reg, '/v2/org/app/blobs/uploads/'), { method: 'POST' });
    expect(post.status).toBe(202);
    expect(post.headers.get('range')).toBe('0-0');
    expect(post.headers.get('docker-upload-uuid')).toBeTruthy();
    const loc = post.headers.get('location')!;
    expect(loc).toMatch(/\?_state=/);
    const cd = sha256(config);
    const put = await fetch(`${at(reg, loc)}&digest=${cd}`, { method: 'PUT', body: config, headers: { 'Content-Type': OCTET } });
    expect(put.status).toBe(201);

    // digest mismatch on single POST
    const wrong = await fetch(at(reg, `/v2/org/app/blobs/uploads/?digest=${sha256(bytes('x'))}`), { method: 'POST', body: bytes('y') });
    expect(wrong.status).toBe(400);
    expect(await errCode(wrong)).toBe('DIGEST_INVALID');

    // manifest referencing a missing blob
    const missing = manifestFor(config, [layer, bytes('never pushed')]);
    const bad = await fetch(at(reg, '/v2/org/app/manifests/v1'), { method: 'PUT', body: missing, headers: { 'Content-Type': OCI_MANIFEST } });
    expect(bad.status).toBe(400);
    expect(await errCode(bad)).toBe('MANIFEST_BLOB_UNKNOWN');

    const manifest = manifestFor(config, [layer]);
    const md = sha256(manifest);
    const mismatch = await fetch(at(reg, '/v2/org/app/manifests/v1'), { method: 'PUT', body: manifest, headers: { 'Content-Type': 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(await errCode(mismatch)).toBe('MANIFEST_INVALID');
    const byWrongDigest = await fetch(at(reg, `/v2/org/app/manifests/${sha256(bytes('z'))}`), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
    expect(await errCode(byWrongDigest)).toBe('DIGEST_INVALID');
    const mput = await fetch(at(reg, '/v2/org/app/manifests/v1'), { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } });
    expect(mput.status).toBe(201);
    expect(mput.headers.get('docker-content-digest')).toBe(md);
    expect(mput.headers.get('location')).toBe(`/v2/org/app/manifests/${md}`);

    for (const ref of ['v1', md]) {
      const g = await fetch(at(reg, `/v2/org/app/manifests/${ref}`), { headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
      expect(g.status).toBe(200);
      expect(g.headers.get('content-type')).toBe(OCI_MANIFEST);
      const body = new Uint8Array(await g.arrayBuffer());
      expect(sha256(body)).toBe(md);
      expect(Buffer.from(body).equals(Buffer.from(manifest))).toBe(true);
    }
    const head = await fetch(at(reg, '/v2/org/app/manifests/v1'), { method: 'HEAD' });
    expect(head.headers.get('docker-content-digest')).toBe(md);
    expect(head.headers.get('content-length')).toBe(String(manifest.length));

    const blob = await fetch(at(reg, `/v2/org/app/blobs/${ld}`));
    expect(sha256(new Uint8Array(await blob.arrayBuffer()))).toBe(ld);
    const bhead = await fetch(at(reg, `/v2/org/app/blobs/${ld}`), { method: 'HEAD' });
    expect(bhead.headers.get('content-length')).toBe('5000');
    const nope = await fetch(at(reg, `/v2/org/app/blobs/${sha256(bytes('?'))}`));
    expect(nope.status).toBe(404);
    expect(await errCode(nope)).toBe('BLOB_UNKNOWN');
    expect(await errCode(await fetch(at(reg, '/v2/org/app/manifests/v2')))).toBe('MANIFEST_UNKNOWN');
    expect(await errCode(await fetch(at(reg, '/v2/org/none/manifests/v1')))).toBe('NAME_UNKNOWN');
    expect(await errCode(await fetch(at(reg, '/v2/Org/App/manifests/v1')))).toBe('NAME_INVALID');

    const tags = await fetch(at(reg, '/v2/org/app/tags/list'));
    expect(await tags.json()).toEqual({ name: 'org/app', tags: ['v1'] });

    // Accept that excludes the stored type → 404 (distribution behaviour)
    const notAccepted = await fetch(at(reg, '/v2/org/app/manifests/v1'), { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(notAccepted.status).toBe(404);

    // delete by tag, then by digest
    expect((await fetch(at(reg, '/v2/org/app/manifests/v1'), { method: 'DELETE' })).status).toBe(202);
    expect(reg.getManifest('org/app', 'v1')).toBeUndefined();
    expect(reg.getManifest('org/app', md)?.digest).toBe(md);
    expect((await fetch(at(reg, `/v2/org/app/manifests/${md}`), { method: 'DELETE' })).status).toBe(202);
    expect((await fetch(at(reg, `/v2/org/app/blobs/${ld}`), { method: 'DELETE' })).status).toBe(202);
  });

  it('index PUT requires child manifests; seedImage with platforms and docker types', async () => {
    const reg = await start();
    const s = seedImage(reg, 'multi', 'latest', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 1, layerSize: 64 });
    expect(s.manifestDigests).toHaveLength(2);
    expect(s.blobs).toHaveLength(4);
    const idx = reg.getManifest('multi', 'latest')!;
    expect(idx.mediaType).toBe(OCI_INDEX);
    expect(idx.digest).toBe(s.digest);
    const parsed = JSON.parse(idx.bytes.toString()) as { manifests: Array<{ digest: string; platform: { variant?: string } }> };
    expect(parsed.manifests.map((m) => m.digest)).toEqual(s.manifestDigests);
    expect(parsed.manifests[1]!.platform.variant).toBe('v8');
    // deterministic
    const reg2 = await start();
    expect(seedImage(reg2, 'multi', 'latest', { platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }], layers: 1, layerSize: 64 }).digest).toBe(s.digest);

    // push the same index into another repo over HTTP: fails until the children exist
    const put = () => fetch(at(reg, '/v2/copy/manifests/latest'), { method: 'PUT', body: new Uint8Array(idx.bytes), headers: { 'Content-Type': OCI_INDEX } });
    const r1 = await put();
    expect(r1.status).toBe(400);
    expect(await errCode(r1)).toBe('MANIFEST_BLOB_UNKNOWN');
    for (const d of s.manifestDigests) {
      const child = reg.getManifest('multi', d)!;
      for (const b of s.blobs) {
        const data = reg.getBlob('multi', b);
        if (data) reg.putBlob('copy', data);
      }
      expect((await fetch(at(reg, `/v2/copy/manifests/${d}`), { method: 'PUT', body: new Uint8Array(child.bytes), headers: { 'Content-Type': child.mediaType } })).status).toBe(201);
    }
    expect((await put()).status).toBe(201);

    const d = seedImage(reg, 'dock', 'v1', { docker: true });
    expect(reg.getManifest('dock', 'v1')!.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(d.manifestDigests).toEqual([d.digest]);
  });

  it('options: noHeadDigest, deleteDisabled, maxManifestBytes', async () => {
    const reg = await start({ noHeadDigest: true, deleteDisabled: true, maxManifestBytes: 100 });
    const s = seedImage(reg, 'r', 't');
    const head = await fetch(at(reg, '/v2/r/manifests/t'), { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBeNull();
    expect((await fetch(at(reg, '/v2/r/manifests/t'))).headers.get('docker-content-digest')).toBe(s.digest);
    const del = await fetch(at(reg, `/v2/r/manifests/${s.digest}`), { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(await errCode(del)).toBe('UNSUPPORTED');
    const big = reg.getManifest('r', 't')!.bytes;
    const put = await fetch(at(reg, '/v2/r/manifests/t2'), { method: 'PUT', body: new Uint8Array(big), headers: { 'Content-Type': OCI_MANIFEST } });
    expect(put.status).toBe(413);
  });
});

describe('chunked uploads', () => {
  it('min length, ordered chunks, 416 + status recovery, stale Location, final chunk in PUT', async () => {
    const reg = await start({ chunkMinLength: 10 });
    const data = deterministicBytes('chunked', 35);
    const post = await fetch(at(reg, '/v2/c/blobs/uploads/'), { method: 'POST', headers: { 'Content-Length': '0' } });
    expect(post.status).toBe(202);
    expect(post.headers.get('oci-chunk-min-length')).toBe('10');
    const loc0 = post.headers.get('location')!;
    const patch = (loc: string, start: number, end: number, headers: Record<string, string> = {}) =>
      fetch(at(reg, loc), {
        method: 'PATCH', body: data.subarray(start, end + 1),
        headers: { 'Content-Type': OCTET, 'Content-Range': `${start}-${end}`, ...headers },
      });

    const p1 = await patch(loc0, 0, 11);
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-11');
    const loc1 = p1.headers.get('location')!;
    expect(loc1).not.toBe(loc0);

    const ooo = await patch(loc1, 20, 31);
    expect(ooo.status).toBe(416);
    const stale = await patch(loc0, 12, 23);
    expect(stale.status).toBe(400);
    expect(await errCode(stale)).toBe('BLOB_UPLOAD_INVALID');
    const wrongType = await patch(loc1, 12, 23, { 'Content-Type': 'text/plain' });
    expect(wrongType.status).toBe(400);

    const status = await fetch(at(reg, loc0));
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-11');
    const loc2 = status.headers.get('location')!;

    const p2 = await patch(loc2, 12, 23);
    expect(p2.status).toBe(202);
    const p3 = await fetch(`${at(reg, p2.headers.get('location')!)}&digest=${sha256(data)}`, {
      method: 'PUT', body: data.subarray(24), headers: { 'Content-Type': OCTET, 'Content-Range': '24-34' },
    });
    expect(p3.status).toBe(201);
    expect(p3.headers.get('docker-content-digest')).toBe(sha256(data));
    expect(reg.getBlob('c', sha256(data))?.equals(Buffer.from(data))).toBe(true);
  });

  it('a short chunk must be the last one; digest mismatch on close; cancel', async () => {
    const reg = await start({ chunkMinLength: 10 });
    const data = deterministicBytes('short', 20);
    const post = await fetch(at(reg, '/v2/c/blobs/uploads/'), { method: 'POST' });
    const p1 = await fetch(at(reg, post.headers.get('location')!), { method: 'PATCH', body: data.subarray(0, 5), headers: { 'Content-Range': '0-4', 'Content-Type': OCTET } });
    expect(p1.status).toBe(202);
    const p2 = await fetch(at(reg, p1.headers.get('location')!), { method: 'PATCH', body: data.subarray(5), headers: { 'Content-Range': '5-19', 'Content-Type': OCTET } });
    expect(p2.status).toBe(400);
    expect(await errCode(p2)).toBe('SIZE_INVALID');
    // closing right after the short chunk is fine, but the digest must match
    const close = await fetch(`${at(reg, p1.headers.get('location')!)}&digest=${sha256(data)}`, { method: 'PUT' });
    expect(close.status).toBe(400);
    expect(await errCode(close)).toBe('DIGEST_INVALID');
    expect((await fetch(at(reg, p1.headers.get('location')!))).status).toBe(404);

    const post2 = await fetch(at(reg, '/v2/c/blobs/uploads/'), { method: 'POST' });
    const loc = post2.headers.get('location')!;
    expect((await fetch(at(reg, loc), { method: 'DELETE' })).status).toBe(204);
    const gone = await fetch(at(reg, loc));
    expect(gone.status).toBe(404);
    expect(await errCode(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('docker-style streaming PATCH without Content-Range, then empty PUT', async () => {
    const reg = await start({ chunkMinLength: 1000 });
    const data = deterministicBytes('stream', 300);
    const post = await fetch(at(reg, '/v2/s/blobs/uploads/'), { method: 'POST' });
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.subarray(0, 100));
        c.enqueue(data.subarray(100));
        c.close();
      },
    });
    const p = await fetch(at(reg, post.headers.get('location')!), { method: 'PATCH', body, duplex: 'half' } as RequestInit);
    expect(p.status).toBe(202);
    expect(p.headers.get('range')).toBe('0-299');
    const put = await fetch(`${at(reg, p.headers.get('location')!)}&digest=${sha256(data)}`, { method: 'PUT' });
    expect(put.status).toBe(201);
  });
});

describe('mount, tags, ranges', () => {
  it('mount: 201 when present in `from`, 202 + session otherwise', async () => {
    const reg = await start();
    const d = reg.putBlob('src', bytes('layer'));
    const ok = await fetch(at(reg, `/v2/dst/blobs/uploads/?mount=${d}&from=src`), { method: 'POST' });
    expect(ok.status).toBe(201);
    expect(ok.headers.get('location')).toBe(`/v2/dst/blobs/${d}`);
    expect(reg.getBlob('dst', d)?.toString()).toBe('layer');
    const miss = await fetch(at(reg, `/v2/dst/blobs/uploads/?mount=${sha256(bytes('other'))}&from=src`), { method: 'POST' });
    expect(miss.status).toBe(202);
    expect(miss.headers.get('location')).toMatch(/^\/v2\/dst\/blobs\/uploads\/[^?]+\?_state=/);
    const noFrom = await fetch(at(reg, `/v2/dst2/blobs/uploads/?mount=${d}`), { method: 'POST' });
    expect(noFrom.status).toBe(202);
  });

  it('tags/list pagination with n/last and Link; tagPageSize without n; n=0', async () => {
    const reg = await start({ tagPageSize: 3 });
    const { digest } = seedImage(reg, 'p/q', 'a');
    const m = reg.getManifest('p/q', digest)!;
    for (const t of ['e', 'b', 'd', 'c', 'Z', '1.0']) reg.putManifest('p/q', t, m.bytes, m.mediaType);
    const all: string[] = [];
    let next: string | undefined = '/v2/p/q/tags/list?n=2';
    let pages = 0;
    while (next) {
      const r = await fetch(at(reg, next));
      const j = (await r.json()) as { name: string; tags: string[] };
      expect(j.name).toBe('p/q');
      all.push(...j.tags);
      pages++;
      const link = r.headers.get('link');
      next = link ? /^<([^>]+)>;\s*rel="next"$/.exec(link)![1] : undefined;
      if (next) expect(next).toMatch(/^\/v2\/p\/q\/tags\/list\?n=2&last=/);
    }
    expect(all).toEqual(['1.0', 'Z', 'a', 'b', 'c', 'd', 'e']);
    expect(pages).toBe(4);
    const def = await fetch(at(reg, '/v2/p/q/tags/list'));
    expect(((await def.json()) as { tags: string[] }).tags).toEqual(['1.0', 'Z', 'a']);
    expect(def.headers.get('link')).toBe('</v2/p/q/tags/list?n=3&last=a>; rel="next"');
    const lastPage = await fetch(at(reg, '/v2/p/q/tags/list?last=c'));
    expect(((await lastPage.json()) as { tags: string[] }).tags).toEqual(['d', 'e']);
    expect(lastPage.headers.get('link')).toBeNull();
    const zero = await fetch(at(reg, '/v2/p/q/tags/list?n=0'));
    expect(((await zero.json()) as { tags: string[] }).tags).toEqual([]);
    expect(zero.headers.get('link')).toBeNull();
    expect(await errCode(await fetch(at(reg, '/v2/nope/tags/list')))).toBe('NAME_UNKNOWN');
  });

  it('Range GET → 206 with Content-Range; suffix and open ranges; 416', async () => {
    const reg = await start();
    const data = deterministicBytes('range', 100);
    const d = reg.putBlob('r', data);
    const get = (range: string) => fetch(at(reg, `/v2/r/blobs/${d}`), { headers: { Range: range } });
    const r1 = await get('bytes=10-19');
    expect(r1.status).toBe(206);
    expect(r1.headers.get('content-range')).toBe('bytes 10-19/100');
    expect(Buffer.from(await r1.arrayBuffer()).equals(data.subarray(10, 20))).toBe(true);
    const r2 = await get('bytes=90-');
    expect(r2.headers.get('content-range')).toBe('bytes 90-99/100');
    expect((await r2.arrayBuffer()).byteLength).toBe(10);
    const r3 = await get('bytes=-5');
    expect(Buffer.from(await r3.arrayBuffer()).equals(data.subarray(95))).toBe(true);
    const r4 = await get('bytes=200-');
    expect(r4.status).toBe(416);
    expect(r4.headers.get('content-range')).toBe('bytes */100');
    const full = await fetch(at(reg, `/v2/r/blobs/${d}`));
    expect(full.status).toBe(200);
    expect(full.headers.get('accept-ranges')).toBe('bytes');
  });
});

describe('faults', () => {
  it('status fault with Retry-After, `times` countdown, then normal handling', async () => {
    const reg = await start();
    const { digest } = seedImage(reg, 'f', 'v1');
    reg.faults.push({ match: { method: 'GET', path: /\/manifests\// }, times: 2, action: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } } });
    const r1 = await fetch(at(reg, '/v2/f/manifests/v1'));
    expect(r1.status).toBe(429);
    expect(r1.headers.get('retry-after')).toBe('1');
    expect(await errCode(r1)).toBe('TOOMANYREQUESTS');
    expect((await fetch(at(reg, '/v2/f/manifests/v1'), { method: 'HEAD' })).status).toBe(200); // method mismatch
    expect((await fetch(at(reg, '/v2/f/manifests/v1'))).status).toBe(429);
    const ok = await fetch(at(reg, '/v2/f/manifests/v1'));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-content-digest')).toBe(digest);
    expect(reg.faults[0]!.times).toBe(0);
    reg.faults.push({ match: { path: /[?&]digest=/ }, times: 1, action: { kind: 'status', status: 503, body: 'busy' } });
    const r2 = await pushBlob(reg, 'f', bytes('x'));
    expect(r2.res.status).toBe(503);
    expect(await r2.res.text()).toBe('busy');
    expect((await pushBlob(reg, 'f', bytes('x'))).res.status).toBe(201);
    expect(reg.requests.map((r) => r.status)).toEqual([429, 200, 429, 200, 503, 201]);
  });

  it('reset destroys the socket without a response', async () => {
    const reg = await start();
    seedImage(reg, 'f', 'v1');
    reg.faults.push({ match: { path: /^\/v2\/$/ }, times: 1, action: { kind: 'reset' } });
    await expect(fetch(at(reg, '/v2/'))).rejects.toThrow();
    expect(reg.requests[0]!.status).toBe(0);
    expect((await fetch(at(reg, '/v2/'))).status).toBe(200);
  });

  it('truncate sends the full Content-Length then cuts the body', async () => {
    const reg = await start();
    const d = reg.putBlob('f', deterministicBytes('t', 4096));
    reg.faults.push({ match: { path: /\/blobs\// }, times: 1, action: { kind: 'truncate', afterBytes: 1000 } });
    const res = await fetch(at(reg, `/v2/f/blobs/${d}`));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('4096');
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(reg.requests[0]!.bytesOut).toBe(1000);
    const again = await fetch(at(reg, `/v2/f/blobs/${d}`));
    expect(sha256(new Uint8Array(await again.arrayBuffer()))).toBe(d);
  });

  it('corrupt flips a body byte (digest mismatch) without touching storage', async () => {
    const reg = await start();
    const data = deterministicBytes('c', 256);
    const d = reg.putBlob('f', data);
    reg.faults.push({ match: { path: /\/blobs\// }, times: 1, action: { kind: 'corrupt' } });
    const res = await fetch(at(reg, `/v2/f/blobs/${d}`));
    expect(res.headers.get('docker-content-digest')).toBe(d);
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.length).toBe(256);
    expect(sha256(body)).not.toBe(d);
    expect(reg.getBlob('f', d)!.equals(data)).toBe(true);
  });

  it('delay postpones the response', async () => {
    const reg = await start();
    reg.faults.push({ match: { path: /^\/v2\/$/ }, action: { kind: 'delay', ms: 80 } });
    const t0 = Date.now();
    expect((await fetch(at(reg, '/v2/'))).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
  });

  it('redirect to another host: fetch drops Authorization; storage refuses it anyway', async () => {
    const reg = await start({ auth: 'basic', users: { u: { password: 'p', pull: ['*'] } } });
    const storage = await start();
    const data = deterministicBytes('redir', 512);
    const d = reg.putBlob('f', data);
    storage.putBlob('bucket', data);
    reg.faults.push({ match: { method: 'GET', path: /\/blobs\/sha256:/ }, action: { kind: 'redirect', to: `${storage.url}/_storage/{digest}` } });
    const res = await fetch(at(reg, `/v2/f/blobs/${d}`), { headers: { Authorization: basic('u', 'p') } });
    expect(res.status).toBe(200);
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(d);
    expect(reg.requests[0]).toMatchObject({ status: 307, hasAuth: true });
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]).toMatchObject({ path: `/_storage/${d}`, hasAuth: false, status: 200 });

    const manual = await fetch(at(reg, `/v2/f/blobs/${d}`), { headers: { Authorization: basic('u', 'p') }, redirect: 'manual' });
    expect(manual.status).toBe(307);
    expect(manual.headers.get('location')).toBe(`${storage.url}/_storage/${d}`);
    const leaked = await fetch(manual.headers.get('location')!, { headers: { Authorization: basic('u', 'p') } });
    expect(leaked.status).toBe(400);
    expect(await leaked.text()).toContain('Only one auth mechanism allowed');

    // bare-origin target: original path is appended
    reg.faults.unshift({ match: { method: 'GET', path: /\/manifests\// }, times: 1, action: { kind: 'redirect', to: storage.url, status: 302 } });
    const r2 = await fetch(at(reg, '/v2/f/manifests/x?a=1'), { redirect: 'manual' });
    expect(r2.status).toBe(302);
    expect(r2.headers.get('location')).toBe(`${storage.url}/v2/f/manifests/x?a=1`);
  });
});

describe('transport options', () => {
  // openssl missing: skipped on a developer machine, a failure under CI=true (requireBinary).
  it.skipIf(!requireBinary('openssl'))('serves https with the given certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memreg-'));
    let tls: { cert: string; key: string };
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
      tls = { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const reg = await start({ tls });
    expect(reg.url).toBe(`https://${reg.host}`);
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`${reg.url}/v2/`, { ca: tls.cert }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).toBe(200);
  });

  it('listens on ::1 when asked', async (ctx) => {
    let reg: MemRegistry;
    try {
      reg = await start({ host: '::1' });
    } catch (e) {
      // Only a machine without IPv6 loopback may skip; any other failure is a failure.
      if (['EADDRNOTAVAIL', 'EAFNOSUPPORT'].includes((e as NodeJS.ErrnoException).code ?? '')) ctx.skip();
      throw e;
    }
    expect(reg.host).toMatch(/^\[::1\]:\d+$/);
    expect((await fetch(at(reg, '/v2/'))).status).toBe(200);
  });
});
