/**
 * `ferry export` of device nodes and FIFOs, and as a user other than root.
 *
 * As root (the suite's user), character and block devices and FIFOs are made (mknod) with their
 * major/minor, mode and owner — also replacing earlier entries, through a symlinked parent and
 * hard-linked — giving umoci unpack's tree; a tar export holds them as device entries. As
 * `nobody` (setpriv), the same image exports with every entry the caller's, modes kept but for
 * setuid/setgid, directories read-only in the image still filled by later layers, the devices
 * skipped and counted (FIFOs made: no privilege is needed for them).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';
import { type Entry, layout, tree, umociTree } from './export-support.js';

const NOBODY = 65534;

const LAYERS: Entry[][] = [
  [
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
    { name: 'dev/big', type: 'character-device', devmajor: 300, devminor: 65537, mode: 0o600, uid: 1000 }, // past the old 8-bit encoding (tar-stream writes at most 6 octal digits)
    { name: 'dev/fifo', type: 'fifo', mode: 0o640, uid: 1000, gid: 1000 },
    { name: 'dev/replaced', data: 'a file first' },
    { name: 'devlink', type: 'symlink', linkname: 'dev' },
    { name: 'escape', type: 'symlink', linkname: '/tmp/ferry-export-special-canary' },
    { name: 'bin/', type: 'directory' },
    { name: 'bin/suid', mode: 0o4755, data: 'setuid' }, { name: 'bin/sgid', mode: 0o2711, uid: 0, gid: 42, data: 'setgid' },
    { name: 'bin/secret', mode: 0o400, data: 'read-only' }, { name: 'bin/none', mode: 0o000, data: '' },
    { name: 'shared/', type: 'directory', mode: 0o2775, gid: 50 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'ro/', type: 'directory', mode: 0o555 }, { name: 'ro/a', data: 'a' },
    { name: 'home/', type: 'directory' }, { name: 'home/u/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 }, { name: 'home/u/f', uid: 1000, gid: 1000, data: 'f' },
    { name: 'link-target', data: 'target' },
  ],
  [
    { name: 'dev/replaced', type: 'character-device', devmajor: 1, devminor: 5, mode: 0o666 }, // a file replaced by a device
    { name: 'dev/.wh.loop0' }, { name: 'dev/loop0', type: 'fifo', mode: 0o600 }, // a device whited out, a FIFO in its place
    { name: 'devlink/tty', type: 'character-device', devmajor: 5, devminor: 0, mode: 0o666, gid: 5 }, // through the symlinked parent: dev/tty
    { name: 'escape', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o644 }, // replaces the symlink, never made at its target
    { name: 'dev/null-link', type: 'link', linkname: 'dev/null', mode: 0o666 }, // a hard link to a lower layer's device
    { name: 'ro/b', data: 'b into a read-only directory' },
    { name: 'bin/secret-link', type: 'link', linkname: 'bin/secret', mode: 0o400 },
    { name: 'shared/sub/', type: 'directory', mode: 0o2755, gid: 50 },
  ],
];

/** bin/ferry as nobody (setpriv), in `cwd`, with runCli's isolation from this machine's config. */
function asNobody(cwd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, FERRY_BIN, ...args], {
      env: { PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', XDG_CONFIG_HOME: '/nonexistent-ferry-test-xdg-config', XDG_RUNTIME_DIR: '/nonexistent-ferry-test-xdg', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config', FERRY_SYSCONF_ROOT: '/nonexistent-ferry-test-sysconf', FERRY_SYSTEM_CERTS_D: '', NO_COLOR: '1' },
      cwd, timeout: 120_000,
    }, (e, stdout, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr }));
  });
}

let work: string;
let img: string;
let asRoot: Record<string, string>;

beforeAll(async () => {
  requireBinary('umoci');
  requireBinary('setpriv');
  if (process.getuid?.() !== 0 && process.env['CI'] === 'true') throw new Error('the export-special suite runs as root under CI=true (it makes device nodes and runs ferry as nobody)');
  work = mkdtempSync(join(tmpdir(), 'ferry-export-special-'));
  chmodSync(work, 0o755); // nobody reads the image from here
  img = join(work, 'img');
  await layout(img, LAYERS);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
  rmSync('/tmp/ferry-export-special-canary', { force: true });
});

describe.skipIf(process.getuid?.() !== 0 && process.env['CI'] !== 'true')('ferry export: device nodes and FIFOs, as root and as nobody', () => {
  it('as root makes character and block devices and FIFOs (type, major:minor, mode, owner): the tree umoci unpack gives', async () => {
    const out = join(work, 'root');
    const r = await runCli(['export', '--json', `oci:${img}:v1`, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    asRoot = tree(out);
    expect(asRoot).toEqual(umociTree(img, join(work, 'bundle')));
    expect(asRoot['dev/null']).toBe('chardev 1:3 mode=666 uid=0 gid=0 linked=dev/null');
    expect(asRoot['dev/null-link']).toBe('chardev 1:3 mode=666 uid=0 gid=0 linked=dev/null');
    expect(asRoot['dev/big']).toBe('chardev 300:65537 mode=600 uid=1000 gid=0');
    expect(asRoot['dev/fifo']).toBe('fifo mode=640 uid=1000 gid=1000');
    expect(asRoot['dev/loop0']).toBe('fifo mode=600 uid=0 gid=0');
    expect(asRoot['dev/replaced']).toBe('chardev 1:5 mode=666 uid=0 gid=0');
    expect(asRoot['dev/tty']).toBe('chardev 5:0 mode=666 uid=0 gid=5');
    expect(asRoot['devlink']).toMatch(/^symlink -> dev /);
    expect(asRoot['escape']).toBe('chardev 1:3 mode=644 uid=0 gid=0');
    expect(existsSync('/tmp/ferry-export-special-canary')).toBe(false);
    const doc = JSON.parse(r.stdout) as { skipped: unknown };
    expect(doc.skipped).toEqual({});
  });

  it('a tar export holds them as device and FIFO entries (GNU tar lists and extracts them)', async () => {
    const file = join(work, 'devs.tar');
    const r = await runCli(['export', `oci:${img}:v1`, '-o', file]);
    expect(r.code, r.stderr).toBe(0);
    const listed = execFileSync('tar', ['-tvf', file, '--numeric-owner'], { encoding: 'utf8' });
    expect(listed).toMatch(/^crw-rw-rw- 0\/0 +1,3 .* dev\/null$/m);
    expect(listed).toMatch(/^crw------- 1000\/0 +300,65537 .* dev\/big$/m);
    expect(listed).toMatch(/^prw-r----- 1000\/1000 .* dev\/fifo$/m);
    expect(listed).toMatch(/^hrw-rw-rw- 0\/0 .* dev\/null-link link to dev\/null$/m);
    const into = mkdtempSync(join(work, 'x-'));
    execFileSync('tar', ['-xf', file, '-C', into, '--same-owner', '--numeric-owner', '-p']);
    expect(tree(into)).toEqual(asRoot);
    const blocks = join(work, 'blocks.tar');
    await layout(join(work, 'img-b'), [[{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 }]]);
    expect((await runCli(['export', `oci:${join(work, 'img-b')}:v1`, '-o', blocks])).code).toBe(0);
    expect(execFileSync('tar', ['-tvf', blocks, '--numeric-owner'], { encoding: 'utf8' })).toMatch(/^brw-rw---- 0\/6 +8,0 .* sda$/m);
  });

  it('as nobody: every entry is the caller\'s, setuid/setgid dropped, other mode bits kept, devices skipped and counted, FIFOs made', async () => {
    expect(asRoot, 'the root export ran').toBeDefined();
    const parent = join(work, 'nobody-out');
    mkdirSync(parent, { mode: 0o755 });
    chownSync(parent, NOBODY, NOBODY);
    const r = await asNobody(parent, ['export', '--json', `oci:${img}:v1`, '-o', join(parent, 'root')]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { skipped: unknown }).skipped).toEqual({ device: 7 }); // 6 device entries and a hard link to one
    // One warning line on stderr, with --json too (stdout holds only the JSON document).
    expect(r.stderr.match(/skipped 7 device nodes: creating them needs root/g)).toHaveLength(1);
    const mine = tree(join(parent, 'root'));
    // The root export's tree, as the caller's, without the set-id bits and the device nodes.
    const expected: Record<string, string> = {};
    for (const [k, v] of Object.entries(asRoot)) {
      if (/^(chardev|blockdev) /.test(v)) continue;
      expected[k] = v
        .replace(/mode=(\d+)/, (_m, o: string) => `mode=${(parseInt(o, 8) & ~0o6000).toString(8)}`)
        .replace(/uid=\d+ gid=\d+/, `uid=${NOBODY} gid=${NOBODY}`);
    }
    expect(mine).toEqual(expected);
    expect(mine['bin/suid']).toMatch(/^file mode=755 /);
    expect(mine['bin/sgid']).toMatch(/^file mode=711 /);
    expect(mine['shared']).toMatch(/^dir mode=775 /);
    expect(mine['tmp']).toMatch(/^dir mode=1777 /);
    expect(mine['ro']).toMatch(/^dir mode=555 /);
    expect(mine['ro/b']).toMatch(/^file /);
    expect(mine['bin/secret-link']).toMatch(/^file mode=400 .*linked=bin\/secret/);
    expect(mine['dev/fifo']).toBe(`fifo mode=640 uid=${NOBODY} gid=${NOBODY}`);
    expect(Object.keys(mine).filter((k) => /^(dev\/(null|big|replaced|tty|null-link)|escape)$/.test(k))).toEqual([]);
    // The human summary names the count once.
    const human = await asNobody(parent, ['export', `oci:${img}:v1`, '-o', join(parent, 'root2')]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.match(/skipped 7 devices/g)).toHaveLength(1);
    expect(human.stderr.match(/skipped 7 device nodes: creating them needs root/g)).toHaveLength(1);
    expect(readdirSync(parent).sort()).toEqual(['root', 'root2']);
  });

  // rm alone cannot empty the image's read-only directories (finish() applied their modes) when
  // not root: ops/export.ts removes the staged tree with removeTree.
  it('as nobody, a tar export leaves no staged tree behind (read-only directories in the image)', async () => {
    const parent = join(work, 'nobody-tar');
    mkdirSync(parent, { mode: 0o755 });
    chownSync(parent, NOBODY, NOBODY);
    const r = await asNobody(parent, ['export', `oci:${img}:v1`, '-o', join(parent, 'flat.tar')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(parent)).toEqual(['flat.tar']);
  });

  it('as nobody, a dead export\'s staging tree with read-only directories (killed while packing) is removed by the next export', async () => {
    const parent = join(work, 'nobody-dead');
    mkdirSync(parent, { mode: 0o755 });
    chownSync(parent, NOBODY, NOBODY);
    const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const dead = spawnSync('true').pid!; // exited: its pid is free
    const stage = join(parent, `.flat.tar.${hostTag}-${dead}.0badc0de.partial`);
    mkdirSync(join(stage, 'ro', 'sub'), { recursive: true });
    writeFileSync(join(stage, 'ro', 'sub', 'f'), 'x');
    for (const p of [stage, join(stage, 'ro'), join(stage, 'ro', 'sub'), join(stage, 'ro', 'sub', 'f')]) chownSync(p, NOBODY, NOBODY);
    chmodSync(join(stage, 'ro', 'sub'), 0o555);
    chmodSync(join(stage, 'ro'), 0o555);
    const r = await asNobody(parent, ['export', `oci:${img}:v1`, '-o', join(parent, 'flat.tar')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(parent)).toEqual(['flat.tar']);
  });
});
