/**
 * `ferry export` from every kind of source (an OCI layout, an oci-archive, a docker-archive, a
 * registry through the cache), with uncompressed layers, picking a platform from an index, with
 * no SquashFS tool on PATH, and with hostile layers whose effect a symlink would redirect: an
 * absolute `etc -> /etc` followed by `etc/passwd`, and whiteouts under symlinks that point out of
 * the root. Nothing outside the export's root is ever touched.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Entry, layout, tree, umociTree } from './export-support.js';
import { makeOciLayout } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';

const LAYERS: Entry[][] = [
  [{ name: 'etc/', type: 'directory' }, { name: 'etc/os-release', data: 'ID=test\n' }, { name: 'bin/', type: 'directory' }, { name: 'bin/sh', mode: 0o755, data: 'sh' }, { name: 'old', data: 'old' }],
  [{ name: '.wh.old' }, { name: 'etc/hostname', data: 'box\n' }, { name: 'bin/sh2', type: 'link', linkname: 'bin/sh', mode: 0o755 }],
];

let work: string;
let reference: Record<string, string>;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-export-src-'));
  await layout(join(work, 'img'), LAYERS);
  const r = await runCli(['export', `oci:${join(work, 'img')}:v1`, '-o', join(work, 'ref')]);
  expect(r.code, r.stderr).toBe(0);
  reference = tree(join(work, 'ref'));
  expect(Object.keys(reference).sort()).toEqual(['bin', 'bin/sh', 'bin/sh2', 'etc', 'etc/hostname', 'etc/os-release']);
}, 60_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('ferry export sources', () => {
  it.each(['oci-archive', 'docker-archive'])('from a %s: the same tree as from the layout', async (kind) => {
    const archive = join(work, `img-${kind}.tar`);
    const cp = await runCli(['copy', `oci:${join(work, 'img')}:v1`, kind === 'docker-archive' ? `${kind}:${archive}:localhost/x:v1` : `${kind}:${archive}:v1`]);
    expect(cp.code, cp.stderr).toBe(0);
    const out = join(work, `from-${kind}`);
    const r = await runCli(['export', `${kind}:${archive}`, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(tree(out)).toEqual(reference);
  });

  it('from a registry (the real one), through a new cache: the same tree, and the JSON names the source and digest', async () => {
    let reg: RealRegistry | undefined;
    try {
      reg = await startRegistry('open');
      const push = await runCli(['copy', `oci:${join(work, 'img')}:v1`, `${reg.host}/export/src:v1`]);
      expect(push.code, push.stderr).toBe(0);
      const out = join(work, 'from-registry');
      const r = await runCli(['export', '--json', '--cache-dir', join(work, 'cache'), `${reg.host}/export/src:v1`, '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { source: string; digest: string; files: number; hardlinks: number; whiteouts: number };
      expect(doc).toMatchObject({ source: `${reg.host}/export/src:v1`, files: 4, hardlinks: 1, whiteouts: 1 });
      const inspect = await runCli(['inspect', '--raw', `oci:${join(work, 'img')}:v1`]);
      expect(doc.digest).toBe(`sha256:${createHash('sha256').update(inspect.stdout).digest('hex')}`);
      expect(tree(out)).toEqual(reference);
    } finally {
      await reg?.stop();
    }
  }, 60_000);

  it('uncompressed layers give the same tree as gzip ones', async () => {
    await layout(join(work, 'plain'), LAYERS, 'none');
    const out = join(work, 'from-plain');
    const r = await runCli(['export', `oci:${join(work, 'plain')}:v1`, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(tree(out)).toEqual(reference);
  });

  it('GNU long names and long link targets (tar --format=gnu: ././@LongLink L and K records) give umoci unpack\'s tree', async () => {
    const src = mkdtempSync(join(work, 'gnu-src-'));
    const deep = `${'a-rather-long-directory-name/'.repeat(5)}and-a-file-name-well-past-the-hundred-bytes-of-ustar.txt`;
    mkdirSync(join(src, dirname(deep)), { recursive: true });
    writeFileSync(join(src, deep), 'long\n');
    symlinkSync(deep, join(src, 'long-link'));
    linkSync(join(src, deep), join(src, `hard-${'x'.repeat(120)}`));
    const tar = execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '-C', src, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
    expect(tar.includes(Buffer.from('././@LongLink'))).toBe(true);
    await layout(join(work, 'gnu'), [tar]);
    const out = join(work, 'from-gnu');
    const r = await runCli(['export', `oci:${join(work, 'gnu')}:v1`, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const mine = tree(out);
    expect(mine[deep]).toMatch(/^file /);
    expect(mine['long-link']).toBe(`symlink -> ${deep} uid=0 gid=0`);
    expect(mine).toEqual(umociTree(join(work, 'gnu'), join(work, 'gnu-bundle')));
  });

  it('--platform picks the image from an index; a platform it lacks is an error naming what it has', async () => {
    const img = await makeOciLayout(join(work, 'multi'), { tag: 'v1', layers: 1, platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    for (const m of img.manifests) {
      const r = await runCli(['export', '--json', '--platform', `${m.platform.os}/${m.platform.architecture}`, `oci:${img.dir}:v1`, '-o', join(work, `plat-${m.platform.architecture}`)]);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { digest: string }).digest).toBe(m.digest);
    }
    const bad = await runCli(['export', '--platform', 'linux/s390x', `oci:${img.dir}:v1`, '-o', join(work, 'plat-none')]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/linux\/s390x/);
    expect(bad.stderr).toMatch(/linux\/amd64/);
    expect(existsSync(join(work, 'plat-none'))).toBe(false);
  });

  it('to .sqfs with neither mksquashfs nor tar2sqfs on PATH: E_UNSUPPORTED naming both, before anything is written', async () => {
    const dir = mkdtempSync(join(work, 'nosq-'));
    const r = await runCli(['export', `oci:${join(work, 'img')}:v1`, '-o', join(dir, 'x.sqfs')], { env: { PATH: join(dir, 'empty-path') } });
    expect(r.code, r.stderr).toBe(7); // E_UNSUPPORTED
    expect(r.stderr).toMatch(/mksquashfs \(Debian: squashfs-tools\) or tar2sqfs \(squashfs-tools-ng\)/);
    expect(r.stderr).toMatch(/hint: apt-get install squashfs-tools/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('ferry export: symlinks never redirect a write or a whiteout out of the root', () => {
  it('an absolute "etc -> /etc" then "etc/passwd": the host\'s /etc/passwd is untouched', async () => {
    const before = sha('/etc/passwd');
    const dir = mkdtempSync(join(work, 'abs-etc-'));
    await layout(join(dir, 'img'), [[{ name: 'etc', type: 'symlink', linkname: '/etc' }], [{ name: 'etc/passwd', data: 'pwned::0:0::/:/bin/sh\n' }]]);
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'root')]);
    expect(sha('/etc/passwd')).toBe(before);
    expect(readFileSync('/etc/passwd', 'utf8')).not.toContain('pwned');
    // The link points at itself inside the root: a loop, refused, naming the entry.
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/layer 2\/2 \(sha256:[0-9a-f]{64}\): refused entry "etc\/passwd": too many symbolic links/);
    expect(readdirSync(dir)).toEqual(['img']);
  });

  it('an absolute symlink to a real directory outside, then a file and a whiteout through it: both land inside the root', async () => {
    const dir = mkdtempSync(join(work, 'abs-victim-'));
    const victim = join(dir, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'keep'), 'keep');
    await layout(join(dir, 'img'), [
      [{ name: `${victim.slice(1)}/`, type: 'directory' }, { name: `${victim.slice(1)}/keep`, data: 'inside' }, { name: 'v', type: 'symlink', linkname: victim }],
      [{ name: 'v/.wh.keep' }, { name: 'v/new', data: 'new' }],
    ]);
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'root')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(victim)).toEqual(['keep']); // the host's directory: as it was
    expect(readFileSync(join(victim, 'keep'), 'utf8')).toBe('keep');
    const t = tree(join(dir, 'root'));
    expect(t[`${victim.slice(1)}/new`]).toMatch(/^file /);
    expect(t[`${victim.slice(1)}/keep`]).toBeUndefined(); // whited out inside the root
  });

  it('a whiteout under a relative symlink that climbs out of the root is refused; the file outside stays', async () => {
    const dir = mkdtempSync(join(work, 'rel-victim-'));
    writeFileSync(join(dir, 'victim'), 'victim');
    await layout(join(dir, 'img'), [[{ name: 'up', type: 'symlink', linkname: '../../..' }], [{ name: 'up/.wh.victim' }]]);
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'a', 'b', 'root')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/layer 2\/2 \(sha256:[0-9a-f]{64}\): refused entry "up\/\.wh\.victim": a symbolic link on its path leads outside the image/);
    expect(readFileSync(join(dir, 'victim'), 'utf8')).toBe('victim');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual([]);
  });
});
