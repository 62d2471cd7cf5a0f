import { describe, it, expect, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  authEntryFor, listAuthKeys, podmanAuthKey, removeAllAuthEntries, removeAuthEntries, setAuthEntry, writeFileAtomic,
} from '../../../src/auth/config-write.js';
import { loadDockerConfig, entryToCredential, fileStoreGet } from '../../../src/auth/docker-config.js';
import { requireBinary } from '../../helpers/binaries.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-cfgw-'));
  roots.push(d);
  return d;
}
const mode = (p: string): number => fs.statSync(p).mode & 0o777;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** A config docker would write, with fields ferry knows nothing about, in a non-sorted order. */
const DOC = {
  psFormat: 'table {{.ID}}',
  auths: {
    'ghcr.io': { auth: b64('a:b') },
    'https://index.docker.io/v1/': { auth: b64('hub:pw'), email: 'me@example.invalid' },
    'quay.io': {},
  },
  credHelpers: { 'gcr.io': 'gcloud' },
  zzz: { nested: [1, 2, { x: null }] },
  aaa: true,
};

describe('setAuthEntry', () => {
  it('changes only the one entry: order, unknown fields and tab indentation kept byte for byte', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, JSON.stringify(DOC, null, '\t'), { mode: 0o600 });
    setAuthEntry(p, 'ghcr.io', authEntryFor({ username: 'u', password: 'p' }));
    const expected = structuredClone(DOC) as typeof DOC;
    expected.auths['ghcr.io'] = { auth: b64('u:p') };
    expect(fs.readFileSync(p, 'utf8')).toBe(JSON.stringify(expected, null, '\t'));
  });

  it('appends a new key last in auths, keeps 2-space indentation and a trailing newline', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, `${JSON.stringify(DOC, null, 2)}\n`);
    setAuthEntry(p, 'localhost:5000', authEntryFor({ username: 'u', password: 'p' }));
    const text = fs.readFileSync(p, 'utf8');
    const expected = structuredClone(DOC) as Record<string, unknown> & typeof DOC;
    (expected.auths as Record<string, unknown>)['localhost:5000'] = { auth: b64('u:p') };
    expect(text).toBe(`${JSON.stringify(expected, null, 2)}\n`);
    expect(Object.keys(JSON.parse(text).auths).at(-1)).toBe('localhost:5000');
  });

  it('keeps email and unknown fields of the replaced entry, drops its old secret fields', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, JSON.stringify({ auths: { h: { auth: b64('x:y'), identitytoken: 'old', email: 'e', extra: 1 } } }));
    setAuthEntry(p, 'h', authEntryFor({ username: 'u', password: 'p' }));
    expect(JSON.parse(fs.readFileSync(p, 'utf8')).auths.h).toEqual({ auth: b64('u:p'), email: 'e', extra: 1 });
  });

  it('stores an identity token as docker does (auth = "user:", identitytoken) and ferry reads it back', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    setAuthEntry(p, 'h', authEntryFor({ username: 'u', password: 'secret', identityToken: 'rt-1' }));
    const entry = JSON.parse(fs.readFileSync(p, 'utf8')).auths.h;
    expect(entry).toEqual({ auth: b64('u:'), identitytoken: 'rt-1' });
    const cfg = loadDockerConfig({ DOCKER_CONFIG: d }, '/nonexistent');
    expect(entryToCredential(fileStoreGet(cfg.auths, 'h')!.entry, 's', 'w')).toMatchObject({ kind: 'identity-token', token: 'rt-1', username: 'u' });
  });

  it('creates a missing directory 0700 and the file 0600, tab-indented, no trailing newline', () => {
    const d = tmp();
    const p = path.join(d, 'new', 'dir', 'config.json');
    setAuthEntry(p, 'h', { auth: b64('u:p') });
    expect(mode(path.dirname(p))).toBe(0o700);
    expect(mode(p)).toBe(0o600);
    expect(fs.readFileSync(p, 'utf8')).toBe(`{\n\t"auths": {\n\t\t"h": {\n\t\t\t"auth": "${b64('u:p')}"\n\t\t}\n\t}\n}`);
  });

  it('narrows a wider existing file to 0600', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, '{}');
    fs.chmodSync(p, 0o644);
    setAuthEntry(p, 'h', { auth: b64('u:p') });
    expect(mode(p)).toBe(0o600);
  });

  it('uses an existing case-variant "Auths" field instead of adding a second one', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, JSON.stringify({ Auths: { a: {} } }));
    setAuthEntry(p, 'h', {});
    expect(JSON.parse(fs.readFileSync(p, 'utf8'))).toEqual({ Auths: { a: {}, h: {} } });
  });

  it('writes through a symlink: the link stays, its target changes', () => {
    const d = tmp();
    const real = path.join(d, 'real', 'config.json');
    fs.mkdirSync(path.dirname(real));
    fs.writeFileSync(real, JSON.stringify({ keep: 1 }));
    const link = path.join(d, 'config.json');
    fs.symlinkSync(path.join('real', 'config.json'), link);
    setAuthEntry(link, 'h', {});
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(JSON.parse(fs.readFileSync(real, 'utf8'))).toEqual({ keep: 1, auths: { h: {} } });
    expect(fs.readdirSync(d).sort()).toEqual(['config.json', 'real']);
  });

  it('refuses a malformed file with E_BAD_CONFIG and leaves it alone, never quoting it', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, '{"auths": {"h": {"auth": "c2VjcmV0"}},, }');
    let err: unknown;
    try {
      setAuthEntry(p, 'x', {});
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_BAD_CONFIG' });
    expect(String((err as Error).message)).not.toContain('c2VjcmV0');
    expect(fs.readFileSync(p, 'utf8')).toBe('{"auths": {"h": {"auth": "c2VjcmV0"}},, }');
  });
});

describe('atomic writes', () => {
  it('an unwritable directory: E_IO naming the file, the old file intact, no temp file left', () => {
    const d = tmp();
    const dir = path.join(d, 'cfg');
    fs.mkdirSync(dir);
    const p = path.join(dir, 'config.json');
    fs.writeFileSync(p, '{"auths":{}}');
    const root = process.getuid?.() === 0;
    if (root) {
      if (!requireBinary('chattr')) return;
      execFileSync('chattr', ['+i', dir]); // root ignores mode bits; the immutable flag stops it
    } else fs.chmodSync(dir, 0o500);
    try {
      expect(() => setAuthEntry(p, 'h', {})).toThrow(expect.objectContaining({ code: 'E_IO', message: expect.stringContaining(p) }));
    } finally {
      if (root) execFileSync('chattr', ['-i', dir]);
      else fs.chmodSync(dir, 0o700);
    }
    expect(fs.readFileSync(p, 'utf8')).toBe('{"auths":{}}');
    expect(fs.readdirSync(dir)).toEqual(['config.json']);
  });

  it('a failed rename removes the temp file', () => {
    const d = tmp();
    const target = path.join(d, 'config.json');
    fs.mkdirSync(target); // rename(file, dir) fails
    expect(() => writeFileAtomic(target, '{}')).toThrow(expect.objectContaining({ code: 'E_IO' }));
    expect(fs.readdirSync(d)).toEqual(['config.json']);
  });
});

describe('removing entries', () => {
  it('removes the key and the URL forms docker matches for it, nothing else', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    const doc = { a: 1, auths: { 'https://h:5000': {}, x: {}, 'h:5000': {}, 'http://h:5000/v2/': {}, 'h:50001': {} }, z: 2 };
    fs.writeFileSync(p, JSON.stringify(doc, null, '\t'));
    expect(removeAuthEntries(p, 'h:5000')).toEqual(['https://h:5000', 'h:5000', 'http://h:5000/v2/']);
    expect(fs.readFileSync(p, 'utf8')).toBe(JSON.stringify({ a: 1, auths: { x: {}, 'h:50001': {} }, z: 2 }, null, '\t'));
  });

  it('nothing to remove: the file is not rewritten, a missing file stays missing', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    expect(removeAuthEntries(p, 'h')).toEqual([]);
    expect(fs.existsSync(p)).toBe(false);
    fs.writeFileSync(p, '{ "auths": { "x": {} } }');
    fs.chmodSync(p, 0o644);
    expect(removeAuthEntries(p, 'h')).toEqual([]);
    expect(fs.readFileSync(p, 'utf8')).toBe('{ "auths": { "x": {} } }');
    expect(mode(p)).toBe(0o644);
  });

  it('removeAllAuthEntries empties auths and keeps the rest; listAuthKeys lists in file order', () => {
    const d = tmp();
    const p = path.join(d, 'config.json');
    fs.writeFileSync(p, JSON.stringify(DOC, null, '\t'));
    expect(listAuthKeys(p)).toEqual(Object.keys(DOC.auths));
    expect(removeAllAuthEntries(p)).toEqual(Object.keys(DOC.auths));
    expect(fs.readFileSync(p, 'utf8')).toBe(JSON.stringify({ ...DOC, auths: {} }, null, '\t'));
  });
});

describe('podmanAuthKey', () => {
  it('Docker Hub is docker.io, other hosts unchanged', () => {
    expect(podmanAuthKey('docker.io')).toBe('docker.io');
    expect(podmanAuthKey('index.docker.io')).toBe('docker.io');
    expect(podmanAuthKey('localhost:5000')).toBe('localhost:5000');
  });
});
