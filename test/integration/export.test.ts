/**
 * `ferry export` against `umoci unpack` (the reference for the OCI layer rules): a three-layer
 * image with whiteouts, an opaque directory, a hard link to a lower-layer file, a file written
 * through a symlinked directory, a directory replaced by a file and back, a long name and an
 * empty file; the two trees must match entry by entry (type, mode, owner, size, content, link
 * target, hard-link grouping). Hostile layers are refused with nothing written outside the root.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';

interface Entry { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; mode?: number; data?: string | Buffer; linkname?: string; uid?: number; gid?: number }

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const { pack } = (await import('tar-stream')) as unknown as { pack: () => NodeJS.ReadableStream & { entry: (h: object, d?: Buffer | string) => void; finalize: () => void } };
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    p.entry({ name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date(946684800000), ...(e.linkname ? { linkname: e.linkname } : {}) }, type === 'file' ? (e.data ?? '') : undefined);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A statically linked busybox (Debian busybox-static) to run inside an exported root. */
function requireBusybox(): string {
  requireBinary('busybox');
  const p = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  if (!execFileSync('file', ['-L', p], { encoding: 'utf8' }).includes('statically linked')) throw new Error(`${p} is not statically linked: apt-get install busybox-static`);
  return p;
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** An OCI layout with one image whose layers are these tars (gzip-compressed). */
async function layout(dir: string, layers: Entry[][], compression: 'gzip' | 'zstd' = 'gzip'): Promise<void> {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const d = sha(b);
    writeFileSync(join(dir, 'blobs', 'sha256', d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const tars = await Promise.all(layers.map(tarOf));
  const compress = (t: Buffer): Buffer => (compression === 'gzip' ? gzipSync(t) : execFileSync('zstd', ['-q', '-c', '-'], { input: t }));
  const ls = tars.map((t) => ({ mediaType: `application/vnd.oci.image.layer.v1.tar+${compression}`, ...put(compress(t)) }));
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: tars.map((t) => `sha256:${sha(t)}`) }, config: {} })));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: ls })));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

/** Every entry under `root`: type, mode, owner, size, content hash, link target, hard-link group. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      const base = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) {
        out[r] = `dir ${base}`;
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `symlink -> ${readlinkSync(p)}`;
      else {
        const group = st.nlink > 1 ? (inodes.get(st.ino) ?? (inodes.set(st.ino, r), r)) : '';
        out[r] = `file ${base} size=${st.size} sha=${sha(readFileSync(p)).slice(0, 16)}${group ? ` linked=${group}` : ''}`;
      }
    }
  };
  walk('');
  return out;
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
    execFileSync('umoci', ['unpack', '--image', `${join(work, 'img')}:v1`, join(work, 'bundle')], { stdio: 'pipe' });
    const mine = tree(out);
    const theirs = tree(join(work, 'bundle', 'rootfs'));
    expect(mine).toEqual(theirs);
    // The rules, spelled out (so a shared mistake would not pass unnoticed).
    expect(mine['etc/passwd']).toBeUndefined();
    expect(Object.keys(mine).filter((k) => k.includes('.wh.'))).toEqual([]);
    expect(Object.keys(mine).filter((k) => k.startsWith('opt/old/'))).toEqual(['opt/old/c']);
    expect(mine['usr/bin/newtool']).toMatch(/^file /);
    expect(mine['bin']).toBe('symlink -> usr/bin');
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
    requireBinary('podman');
    const store = mkdtempSync(join(work, 'podman-'));
    const conf = join(store, 'registries.conf');
    writeFileSync(conf, 'unqualified-search-registries = []\n');
    const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: conf, XDG_RUNTIME_DIR: join(store, 'xdg') };
    mkdirSync(join(store, 'xdg'));
    const podman = (...args: string[]): string => execFileSync('podman', ['--storage-driver', 'vfs', '--root', join(store, 'root'), '--runroot', join(store, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const archive = join(store, 'img.tar');
    const cp = await runCli(['copy', `oci:${join(work, 'img')}:v1`, `docker-archive:${archive}:localhost/exported:v1`]);
    expect(cp.code, cp.stderr).toBe(0);
    podman('load', '-q', '-i', archive);
    const id = podman('create', 'localhost/exported:v1', '/bin/true').trim();
    podman('export', '-o', join(store, 'c.tar'), id);
    const into = join(store, 'rootfs');
    mkdirSync(into);
    execFileSync('tar', ['-xf', join(store, 'c.tar'), '-C', into, '--same-owner', '--numeric-owner', '-p']);
    const theirs = tree(into);
    // What podman adds to every container (mount points and files it manages), not the image's.
    const runtime = Object.keys(theirs).filter((k) => !(k in tree(join(work, 'root'))));
    console.info(`export vs podman: podman adds ${JSON.stringify(runtime)}`);
    for (const k of runtime) expect(k, 'only runtime mount points and files').toMatch(/^(dev|proc|sys|run|etc\/(hosts|hostname|resolv\.conf)|\.containerenv)(\/|$)/);
    for (const k of runtime) delete theirs[k];
    const mine = tree(join(work, 'root'));
    expect(mine).toEqual(theirs);
    podman('rm', '-f', id);
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
