/**
 * --authfile formats and lookup (src/auth/authfile.ts): docker config.json, podman auth.json with
 * namespaced keys, Kubernetes .dockerconfigjson values and Secret manifests (data / stringData,
 * .dockercfg), helpers with docker's semantics, and errors that name the file, never a secret.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { authfileEntry, parseAuthfile, resolveFromAuthfile } from '../../../src/auth/authfile.js';
import { clearCredentialHelperCache } from '../../../src/auth/cred-helper.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-authfile-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
beforeEach(() => clearCredentialHelperCache());
let n = 0;
const write = (doc: unknown): string => {
  const p = path.join(root, `f${++n}.json`);
  fs.writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return p;
};
const env = { PATH: path.join(root, 'bin') };
const resolve = (file: string, registry: string, repository?: string) =>
  resolveFromAuthfile(file, registry, { env, warn: () => {}, ...(repository ? { repository } : {}) });
const basic = (username: string, password: string, source: string) => ({ kind: 'basic', username, password, source });

describe('authfile formats', () => {
  const auths = { 'reg.example:5000': { auth: b64('alice:pw-1') } };

  it('docker config.json / Kubernetes .dockerconfigjson value', async () => {
    const f = write({ auths });
    expect(await resolve(f, 'reg.example:5000')).toEqual(basic('alice', 'pw-1', `authfile ${f} (auths)`));
  });

  it('Kubernetes Secret manifest: data (base64) and stringData, .dockerconfigjson and .dockercfg', async () => {
    const inner = JSON.stringify({ auths });
    const legacy = JSON.stringify({ 'reg.example:5000': { auth: b64('alice:pw-1'), email: 'a@x' } });
    for (const doc of [
      { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(inner) } },
      { apiVersion: 'v1', kind: 'Secret', stringData: { '.dockerconfigjson': inner } },
      { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(legacy) } },
    ]) {
      const c = await resolve(write(doc), 'reg.example:5000');
      expect(c).toMatchObject({ kind: 'basic', username: 'alice', password: 'pw-1' });
    }
  });

  it('podman auth.json: namespaced keys, most specific first; else the host', async () => {
    const f = write({ auths: {
      'quay.io': { auth: b64('host-user:h') },
      'quay.io/org': { auth: b64('org-user:o') },
      'quay.io/org/app': { auth: b64('app-user:a') },
    } });
    expect(await resolve(f, 'quay.io', 'org/app')).toMatchObject({ username: 'app-user' });
    expect(await resolve(f, 'quay.io', 'org/other')).toMatchObject({ username: 'org-user' });
    expect(await resolve(f, 'quay.io', 'elsewhere/x')).toMatchObject({ username: 'host-user' });
  });

  it('key forms: docker Hub key, URL keys, podman normalisation', () => {
    const e = (k: string) => ({ [k]: { auth: b64('u:p') } });
    expect(authfileEntry(e('https://index.docker.io/v1/'), 'docker.io')?.key).toBe('https://index.docker.io/v1/');
    expect(authfileEntry(e('docker.io'), 'docker.io')?.key).toBe('docker.io');
    expect(authfileEntry(e('registry-1.docker.io'), 'docker.io')?.key).toBe('registry-1.docker.io');
    expect(authfileEntry(e('https://reg.example:5000/v2/'), 'reg.example:5000')?.key).toBe('https://reg.example:5000/v2/');
    expect(authfileEntry(e('reg.example'), 'reg.example:5000')).toBeUndefined();
    expect(authfileEntry(e('other.example'), 'reg.example')).toBeUndefined();
  });

  it('no entry for the registry: anonymous, saying so', async () => {
    const f = write({ auths });
    expect(await resolve(f, 'elsewhere.example')).toEqual({ kind: 'anonymous', source: `anonymous (authfile ${f} has no entry for elsewhere.example)` });
  });

  it('helpers inside an authfile: credHelpers over credsStore, the helper answer replaces auths (docker semantics)', async () => {
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    const helper = path.join(root, 'bin', 'docker-credential-fake');
    fs.writeFileSync(helper, '#!/bin/sh\nread -r key\nprintf \'{"ServerURL":"%s","Username":"helper-user","Secret":"helper-pw"}\' "$key"\n');
    fs.chmodSync(helper, 0o755);
    const f = write({ credsStore: 'fake', auths: { 'reg.example': { auth: b64('inline:ignored') } } });
    expect(await resolve(f, 'reg.example')).toEqual(basic('helper-user', 'helper-pw', 'credential helper docker-credential-fake'));
    const g = write({ credHelpers: { 'docker.io': 'fake' } }); // podman writes the registry as typed
    expect(await resolve(g, 'docker.io')).toMatchObject({ username: 'helper-user' });
  });
});

describe('authfile errors: E_BAD_CONFIG naming the file, never its contents', () => {
  const secret = b64('alice:pw-very-secret');
  const rows: Array<{ name: string; text: string | null; msg: RegExp; hint?: RegExp }> = [
    { name: 'missing', text: null, msg: /no such file$/ },
    { name: 'not JSON', text: `{"auths": {"r": {"auth": "${secret}"`, msg: /: .*JSON/ },
    { name: 'YAML', text: `apiVersion: v1\nkind: Secret\ndata:\n  .dockerconfigjson: ${secret}\n`, msg: /JSON/, hint: /kubectl get secret NAME -o json/ },
    { name: 'a Secret without the data key', text: JSON.stringify({ kind: 'Secret', data: { token: secret } }), msg: /Kubernetes Secret without data\["\.dockerconfigjson"\]/ },
    { name: 'bad base64 in a Secret', text: JSON.stringify({ kind: 'Secret', data: { '.dockerconfigjson': '%%%' } }), msg: /not valid base64/ },
    { name: '"auths" not an object', text: JSON.stringify({ auths: [secret] }), msg: /"auths" is not an object/ },
    { name: 'top level not an object', text: JSON.stringify([secret]), msg: /top-level value is not a JSON object/ },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const f = r.text === null ? path.join(root, 'missing.json') : write(r.text);
      const e = await resolve(f, 'r').then(() => undefined, (err: unknown) => err as { code: string; message: string; hint?: string });
      expect(e?.code).toBe('E_BAD_CONFIG');
      expect(e!.message).toContain(`authfile ${f}`);
      expect(e!.message).toMatch(r.msg);
      if (r.hint) expect(e!.hint).toMatch(r.hint);
      expect(`${e!.message} ${e!.hint ?? ''}`).not.toContain(secret);
    });
  }

  it('a directory → "is a directory"; an empty file is an empty config (as docker)', async () => {
    await expect(resolve(root, 'r')).rejects.toMatchObject({ code: 'E_BAD_CONFIG', message: `cannot read authfile ${root}: is a directory` });
    expect(parseAuthfile('', 'empty.json')).toEqual({ auths: {}, credHelpers: {} });
  });
});
