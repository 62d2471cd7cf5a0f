import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { seedImage } from '../../helpers/mem-registry.js';
import { basicCred, hexOf, listFiles, newSession, pullToLayout, rejection, repoOf, sha256, startRecordingProxy, startReg, tempDir } from './support.js';

const PASSWORD = 'pw-Alice-7f3k2';
const B64 = Buffer.from(`alice:${PASSWORD}`).toString('base64');
const users = { alice: { password: PASSWORD, pull: ['*'], push: ['*'] } };
const BLOB = /^\/v2\/app\/blobs\/sha256:[0-9a-f]{64}$/;

describe('redirects and credentials', () => {
  it('a blob redirect to another host drops Authorization; the pull succeeds with verified bytes', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1', { layers: 2, layerSize: 50_000 });
    const port = reg.host.split(':')[1];
    reg.faults.push({ match: { method: 'GET', path: BLOB }, action: { kind: 'redirect', to: `http://localhost:${port}/_storage/{digest}` } });
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const dir = tempDir();

    const result = await pullToLayout(session, reg.host, 'app', 'v1', dir);

    expect(result.root.digest).toBe(seeded.digest);
    const apiBlobGets = reg.requests.filter((r) => r.method === 'GET' && BLOB.test(r.path));
    const storage = reg.requests.filter((r) => r.path.startsWith('/_storage/'));
    expect(apiBlobGets).toHaveLength(seeded.blobs.length);
    // the registry itself was asked with credentials (so dropping them was a real decision) …
    expect(apiBlobGets.every((r) => r.hasAuth && r.authScheme === 'Basic' && r.status === 307)).toBe(true);
    // … and storage never saw them (it would have answered 400)
    expect(storage).toHaveLength(seeded.blobs.length);
    expect(storage.every((r) => !r.hasAuth && r.status === 200)).toBe(true);
    for (const d of seeded.blobs) {
      const onDisk = readFileSync(join(dir, 'blobs', 'sha256', hexOf(d)));
      expect(sha256(onDisk)).toBe(d);
      expect(onDisk.equals(reg.getBlob('app', d)!)).toBe(true);
    }
    expect(listFiles(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('a same-host redirect keeps Authorization', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'app', 'v1');
    await client.getManifest('v1'); // learns the Basic challenge
    reg.faults.push({ match: { method: 'GET', path: BLOB }, times: 1, action: { kind: 'redirect', to: `http://${reg.host}{path}?hop=1` } });
    const layer = JSON.parse((await client.getManifest('v1')).bytes.toString()).layers[0] as Descriptor;

    const body = await readAll(await client.getBlob(layer));

    expect(sha256(body)).toBe(layer.digest);
    expect(layer.digest).toBe(seeded.blobs[0]);
    const hop = reg.requests.find((r) => r.query === 'hop=1');
    expect(hop).toMatchObject({ method: 'GET', hasAuth: true, authScheme: 'Basic', status: 200 });
  });

  it('control: the storage route refuses an Authorization header, so a same-host redirect to it fails', async () => {
    const reg = await startReg({ auth: 'basic', users });
    seedImage(reg, 'app', 'v1');
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'app', 'v1');
    const layer = JSON.parse((await client.getManifest('v1')).bytes.toString()).layers[0] as Descriptor;
    reg.faults.push({ match: { method: 'GET', path: BLOB }, action: { kind: 'redirect', to: `http://${reg.host}/_storage/{digest}` } });

    const e = await rejection(client.getBlob(layer));

    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain('HTTP 400');
    expect(reg.requests.filter((r) => r.path.startsWith('/_storage/')).map((r) => [r.hasAuth, r.status])).toEqual([[true, 400]]);
  });

  it('cookies set by the registry are never sent back', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1');
    const proxy = await startRecordingProxy(reg.host, {
      mutateResponse: (h) => {
        h['set-cookie'] = ['registry_session=cookie-secret-1; Path=/', 'lb=node-2; Path=/'];
      },
    });
    const { session, lines } = newSession({ credential: basicCred('alice', PASSWORD), registry: proxy.host });
    const dir = tempDir();

    const result = await pullToLayout(session, proxy.host, 'app', 'v1', dir);

    expect(result.root.digest).toBe(seeded.digest);
    expect(proxy.requests.length).toBeGreaterThanOrEqual(2 + seeded.blobs.length);
    expect(proxy.requests.filter((r) => r.headers.authorization !== undefined).length).toBeGreaterThan(0);
    expect(proxy.requests.filter((r) => r.headers.cookie !== undefined)).toEqual([]);
    expect(lines.join('\n')).not.toContain('cookie-secret-1');
  });

  it('a redirect answer that sets a cookie: the followed request carries no Cookie', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1');
    const storage = await startRecordingProxy(reg.host);
    reg.faults.push({
      match: { method: 'GET', path: BLOB },
      action: { kind: 'status', status: 307, headers: { Location: `http://${storage.host}/_storage/${seeded.blobs[0]}`, 'Set-Cookie': 'AWSALB=cookie-secret-2' } },
    });
    const { session } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });
    const { client } = repoOf(session, reg.host, 'app', 'v1');
    const layer = JSON.parse((await client.getManifest('v1')).bytes.toString()).layers[0] as Descriptor;

    const body = await readAll(await client.getBlob(layer));

    expect(sha256(body)).toBe(layer.digest);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.headers.cookie).toBeUndefined();
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
  });
});

describe('--debug output never leaks secrets', () => {
  it('basic: neither the password nor its base64 appear; Authorization is shown as "Basic ***"', async () => {
    const reg = await startReg({ auth: 'basic', users });
    const seeded = seedImage(reg, 'app', 'v1');
    const port = reg.host.split(':')[1];
    reg.faults.push({ match: { method: 'GET', path: BLOB }, times: 1, action: { kind: 'redirect', to: `http://localhost:${port}/_storage/{digest}?X-Amz-Signature=sig-secret-3&X-Amz-Credential=cred-secret-4` } });
    const { session, lines } = newSession({ credential: basicCred('alice', PASSWORD), registry: reg.host });

    const result = await pullToLayout(session, reg.host, 'app', 'v1', tempDir());

    expect(result.root.digest).toBe(seeded.digest);
    const text = lines.join('\n');
    expect(lines.length).toBeGreaterThan(5);
    for (const secret of [PASSWORD, B64, 'sig-secret-3', 'cred-secret-4']) expect(text).not.toContain(secret);
    expect(text).toContain('"authorization":"Basic ***"');
    expect(text).toMatch(/← 200 GET http:\/\/localhost:\d+\/_storage\/sha256:[0-9a-f]{64}\?X-Amz-Signature=\*\*\*/);
  });

  it('token: no bearer token value (as actually sent on the wire) appears; "Bearer ***" does', async () => {
    const reg = await startReg({ auth: 'token', users });
    const seeded = seedImage(reg, 'private/app', 'v1');
    const proxy = await startRecordingProxy(reg.host);
    const { session, lines } = newSession({ credential: basicCred('alice', PASSWORD), registry: proxy.host });

    const result = await pullToLayout(session, proxy.host, 'private/app', 'v1', tempDir());

    expect(result.root.digest).toBe(seeded.digest);
    const tokens = [...new Set(proxy.requests.map((r) => r.headers.authorization).filter((h): h is string => !!h?.startsWith('Bearer ')).map((h) => h.slice(7)))];
    expect(tokens.length).toBeGreaterThan(0);
    const text = lines.join('\n');
    for (const t of tokens) expect(text).not.toContain(t);
    for (const secret of [PASSWORD, B64]) expect(text).not.toContain(secret);
    expect(text).toContain('"authorization":"Bearer ***"');
    expect(text).toMatch(/token: requesting repository:private\/app:pull from 127\.0\.0\.1:\d+ as alice/);
  });
});

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}
