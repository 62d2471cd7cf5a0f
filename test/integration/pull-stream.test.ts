/**
 * Never damage what is at the output path, against the real registry: a pipe, a FIFO, a
 * character device, /dev/stdout and `-o -` get the archive streamed in the same bytes a file
 * gets (and stay what they were); a symlink to a file is followed (link kept, file replaced); a
 * failure mid-stream exits non-zero with a truncated tar; `--no-clobber` and "replaced"; archives
 * read from a pipe (`cat x.tar | ferry push - REF`, docker-archive:/dev/stdin, gzip'd too); and
 * the local error surface (not writable, no such file, missing directory: exit 8, never 4).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runInPty, shq } from '../helpers/pty.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';
import { pushWithSkopeo, skopeo } from '../helpers/skopeo.js';
import { blobDigests, expectArchiveStructure, readTar } from './archive-support.js';
import { expectFailure, ferryJson, type InspectDoc } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const hasPodman = has && requireBinary('podman');
const isRoot = process.getuid?.() === 0;
const KiB = 1024;

interface ShResult { code: number | null; stdout: Buffer; stderr: string }

/** Runs a bash script with $FERRY = the built CLI and an isolated environment (as runCli). */
function sh(script: string, env: Record<string, string> = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], {
      env: { PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config', NO_COLOR: '1', FERRY: `${process.execPath} ${FERRY_BIN}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(!has)('archive outputs that are not regular files, and inputs that cannot seek', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let a: OciLayoutResult;
  let app: string;
  let reference: Buffer; // the archive as written to a regular file
  let n = 0;
  const dir = (): string => {
    const d = join(work.path, `case-${++n}`);
    mkdirSync(d);
    return d;
  };

  beforeAll(async () => {
    src = makeTempDir('ps-src');
    work = makeTempDir('ps-work');
    a = await makeOciLayout(src.path, { tag: 'v1', layers: 3, layerSize: 300 * KiB, seed: 'pull-stream' });
    const broken = await makeOciLayout(src.path, { tag: 'broken', layers: 2, layerSize: 2048 * KiB, seed: 'pull-stream-broken' });
    reg = await startRegistry('open');
    app = `${reg.host}/library/app`;
    await Promise.all([pushWithSkopeo(src.path, 'v1', reg, 'library/app'), pushWithSkopeo(src.path, 'broken', reg, 'library/broken')]);
    // Same size, other bytes: the registry serves it, ferry's digest check refuses it. The
    // smallest blob goes first in the tar (largest first), so corrupt the last layer to fail late.
    const last = broken.manifests[0]!.layerDigests[1]!;
    const data = join(reg.storageDir, 'docker/registry/v2/blobs/sha256', last.slice(7, 9), last.slice(7), 'data');
    writeFileSync(data, Buffer.alloc(readFileSync(data).length, 0x5a));
    const file = join(dir(), 'ref.tar');
    expect((await sh(`$FERRY pull -q ${app}:v1 -o ${file}`)).code).toBe(0);
    reference = readFileSync(file);
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  it('-o - streams the same bytes a file gets; the summary goes to stderr', async () => {
    const r = await sh(`$FERRY pull ${app}:v1 -o - | cat`);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(r.stdout)).toBe(sha(reference));
    expect(r.stderr).toContain(`pulled ${app}:v1`);
    const file = join(dir(), 'x.tar');
    writeFileSync(file, r.stdout);
    expectArchiveStructure(await readTar(file), 'docker-archive');
    expect(existsSync(join(process.cwd(), '-'))).toBe(false);
  });

  it('ferry copy REF docker-archive:- streams too, and keeps its summary off stdout', async () => {
    const r = await sh(`$FERRY copy ${app}:v1 docker-archive:- | cat`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('copied');
    const file = join(dir(), 'x.tar');
    writeFileSync(file, r.stdout);
    expectArchiveStructure(await readTar(file), 'docker-archive');
    expect(r.stdout.subarray(-1024).every((b) => b === 0)).toBe(true); // ends with the trailer, nothing after
  });

  it('-o - into skopeo and tar: a docker-archive they read; --json with -o - is a usage error', async () => {
    const d = dir();
    const out = join(d, 'captured.tar');
    expect((await sh(`$FERRY pull -q ${app}:v1 -o - > ${out}`)).code).toBe(0);
    const inspected = await skopeo(['inspect', '--config', '--raw', `docker-archive:${out}`]);
    expect(`sha256:${sha(Buffer.from(inspected.stdout))}`).toBe(a.manifests[0]!.configDigest);
    const t = await sh(`tar -tf ${out}`);
    expect(t.stdout.toString()).toContain('manifest.json');
    const j = await sh(`$FERRY pull --json ${app}:v1 -o - | cat`);
    expect(j.code).toBe(2);
    expect(j.stderr).toContain('--json');
    expect(j.stdout.length).toBe(0);
  });

  it.skipIf(!requireBinary('script'))('-o - on a terminal is refused (exit 2) before anything is written', async () => {
    const r = await runInPty(`${shq(process.execPath)} ${shq(FERRY_BIN)} pull --progress none ${app}:v1 -o -`);
    expect(r.code).toBe(2);
    expect(r.tty).toContain('terminal');
    expect(r.tty).not.toContain('ustar');
  });

  it('a FIFO read concurrently gets the archive and is still a FIFO', async () => {
    const d = dir();
    const fifo = join(d, 'pipe');
    const r = await sh(`mkfifo ${fifo}; timeout 20 cat ${fifo} > ${d}/got.tar & $FERRY pull -q ${app}:v1 -o ${fifo}; rc=$?; wait; exit $rc`);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(sha(readFileSync(join(d, 'got.tar')))).toBe(sha(reference));
  });

  it('docker-archive:/dev/stdout redirected to a file: the file gets the archive, /dev/stdout stays', async () => {
    const d = dir();
    const before = lstatSync('/dev/stdout');
    const r = await sh(`$FERRY pull -q ${app}:v1 docker-archive:/dev/stdout > ${d}/x.tar`);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(readFileSync(join(d, 'x.tar')))).toBe(sha(reference));
    const after = lstatSync('/dev/stdout');
    expect(after.isSymbolicLink()).toBe(before.isSymbolicLink());
    expect(after.ino).toBe(before.ino);
  });

  it('a symlink to this process\'s stdout (/proc/self/fd/1) is stdout, not a file to rename over', async () => {
    const d = dir();
    symlinkSync('/proc/self/fd/1', join(d, 'out'));
    const r = await sh(`$FERRY pull -q ${app}:v1 docker-archive:${d}/out >> ${d}/x.tar`);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(join(d, 'out')).isSymbolicLink()).toBe(true);
    expect(sha(readFileSync(join(d, 'x.tar')))).toBe(sha(reference));
  });

  it.skipIf(!isRoot)('a character device made with mknod (like /dev/null) is written to and stays a device', async () => {
    const d = dir();
    const dev = join(d, 'null');
    const r = await sh(`mknod ${dev} c 1 3 && $FERRY pull ${app}:v1 -o ${dev}`);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(dev).isCharacterDevice()).toBe(true);
    expect(statSync(dev).rdev).toBe(statSync('/dev/null').rdev);
  });

  it('a symlink to a regular file: the file is replaced, the link stays, the summary says "replaced"', async () => {
    const d = dir();
    writeFileSync(join(d, 'real.tar'), 'old');
    symlinkSync('real.tar', join(d, 'link.tar'));
    const r = await sh(`$FERRY pull ${app}:v1 -o ${d}/link.tar`);
    expect(r.code, r.stderr).toBe(0);
    expect(readlinkSync(join(d, 'link.tar'))).toBe('real.tar');
    expect(sha(readFileSync(join(d, 'real.tar')))).toBe(sha(reference));
    expect(r.stdout.toString()).toContain('replaced');
    const fresh = await sh(`$FERRY pull ${app}:v1 -o ${d}/new.tar`);
    expect(fresh.stdout.toString()).not.toContain('replaced');
  });

  it('--no-clobber refuses an existing file before downloading (exit 2), and writes a new one', async () => {
    const d = dir();
    writeFileSync(join(d, 'x.tar'), 'keep me');
    const r = await runCli(['pull', '--no-clobber', `${app}:v1`, '-o', join(d, 'x.tar')]);
    expectFailure(r, 2, 'already exists', '--no-clobber');
    expect(readFileSync(join(d, 'x.tar'), 'utf8')).toBe('keep me');
    const ok = await sh(`$FERRY pull -q --no-clobber ${app}:v1 -o ${d}/y.tar`);
    expect(ok.code, ok.stderr).toBe(0);
    expect(sha(readFileSync(join(d, 'y.tar')))).toBe(sha(reference));
  });

  it('a blob that fails verification mid-stream: non-zero exit, the consumer gets a truncated tar', async () => {
    const d = dir();
    const r = await sh(`$FERRY pull ${reg.host}/library/broken:broken -o - > ${d}/x.tar`);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/digest/i);
    const got = readFileSync(join(d, 'x.tar'));
    // The stream had started (directories, oci-layout, the blobs before the bad one)…
    expect(got.subarray(0, 6).toString()).toBe('blobs/');
    // No trailer, and no index.json / manifest.json (they come after every blob).
    expect(got.length % 512 === 0 && got.subarray(-1024).every((b) => b === 0) && got.length >= 1024).toBe(false);
    expect(got.includes(Buffer.from('manifest.json'))).toBe(false);
  });

  it('cat x.tar | ferry push - REF, docker-archive:/dev/stdin, and gzip on stdin (--debug says it was copied)', async () => {
    const d = dir();
    writeFileSync(join(d, 'x.tar'), reference);
    const p1 = await sh(`cat ${d}/x.tar | $FERRY push --debug - ${reg.host}/piped/one:v1`);
    expect(p1.code, p1.stderr).toBe(0);
    expect(p1.stderr).toMatch(/cannot seek: copied \d+ bytes/);
    const p2 = await sh(`cat ${d}/x.tar | $FERRY push docker-archive:/dev/stdin ${reg.host}/piped/two:v1`);
    expect(p2.code, p2.stderr).toBe(0);
    const p3 = await sh(`gzip -c ${d}/x.tar | $FERRY push - ${reg.host}/piped/three:v1`);
    expect(p3.code, p3.stderr).toBe(0);
    for (const repo of ['one', 'two', 'three']) {
      const doc = await ferryJson<InspectDoc>(['inspect', `${reg.host}/piped/${repo}:v1`]);
      expect(doc.config?.digest).toBe(a.manifests[0]!.configDigest);
      expect(doc.layers?.map((l) => l.digest).sort()).toEqual(blobDigests(await readTar(join(d, 'x.tar'))).filter((x) => a.manifests[0]!.layerDigests.includes(x)).sort());
    }
  });

  it('local problems: /proc is "not writable", a missing input is "no such file", a missing directory — all exit 8', async () => {
    expectFailure(await runCli(['pull', `${app}:v1`, '-o', '/proc/ferry-test.tar']), 8, 'not writable');
    const missing = await runCli(['push', 'nonexist.tar', `${app}:v2`], { cwd: work.path });
    expectFailure(missing, 8, 'no such file: nonexist.tar');
    expect(missing.stderr).not.toContain('registry reference');
    expectFailure(await runCli(['pull', `${app}:v1`, '-o', join(work.path, 'nope', 'x.tar')]), 8, 'does not exist');
  });

  it.skipIf(!hasPodman)('ferry pull -o - | podman load', async () => {
    const d = dir();
    const store = `--storage-driver vfs --root ${d}/root --runroot ${d}/run`;
    const r = await sh(`$FERRY pull -q ${app}:v1 -o - | podman ${store} load && podman ${store} image inspect --format '{{.Id}}' ${app}:v1`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString().trim().split('\n').pop()).toBe(a.manifests[0]!.configDigest.slice(7));
  });
});
