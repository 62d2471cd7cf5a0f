/**
 * `ferry export` against `umoci unpack` (the reference for the OCI layer rules): a three-layer
 * image with whiteouts, an opaque directory, a hard link to a lower-layer file, a file written
 * through a symlinked directory, a directory replaced by a file and back, a long name and an
 * empty file; the two trees must match entry by entry (type, mode, owner, size, content, link
 * target, hard-link grouping). Hostile layers are refused with nothing written outside the root.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';
import { type Entry, layout, podmanTree, tree, umociTree } from './export-support.js';

/** A statically linked busybox (Debian busybox-static) to run inside an exported root. */
function requireBusybox(): string {
  requireBinary('busybox');
  const p = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  if (!execFileSync('file', ['-L', p], { encoding: 'utf8' }).includes('statically linked')) throw new Error(`${p} is not statically linked: apt-get install busybox-static`);
  return p;
}

const LONG = `usr/share/${'a-very-long-directory-name/'.repeat(4)}and-a-file-name-well-over-one-hundred-characters.txt`;
const GOOD: Entry[][] = [
  [
    { name: 'etc/', type: 'directory' }, { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' }, { name: 'etc/empty', data: '' },
    { name: 'usr/', type: 'directory' }, { name: 'usr/bin/', type: 'directory' }, { name: 'usr/bin/tool', mode: 0o755, data: '#!/bin/sh\necho tool\n' },
    { name: 'usr/lib/', type: 'directory' }, { name: 'usr/lib/libx.so', data: 'ELF...' }, { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
    { name: 'opt/', type: 'directory' }, { name: 'opt/old/', type: 'directory' }, { name: 'opt/old/a', data: 'a' }, { name: 'opt/old/b', data: 'b' },
    { name: 'swap/', type: 'directory' }, { name: 'swap/x', data: 'x' }, { name: 'flip', data: 'a file first' },
    { name: 'home/', type: 'directory' }, { name: 'home/user/', type: 'directory', uid: 1000, gid: 1000, mode: 0o700 }, { name: 'home/user/.profile', uid: 1000, gid: 1000, data: 'PS1=$\n' },
    { name: LONG, data: 'long' },
  ],
  [
    { name: 'etc/.wh.passwd' }, { name: 'etc/group', data: 'root:x:0:\n' },
    { name: 'opt/old/.wh..wh..opq' }, { name: 'opt/old/c', data: 'c' },
    // Hard-link headers carry their target's mode and owner, as tar writes them (on a mismatch
    // containers/storage applies the link's to the shared inode, umoci does not).
    { name: 'usr/bin/tool2', type: 'link', linkname: 'usr/bin/tool', mode: 0o755 },
    { name: 'home/user/profile-link', type: 'link', linkname: 'home/user/.profile', uid: 1000, gid: 1000 },
    { name: 'bin/newtool', mode: 0o755, data: 'through the symlink' },
    { name: 'swap', data: 'now a file' }, { name: 'flip/', type: 'directory' }, { name: 'flip/y', data: 'y' },
    { name: 'usr/', type: 'directory', mode: 0o750 },
  ],
  [
    { name: 'swap/', type: 'directory' }, { name: 'swap/z', data: 'z' },
    { name: 'usr/lib/.wh.libx.so' }, { name: 'usr/bin/tool', mode: 0o700, data: '#!/bin/sh\necho tool v2\n' },
  ],
];

let work: string;
beforeAll(async () => {
  requireBinary('umoci');
  work = mkdtempSync(join(tmpdir(), 'ferry-export-'));
  await layout(join(work, 'img'), GOOD);
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('ferry export', () => {
  it('gives the tree umoci unpack gives, entry by entry', async () => {
    const out = join(work, 'root');
    const r = await runCli(['export', '--json', `oci:${join(work, 'img')}:v1`, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const mine = tree(out);
    expect(mine).toEqual(umociTree(join(work, 'img'), join(work, 'bundle')));
    // The rules, spelled out (so a shared mistake would not pass unnoticed).
    expect(mine['etc/passwd']).toBeUndefined();
    expect(Object.keys(mine).filter((k) => k.includes('.wh.'))).toEqual([]);
    expect(Object.keys(mine).filter((k) => k.startsWith('opt/old/'))).toEqual(['opt/old/c']);
    expect(mine['usr/bin/newtool']).toMatch(/^file /);
    expect(mine['bin']).toBe('symlink -> usr/bin uid=0 gid=0');
    expect(mine['swap']).toMatch(/^dir /);
    expect(mine['swap/x']).toBeUndefined();
    expect(mine['flip/y']).toMatch(/^file /);
    expect(mine['home/user/profile-link']).toContain('linked=home/user/.profile'); // a hard link to a lower layer's file
    expect(mine['usr/bin/tool2']).not.toContain('linked='); // its target was replaced by layer 3: the link keeps the old file
    expect(mine['usr/bin/tool2']).not.toBe(mine['usr/bin/tool']);
    expect(mine[LONG]).toMatch(/size=4 /);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ command: 'export', layers: 3, hardlinks: 2, whiteouts: 3 });
  });

  it('a tar, a .tar.gz and - (stdout) hold the same tree: directories before their contents, hard links after their targets', async () => {
    const ref = tree(join(work, 'root'));
    for (const [name, extract] of [['flat.tar', '-xf'], ['flat.tar.gz', '-xzf']] as const) {
      const file = join(work, name);
      const r = await runCli(['export', `oci:${join(work, 'img')}:v1`, '-o', file]);
      expect(r.code, r.stderr).toBe(0);
      const into = mkdtempSync(join(work, 'x-'));
      execFileSync('tar', [extract, file, '-C', into, '--same-owner', '--numeric-owner', '-p']);
      expect(tree(into)).toEqual(ref);
      const names = execFileSync('tar', [extract.replace('x', 't'), file], { encoding: 'utf8' }).trim().split('\n').map((n) => n.replace(/\/$/, ''));
      for (const [i, n] of names.entries()) {
        const parent = n.includes('/') ? n.slice(0, n.lastIndexOf('/')) : undefined;
        if (parent) expect(names.indexOf(parent), `${n} after its directory`).toBeLessThan(i);
      }
      const verbose = execFileSync('tar', [extract.replace('x', 'tv'), file], { encoding: 'utf8' });
      expect(verbose).toMatch(/home\/user\/profile-link link to home\/user\/\.profile|home\/user\/\.profile link to home\/user\/profile-link/);
      const linkLine = names.findIndex((n) => n === 'home/user/profile-link');
      expect(linkLine).toBeGreaterThan(names.indexOf('home/user/.profile'));
    }
    const piped = execFileSync('sh', ['-c', `"${process.execPath}" "${FERRY_BIN}" export oci:${join(work, 'img')}:v1 -o - | tar -tf - | wc -l`], { encoding: 'utf8', env: { PATH: process.env['PATH'], HOME: '/nonexistent' } });
    expect(Number(piped.trim())).toBe(Object.keys(ref).length);
  });

  it('gives the tree podman export gives for a container created from the same image (vfs storage, cgroupfs)', async () => {
    const mine = tree(join(work, 'root'));
    expect(mine).toEqual(await podmanTree(work, join(work, 'img'), mine));
  }, 120_000);

  it('zstd layers (fzstd) give the same tree as the gzip ones', async () => {
    requireBinary('zstd');
    const dir = mkdtempSync(join(work, 'zstd-'));
    await layout(join(dir, 'img'), GOOD, 'zstd');
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'root')]);
    expect(r.code, r.stderr).toBe(0);
    expect(tree(join(dir, 'root'))).toEqual(tree(join(work, 'root')));
  });

  it('a SquashFS image (mksquashfs) that unsquashfs gives back as the same tree', async () => {
    requireBinary('mksquashfs');
    const file = join(work, 'flat.sqfs');
    const r = await runCli(['export', '--json', `oci:${join(work, 'img')}:v1`, '-o', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ format: 'squashfs', destination: file });
    const into = join(work, 'unsq');
    execFileSync('unsquashfs', ['-q', '-n', '-d', into, file], { stdio: 'pipe' });
    expect(tree(into)).toEqual(tree(join(work, 'root')));
    expect(readdirSync(work).filter((n) => n.includes('.partial'))).toEqual([]);
  });

  it('Charliecloud ch-run runs a command inside the exported directory and inside the exported SquashFS', async () => {
    requireBinary('ch-run');
    const dir = mkdtempSync(join(work, 'ch-'));
    const etc = ['passwd', 'group', 'hosts', 'resolv.conf'].map((n) => ({ name: `etc/${n}`, data: n === 'passwd' ? 'root:x:0:0:root:/root:/bin/sh\n' : '' }));
    await layout(join(dir, 'img'), [
      [{ name: 'bin/', type: 'directory' }, { name: 'bin/busybox', mode: 0o755, data: readFileSync(requireBusybox()) }, { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
        { name: 'etc/', type: 'directory' }, ...etc, ...['tmp', 'dev', 'proc', 'sys', 'home', 'root'].map((n) => ({ name: `${n}/`, type: 'directory' as const }))],
      [{ name: 'etc/hello', data: 'hello from layer 2\n' }, { name: 'etc/.wh.hosts' }, { name: 'etc/hosts', data: '' }],
    ]);
    for (const out of [join(dir, 'root'), join(dir, 'root.sqfs')]) {
      const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      const said = execFileSync('ch-run', [out, '--', '/bin/sh', '-c', 'cat /etc/hello; ls /etc | wc -l'], { encoding: 'utf8', env: { ...process.env, USER: process.env['USER'] ?? 'root' }, timeout: 30_000 });
      expect(said).toBe('hello from layer 2\n5\n');
    }
  });

  it.each([
    ['a ".." component', [[{ name: '../escaped', data: 'x' }]]],
    ['an absolute path', [[{ name: '/abs-escape', data: 'x' }]]],
    ['a symlink leading outside, then a file through it', [[{ name: 'etc', type: 'symlink', linkname: '../../../../../../../../CANARY' }], [{ name: 'etc/passwd', data: 'pwned' }]]],
    ['a whiteout of ".."', [[{ name: 'a/', type: 'directory' }], [{ name: 'a/.wh...' }]]],
    ['a hard link to a path outside', [[{ name: 'x', type: 'link', linkname: '../../etc/passwd' }]]],
  ] as const)('refuses %s: exit 2 naming the layer and entry, no directory, nothing outside touched', async (_what, layers) => {
    const dir = mkdtempSync(join(work, 'hostile-'));
    await layout(join(dir, 'img'), layers as unknown as Entry[][]);
    const out = join(dir, 'out', 'root');
    mkdirSync(join(dir, 'out'));
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', out]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^ferry: layer 1?\d\/\d \(sha256:[0-9a-f]{64}\): refused /m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(readdirSync(join(dir, 'out'))).toEqual([]); // no result, no staging left
    expect(existsSync(join(dir, 'escaped'))).toBe(false);
    expect(existsSync('/abs-escape')).toBe(false);
    expect(existsSync('/CANARY')).toBe(false);
  });

  it('a directory whited out, then its old paths reused by a file and a symlink: their own modes, nothing outside touched (umoci unpack\'s tree)', async () => {
    const dir = mkdtempSync(join(work, 'reuse-'));
    const canary = mkdtempSync(join(work, 'canary-')); // outside the export's root
    chmodSync(canary, 0o755);
    await layout(join(dir, 'img'), [
      [{ name: 'a/', type: 'directory' }, { name: 'a/b/', type: 'directory', mode: 0o700 }, { name: 'a/b/f', data: 'f' },
        { name: 'c/', type: 'directory' }, { name: 'c/d/', type: 'directory', mode: 0o711 }],
      [{ name: '.wh.a' }, { name: '.wh.c' }],
      [{ name: 'a/b', mode: 0o640, data: 'a file where a directory was' }, { name: 'c/d', type: 'symlink', linkname: canary }],
    ]);
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'root')]);
    expect(r.code, r.stderr).toBe(0);
    const mine = tree(join(dir, 'root'));
    expect(mine['a/b']).toMatch(/^file mode=640 /);
    expect(mine['c/d']).toBe(`symlink -> ${canary} uid=0 gid=0`);
    expect((statSync(canary).mode & 0o7777).toString(8)).toBe('755');
    expect(mine).toEqual(umociTree(join(dir, 'img'), join(dir, 'bundle')));
  });

  it('refuses a non-empty output directory (exit 2), leaving it as it was', async () => {
    const out = join(work, 'busy');
    mkdirSync(out);
    writeFileSync(join(out, 'keep'), 'mine');
    const r = await runCli(['export', `oci:${join(work, 'img')}:v1`, '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('exists and is not empty');
    expect(readdirSync(out)).toEqual(['keep']);
  });
});
