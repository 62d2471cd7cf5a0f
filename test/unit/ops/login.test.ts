import { describe, it, expect, afterAll, beforeEach } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logout, normalizeRegistry } from '../../../src/ops/login.js';
import { clearCredentialHelperCache } from '../../../src/auth/cred-helper.js';
import { installFakeHelper } from '../../helpers/fake-cred-helper.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});
beforeEach(() => clearCredentialHelperCache());
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-login-'));
  roots.push(d);
  return d;
}
const read = (p: string): unknown => JSON.parse(fs.readFileSync(p, 'utf8'));

describe('normalizeRegistry', () => {
  it('takes what users type for docker login', () => {
    expect(normalizeRegistry('ghcr.io')).toBe('ghcr.io');
    expect(normalizeRegistry('localhost:5000')).toBe('localhost:5000');
    expect(normalizeRegistry('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistry('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistry('https://Reg.Example:8443/v2/')).toBe('reg.example:8443');
  });
  it('refuses a word that is not a host (it would be a Docker Hub namespace)', () => {
    expect(() => normalizeRegistry('myorg')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});

describe('logout (files and helpers, no network)', () => {
  it('removes the docker key, its URL forms and podman-file entries (namespaced ones too)', async () => {
    const d = tmp();
    const dc = path.join(d, 'docker');
    fs.mkdirSync(dc);
    fs.writeFileSync(path.join(dc, 'config.json'), JSON.stringify({ auths: { 'h.example': {}, 'https://h.example/v1/': {}, other: {} } }));
    const podman = path.join(d, 'auth.json');
    fs.writeFileSync(podman, JSON.stringify({ auths: { 'h.example': {}, 'h.example/ns/repo': {}, 'x.example': {} } }));
    const env = { DOCKER_CONFIG: dc, REGISTRY_AUTH_FILE: podman, HOME: path.join(d, 'home'), PATH: '' };
    const r = await logout({ registry: 'h.example' }, { env });
    expect(r.removed).toEqual([
      `${path.join(dc, 'config.json')}: h.example`, `${path.join(dc, 'config.json')}: https://h.example/v1/`,
      `${podman}: h.example`, `${podman}: h.example/ns/repo`,
    ]);
    expect(read(path.join(dc, 'config.json'))).toEqual({ auths: { other: {} } });
    expect(read(podman)).toEqual({ auths: { 'x.example': {} } });
  });

  it('Docker Hub: the docker key https://index.docker.io/v1/ and podman\'s docker.io keys', async () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': {}, 'docker.io': {} } }));
    const podman = path.join(d, 'auth.json');
    fs.writeFileSync(podman, JSON.stringify({ auths: { 'docker.io': {}, 'docker.io/library': {}, 'quay.io': {} } }));
    await logout({ registry: 'docker.io' }, { env: { DOCKER_CONFIG: d, REGISTRY_AUTH_FILE: podman, HOME: d, PATH: '' } });
    // docker itself never reads auths["docker.io"] for Hub, and never removes it
    expect(read(path.join(d, 'config.json'))).toEqual({ auths: { 'docker.io': {} } });
    expect(read(podman)).toEqual({ auths: { 'quay.io': {} } });
  });

  it('a missing helper is a warning; the auths entry is still removed (docker logout does the same)', async () => {
    const d = tmp();
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ credsStore: 'gone', auths: { 'h.example': {} } }));
    const warnings: string[] = [];
    const r = await logout({ registry: 'h.example' }, { env: { DOCKER_CONFIG: d, HOME: d, PATH: d }, warn: (m) => warnings.push(m) });
    expect(warnings).toEqual(['could not erase the credentials for h.example: credential helper docker-credential-gone not found on PATH']);
    expect(r.removed).toEqual([`${path.join(d, 'config.json')}: h.example`]);
  });

  it('--all erases the credsStore\'s listed keys too', async () => {
    const d = tmp();
    const h = installFakeHelper(d);
    fs.writeFileSync(h.db, JSON.stringify({ 'a.example': { Username: 'u', Secret: 's' }, 'https://index.docker.io/v1/': { Username: 'v', Secret: 't' } }));
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ credsStore: 'fake', auths: { 'a.example': {} } }));
    const r = await logout({ all: true }, { env: { ...h.env, DOCKER_CONFIG: d, HOME: d } });
    expect(h.items()).toEqual({});
    expect(r.removed).toContain('docker-credential-fake: https://index.docker.io/v1/');
    expect(read(path.join(d, 'config.json'))).toEqual({ credsStore: 'fake', auths: {} });
  });

  it('argument errors are E_USAGE', async () => {
    await expect(logout({}, {})).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(logout({ registry: 'h.example', all: true }, {})).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});
