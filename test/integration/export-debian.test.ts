/**
 * `ferry export` of a real Debian root filesystem: Debian bookworm built offline with
 * `debootstrap --variant=minbase --unpack-tarball` from the package tarball .ci/run caches
 * (`debootstrap --make-tarball`), tarred by GNU tar with its owners, modes, setuid/setgid bits,
 * hard links, absolute and relative symlinks, merged-/usr symlinks and /dev nodes as layer 1, and
 * three layers above it that delete files (one of a hard-linked pair, the target of a symlink),
 * replace directories with files and back, a directory with a symlink and a symlink with a file,
 * add hard links to lower files (also through the /usr-merge symlinks), make directories opaque,
 * change a directory's owner and mode, and add a block device and a FIFO. ferry's tree must equal
 * `umoci unpack`'s and `podman export`'s of a container created from the same image, entry by
 * entry; the flattened tar must give the same tree back; and the exported system must work:
 * `dpkg --verify` inside it (chroot) reports only what the upper layers changed.
 *
 * Runs as root (debootstrap and the owners need it). Under CI=true a missing debootstrap or
 * package tarball fails; otherwise the suite is skipped (as requireBinary does).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { runCli } from '../helpers/run-cli.js';
import { type Entry, layout, podmanTree, tree, umociTree } from './export-support.js';

/** The debootstrap package tarball .ci/run makes (DEBIAN_TARBALL overrides). */
const TARBALL = process.env['FERRY_TEST_DEBIAN_TARBALL'] ?? '/var/cache/ferry-test/bookworm-minbase.tgz';

function available(): boolean {
  const missing = [
    ...(requireBinary('debootstrap') ? [] : ['debootstrap']),
    ...(existsSync(TARBALL) ? [] : [`${TARBALL} (debootstrap --variant=minbase --make-tarball=${TARBALL} bookworm DIR http://deb.debian.org/debian; .ci/run makes it)`]),
    ...(process.getuid?.() === 0 ? [] : ['root (debootstrap and the image\'s owners need it)']),
  ];
  if (missing.length === 0) return true;
  if (process.env['CI'] === 'true') throw new Error(`the Debian export suite needs ${missing.join(', ')} under CI=true`);
  return false;
}

const UPPER: Entry[][] = [
  [
    { name: 'usr/share/doc/.wh..wh..opq' }, { name: 'usr/share/doc/README', data: 'documentation removed\n' },
    { name: 'usr/bin/.wh.perl' }, // one of a hard-linked pair (perl, perl5.36.0)
    { name: 'etc/.wh.issue.net' },
    { name: 'etc/cron.daily', data: 'a file where a directory was\n' },
    { name: 'etc/debian_version/', type: 'directory' }, { name: 'etc/debian_version/inside', data: 'a directory where a file was\n' },
    { name: 'usr/bin/awk', mode: 0o755, data: '#!/bin/sh\nexec mawk "$@"\n' }, // replaces the symlink to /etc/alternatives/awk, never writes through it
    { name: 'bin/ferry-hello', mode: 0o755, data: '#!/bin/sh\necho hello\n' }, // through the /usr-merge symlink bin -> usr/bin
    // Hard-link headers carry their targets' mode and owner, as tar writes them.
    { name: 'usr/local/bin/gunzip-again', type: 'link', linkname: 'usr/bin/gunzip', mode: 0o755 },
    { name: 'sbin/ferry-ls', type: 'link', linkname: 'bin/ls', mode: 0o755 },
    { name: 'root/passwd-link', type: 'link', linkname: 'etc/passwd' },
    { name: 'usr/local/share/GPL-3', type: 'link', linkname: 'usr/share/common-licenses/GPL-3' },
    { name: 'var/local/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
    { name: 'usr/local/bin/suid', mode: 0o4755, data: 'setuid\n' },
    { name: 'etc/apt/apt.conf.d/.wh..wh..opq' }, { name: 'etc/apt/apt.conf.d/99ferry', data: 'APT::Install-Recommends "false";\n' },
  ],
  [
    { name: 'etc/cron.daily/', type: 'directory' }, { name: 'etc/cron.daily/ferry', mode: 0o755, data: '#!/bin/sh\n' },
    { name: 'etc/debian_version', data: '12.99\n' },
    { name: 'usr/share/common-licenses/.wh.GPL-3' }, // the hard link made in layer 2 keeps the content
    { name: 'opt', type: 'symlink', linkname: 'usr/local' }, // a directory replaced by a symlink
    { name: 'usr/lib/.wh.os-release' }, // etc/os-release -> ../usr/lib/os-release now dangles
    { name: 'var/spool/ferry.fifo', type: 'fifo', mode: 0o620, gid: 8 },
    { name: 'dev/loop-ferry', type: 'block-device', devmajor: 7, devminor: 200, mode: 0o660, gid: 6 },
  ],
  [
    { name: 'opt/bin/through-opt', data: 'written through the opt symlink\n' }, // lands in usr/local/bin
    { name: 'usr/share/doc/README', data: 'replaced in layer 4\n' },
  ],
];

let work: string;
let img: string;
let lower: Record<string, string>;
let mine: Record<string, string>;
const ok = available();

beforeAll(async () => {
  if (!ok) return;
  work = mkdtempSync(join(tmpdir(), 'ferry-export-debian-'));
  const rootfs = join(work, 'debian');
  const t0 = Date.now();
  execFileSync('debootstrap', ['--variant=minbase', `--unpack-tarball=${TARBALL}`, 'bookworm', rootfs], { stdio: 'pipe', timeout: 600_000, maxBuffer: 2 ** 26 });
  const t1 = Date.now();
  lower = tree(rootfs);
  // The premises the upper layers rely on.
  expect(lower['usr/bin/perl']).toMatch(/^file .* linked=usr\/bin\/perl/);
  expect(lower['usr/bin/awk']).toMatch(/^symlink -> \/etc\/alternatives\/awk /);
  expect(lower['bin']).toMatch(/^symlink -> usr\/bin /);
  expect(lower['etc/cron.daily']).toMatch(/^dir /);
  expect(lower['usr/bin/passwd']).toMatch(/^file mode=4755 /);
  expect(lower['usr/bin/chage']).toMatch(/^file mode=2755 uid=0 gid=42 /);
  expect(lower['dev/null']).toBe('chardev 1:3 mode=666 uid=0 gid=0');
  const layer1 = join(work, 'layer1.tar');
  execFileSync('tar', ['--numeric-owner', '--format=gnu', '-C', rootfs, '--exclude=./var/cache/apt/archives/*.deb', '-cf', layer1, '.']);
  img = join(work, 'img');
  await layout(img, [readFileSync(layer1), ...UPPER]);
  rmSync(layer1);
  rmSync(rootfs, { recursive: true, force: true });
  const out = join(work, 'root');
  const t2 = Date.now();
  const r = await runCli(['export', '--json', `oci:${img}:v1`, '-o', out], { timeoutMs: 300_000 });
  expect(r.code, r.stderr).toBe(0);
  console.info(`export-debian: debootstrap ${((t1 - t0) / 1000).toFixed(1)} s, image ${((t2 - t1) / 1000).toFixed(1)} s, ferry export ${((Date.now() - t2) / 1000).toFixed(1)} s, ${Object.keys(lower).length} entries in layer 1`);
  mine = tree(out);
  const doc = JSON.parse(r.stdout) as { skipped: unknown };
  expect(doc).toMatchObject({ command: 'export', layers: 4 });
  expect(doc.skipped).toEqual({}); // as root nothing is skipped: the /dev nodes are made
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!ok)('ferry export of a debootstrapped Debian bookworm (minbase) with three layers above it', () => {
  it('gives the tree umoci unpack gives, entry by entry', () => {
    expect(mine).toEqual(umociTree(img, join(work, 'bundle')));
    // The rules, spelled out (so a shared mistake would not pass unnoticed).
    expect(Object.keys(mine).filter((k) => k.includes('.wh.'))).toEqual([]);
    expect(Object.keys(mine).filter((k) => k.startsWith('usr/share/doc/'))).toEqual(['usr/share/doc/README']);
    expect(mine['usr/bin/perl']).toBeUndefined();
    expect(mine['usr/bin/perl5.36.0']).toMatch(/^file mode=755 /);
    expect(mine['usr/bin/perl5.36.0']).not.toContain('linked=');
    expect(mine['etc/issue.net']).toBeUndefined();
    expect(mine['etc/cron.daily']).toMatch(/^dir /);
    expect(Object.keys(mine).filter((k) => k.startsWith('etc/cron.daily/'))).toEqual(['etc/cron.daily/ferry']);
    expect(mine['etc/debian_version']).toMatch(/^file .* size=6 /);
    expect(mine['etc/debian_version/inside']).toBeUndefined();
    expect(mine['usr/bin/awk']).toMatch(/^file mode=755 /);
    expect(mine['etc/alternatives/awk']).toBe(lower['etc/alternatives/awk']); // not written through
    expect(mine['usr/bin/ferry-hello']).toMatch(/^file mode=755 /);
    expect(mine['bin']).toBe(lower['bin']);
    expect(mine['usr/local/bin/gunzip-again']).toMatch(/linked=usr\/bin\/gunzip$/);
    expect(mine['usr/sbin/ferry-ls']).toMatch(/linked=usr\/bin\/ls$/);
    expect(mine['root/passwd-link']).toMatch(/linked=etc\/passwd$/);
    expect(mine['usr/share/common-licenses/GPL-3']).toBeUndefined();
    expect(mine['usr/local/share/GPL-3']).toBe(lower['usr/share/common-licenses/GPL-3']);
    expect(mine['var/local']).toBe('dir mode=700 uid=1000 gid=1000');
    expect(mine['usr/local/bin/suid']).toMatch(/^file mode=4755 uid=0 /);
    expect(mine['usr/bin/passwd']).toBe(lower['usr/bin/passwd']);
    expect(mine['usr/bin/chage']).toBe(lower['usr/bin/chage']);
    expect(Object.keys(mine).filter((k) => k.startsWith('etc/apt/apt.conf.d/'))).toEqual(['etc/apt/apt.conf.d/99ferry']);
    expect(mine['opt']).toMatch(/^symlink -> usr\/local /);
    expect(mine['usr/local/bin/through-opt']).toMatch(/^file /);
    expect(mine['etc/os-release']).toBe(lower['etc/os-release']);
    expect(mine['usr/lib/os-release']).toBeUndefined();
    expect(mine['var/spool/ferry.fifo']).toBe('fifo mode=620 uid=0 gid=8');
    expect(mine['dev/loop-ferry']).toBe('blockdev 7:200 mode=660 uid=0 gid=6');
    expect(mine['dev/null']).toBe(lower['dev/null']);
    // Everything else is layer 1 as debootstrap made it.
    const changed = new Set(Object.keys(mine).filter((k) => mine[k] !== lower[k]));
    for (const k of Object.keys(lower)) if (!(k in mine)) changed.add(k);
    const explained = /^(usr\/share\/doc|usr\/bin\/(perl|perl5\.36\.0|awk|ferry-hello|gunzip)|etc\/(issue\.net|cron\.daily|debian_version|apt\/apt\.conf\.d)|usr\/local|usr\/sbin\/ferry-ls|usr\/bin\/ls|root\/passwd-link|etc\/passwd|usr\/share\/common-licenses\/GPL-3|var\/local|opt|usr\/lib\/os-release|var\/spool\/ferry\.fifo|dev\/loop-ferry|var\/cache\/apt\/archives\/.*\.deb)(\/|$)/;
    expect([...changed].filter((k) => !explained.test(k))).toEqual([]);
  });

  it('gives the tree podman export gives for a container created from the same image', async () => {
    expect(mine).toEqual(await podmanTree(work, img, mine));
  }, 600_000);

  it('a flattened tar of it (-o x.tar) extracts to the same tree, devices and FIFOs included', async () => {
    const file = join(work, 'flat.tar');
    const r = await runCli(['export', `oci:${img}:v1`, '-o', file], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const into = mkdtempSync(join(work, 'x-'));
    execFileSync('tar', ['-xf', file, '-C', into, '--same-owner', '--numeric-owner', '-p']);
    expect(tree(into)).toEqual(mine);
    rmSync(file);
  }, 600_000);

  it('works as a Debian system: chroot runs its shell, and dpkg --verify reports only what the upper layers changed', () => {
    const root = join(work, 'root');
    expect(execFileSync('chroot', [root, '/bin/sh', '-c', 'cat /etc/debian_version; ferry-hello; /usr/local/bin/gunzip-again --version | head -1'], { encoding: 'utf8' }))
      .toMatch(/^12\.99\nhello\ngunzip \(gzip\) \d/);
    const verify = execFileSync('chroot', [root, 'dpkg', '--verify'], { encoding: 'utf8', maxBuffer: 2 ** 26 }).trim().split('\n').filter(Boolean);
    const paths = verify.map((l) => l.replace(/^\S+\s+(c\s+)?/, ''));
    expect(paths).toContain('/usr/bin/perl');
    expect(paths).toContain('/usr/share/common-licenses/GPL-3');
    expect(paths.filter((p) => !/^\/usr\/share\/doc\/|^\/usr\/bin\/(perl|awk)$|^\/etc\/(issue\.net|cron\.daily\/.*|debian_version|apt\/apt\.conf\.d\/.*)$|^\/usr\/share\/common-licenses\/GPL-3$|^\/usr\/lib\/os-release$/.test(p))).toEqual([]);
  }, 120_000);
});
