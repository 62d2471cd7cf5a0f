import { describe, it, expect, afterAll, beforeEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eraseFromHelper, listHelper, storeInHelper } from '../../../src/auth/cred-helper-store.js';
import { clearCredentialHelperCache, getFromHelper } from '../../../src/auth/cred-helper.js';
import { installFakeHelper } from '../../helpers/fake-cred-helper.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});
beforeEach(() => clearCredentialHelperCache());
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-chs-'));
  roots.push(d);
  return d;
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A killed process not yet reaped by its new parent is a zombie: dead for our purpose.
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('credential helper store / erase / list', () => {
  it('store sends docker\'s JSON on stdin; get then returns it; list and erase work', async () => {
    const h = installFakeHelper(tmp());
    await storeInHelper('fake', 'localhost:5000', { username: 'alice', secret: 's3cret' }, { env: h.env });
    expect(h.calls()[0]).toEqual({ verb: 'store', stdin: JSON.stringify({ ServerURL: 'localhost:5000', Username: 'alice', Secret: 's3cret' }) });
    expect(await getFromHelper('fake', 'localhost:5000', { env: h.env })).toEqual({ kind: 'basic', username: 'alice', secret: 's3cret' });
    expect(await listHelper('fake', { env: h.env })).toEqual({ 'localhost:5000': 'alice' });
    expect(h.calls().at(-1)).toEqual({ verb: 'list', stdin: 'unused' });
    expect(await eraseFromHelper('fake', 'localhost:5000', { env: h.env })).toBe(true);
    expect(h.calls().at(-1)).toEqual({ verb: 'erase', stdin: 'localhost:5000' });
    expect(h.items()).toEqual({});
  });

  it('an identity token is stored with Username <token> and read back as one', async () => {
    const h = installFakeHelper(tmp());
    await storeInHelper('fake', 'https://index.docker.io/v1/', { identityToken: 'rt' }, { env: h.env });
    expect(h.items()).toEqual({ 'https://index.docker.io/v1/': { Username: '<token>', Secret: 'rt' } });
    expect(await getFromHelper('fake', 'https://index.docker.io/v1/', { env: h.env })).toEqual({ kind: 'identity-token', token: 'rt' });
  });

  it('store clears the get cache (a later get sees the new secret)', async () => {
    const h = installFakeHelper(tmp());
    await storeInHelper('fake', 'h', { username: 'u', secret: 'one' }, { env: h.env });
    expect(await getFromHelper('fake', 'h', { env: h.env })).toMatchObject({ secret: 'one' });
    await storeInHelper('fake', 'h', { username: 'u', secret: 'two' }, { env: h.env });
    expect(await getFromHelper('fake', 'h', { env: h.env })).toMatchObject({ secret: 'two' });
  });

  it('erase of something the helper does not have is false, not an error', async () => {
    const h = installFakeHelper(tmp());
    expect(await eraseFromHelper('fake', 'nothing-here', { env: h.env })).toBe(false);
  });

  it('a failing store is E_BAD_CONFIG naming the helper, never echoing the secret', async () => {
    const h = installFakeHelper(tmp());
    const env = { ...h.env, FAKE_HELPER_FAIL: 'store' };
    const err = await storeInHelper('fake', 'h', { username: 'u', secret: 'TOPSECRET' }, { env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('docker-credential-fake store failed: exit status 1') });
    expect(JSON.stringify(err) + String((err as Error).message)).not.toContain('TOPSECRET');
  });

  it('a missing helper is E_BAD_CONFIG "not found on PATH"', async () => {
    const err = await storeInHelper('nope-not-here', 'h', { username: 'u', secret: 's' }, { env: { PATH: tmp() } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_CONFIG', message: 'credential helper docker-credential-nope-not-here not found on PATH' });
  });

  it('list output that is not JSON is E_BAD_CONFIG', async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'bin'));
    fs.writeFileSync(path.join(d, 'bin', 'docker-credential-bad'), '#!/bin/sh\necho not json\n', { mode: 0o755 });
    await expect(listHelper('bad', { env: { PATH: path.join(d, 'bin') } })).rejects.toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('not JSON') });
  });

  it('a hanging helper is killed with its whole process group on timeout', async () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'bin'));
    const pidFile = path.join(d, 'grandchild.pid');
    // The helper starts a grandchild (as pass → gpg would) and waits for it.
    fs.writeFileSync(path.join(d, 'bin', 'docker-credential-hang'), `#!/bin/sh\nsleep 30 &\necho $! > '${pidFile}'\nwait\n`, { mode: 0o755 });
    const t0 = Date.now();
    const err = await eraseFromHelper('hang', 'h', { env: { PATH: `${path.join(d, 'bin')}:/usr/bin:/bin` }, timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('timed out after 0.5 s') });
    expect(Date.now() - t0).toBeLessThan(5000);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    expect(alive(grandchild)).toBe(false);
  });
});
