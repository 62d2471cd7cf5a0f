/**
 * certs.d lookup (src/config/certs-d.ts): directory order, --cert-dir replacing the defaults,
 * *.crt / *.cert + *.key, lone halves, flags. Files are placeholders (not parsed here).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertsD, certsDKey, certsDRoots } from '../../../src/config/certs-d.js';

const root = mkdtempSync(join(tmpdir(), 'ferry-certs-d-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function dir(...parts: string[]): string {
  const d = join(root, ...parts);
  mkdirSync(d, { recursive: true });
  return d;
}

describe('certs.d', () => {
  it('roots: user first, then the system roots (FERRY_SYSTEM_CERTS_D replaces /etc; empty = none)', () => {
    expect(certsDRoots({ HOME: '/h' })).toEqual(['/h/.config/containers/certs.d', '/etc/containers/certs.d', '/etc/docker/certs.d']);
    expect(certsDRoots({ HOME: '/h', FERRY_SYSTEM_CERTS_D: '/a:/b' })).toEqual(['/h/.config/containers/certs.d', '/a', '/b']);
    expect(certsDRoots({ FERRY_SYSTEM_CERTS_D: '' })).toEqual([]);
  });

  it('directory names: host for 443, host:port otherwise, IPv6 bracketed', () => {
    expect(certsDKey('Reg.Example', 443)).toBe('reg.example');
    expect(certsDKey('127.0.0.1', 5000)).toBe('127.0.0.1:5000');
    expect(certsDKey('[::1]', 5000)).toBe('[::1]:5000');
  });

  it('no root exists: inactive, nothing looked up', () => {
    const c = new CertsD({}, { HOME: join(root, 'nope'), FERRY_SYSTEM_CERTS_D: join(root, 'nope-sys') });
    expect(c.active).toBe(false);
  });

  it('the first existing directory wins (user over system); CAs and the pair by base name', () => {
    const home = join(root, 'h1');
    const user = dir('h1', '.config', 'containers', 'certs.d', 'reg:5000');
    const sys = dir('s1', 'reg:5000');
    writeFileSync(join(user, 'a.crt'), 'CA-A');
    writeFileSync(join(user, 'b.crt'), 'CA-B');
    writeFileSync(join(user, 'client.cert'), 'CERT');
    writeFileSync(join(user, 'client.key'), 'KEY');
    writeFileSync(join(sys, 'sys.crt'), 'CA-SYS');
    writeFileSync(join(dir('s1', 'other'), 'o.crt'), 'CA-O');
    const c = new CertsD({}, { HOME: home, FERRY_SYSTEM_CERTS_D: join(root, 's1') });
    expect(c.active).toBe(true);
    expect(c.forHost('reg:5000')).toMatchObject({ ca: ['CA-A', 'CA-B'], cert: 'CERT', key: 'KEY', certFile: join(user, 'client.cert'), dir: user });
    expect(c.forHost('other')).toMatchObject({ ca: ['CA-O'] });
    expect(c.forHost('other')!.cert).toBeUndefined();
    expect(c.forHost('unknown')).toBeUndefined();
  });

  it('--cert-dir replaces the defaults; --ca-cert adds; --client-cert/--client-key replace the pair', () => {
    const flat = dir('flat');
    writeFileSync(join(flat, 'only.crt'), 'CA-FLAT');
    writeFileSync(join(flat, 'd.cert'), 'DCERT');
    writeFileSync(join(flat, 'd.key'), 'DKEY');
    writeFileSync(join(root, 'extra.pem'), 'CA-EXTRA');
    writeFileSync(join(root, 'me.cert'), 'MECERT');
    writeFileSync(join(root, 'me.key'), 'MEKEY');
    const home = join(root, 'h1');
    const c = new CertsD({ certDir: flat, caCert: join(root, 'extra.pem') }, { HOME: home });
    expect(c.forHost('reg:5000')).toMatchObject({ ca: ['CA-FLAT', 'CA-EXTRA'], cert: 'DCERT', key: 'DKEY' });
    const f = new CertsD({ certDir: flat, clientCert: join(root, 'me.cert'), clientKey: join(root, 'me.key') }, { HOME: home });
    expect(f.forHost('any')).toMatchObject({ cert: 'MECERT', key: 'MEKEY', certFile: join(root, 'me.cert') });
    expect(f.forHost('any')!.pairs.map((p) => p.certFile)).toEqual([join(root, 'me.cert')]);
  });

  it('every client pair of a directory, sorted by name (the first is also cert/key)', () => {
    const d = dir('pairs');
    for (const n of ['zeta', 'alpha', 'mid']) {
      writeFileSync(join(d, `${n}.cert`), `${n.toUpperCase()}-CERT`);
      writeFileSync(join(d, `${n}.key`), `${n.toUpperCase()}-KEY`);
    }
    const t = new CertsD({ certDir: d }, { HOME: join(root, 'h-pairs') }).forHost('reg')!;
    expect(t.pairs).toEqual(['alpha', 'mid', 'zeta'].map((n) => ({
      certFile: join(d, `${n}.cert`), keyFile: join(d, `${n}.key`), cert: `${n.toUpperCase()}-CERT`, key: `${n.toUpperCase()}-KEY`,
    })));
    expect(t).toMatchObject({ cert: 'ALPHA-CERT', key: 'ALPHA-KEY', certFile: join(d, 'alpha.cert') });
  });

  it('a lone .key or .cert is E_BAD_CONFIG naming both files', () => {
    const lk = dir('lone-key');
    writeFileSync(join(lk, 'client.key'), 'K');
    expect(() => new CertsD({ certDir: lk }).forHost('x')).toThrow(expect.objectContaining({
      code: 'E_BAD_CONFIG', message: `client key ${join(lk, 'client.key')} has no matching certificate ${join(lk, 'client.cert')}`,
    }));
    const lc = dir('lone-cert');
    writeFileSync(join(lc, 'client.cert'), 'C');
    expect(() => new CertsD({ certDir: lc }).forHost('x')).toThrow(expect.objectContaining({
      code: 'E_BAD_CONFIG', message: `client certificate ${join(lc, 'client.cert')} has no matching key ${join(lc, 'client.key')}`,
    }));
  });

  it('--client-cert without --client-key is E_USAGE', () => {
    expect(() => new CertsD({ clientCert: '/x' })).toThrow(expect.objectContaining({ code: 'E_USAGE', message: '--client-cert needs --client-key' }));
  });
});
