/**
 * What scripts rely on, against the real distribution registry: every command's --json document
 * matches the field lists of docs/json.md; a failure with --json prints the error document on
 * stdout with the exit status it states; local problems never exit 4; a closed stdout ends ferry
 * quietly (141), never with a stack trace.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { freePort, startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';
import { documentedExitCodes, expectDocument, expectErrorDocument } from './json-contract.js';
import { expectFailure, ferryJson, type InspectDoc, type TransferDoc } from './support.js';
import { exitCodeFor, type ErrorCode } from '../../src/errors.js';

const has = requireBinary('docker-registry');

/** Runs bin/ferry with its stdout (or stderr) pipe closed before it writes a byte. */
function runClosed(args: string[], which: 'stdout' | 'stderr' = 'stdout'): Promise<{ code: number | null; signal: NodeJS.Signals | null; other: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], {
      env: { PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child[which].destroy(); // the reader is gone: every write ferry makes there fails with EPIPE
    let other = '';
    child[which === 'stdout' ? 'stderr' : 'stdout'].setEncoding('utf8').on('data', (d: string) => (other += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject).on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, other });
    });
  });
}

describe.skipIf(!has)('the --json contract, exit statuses and closed pipes (real registry)', () => {
  let reg: RealRegistry;
  let work: TempDir;
  let single: OciLayoutResult;
  let multi: OciLayoutResult;
  let n = 0;
  const dir = (): string => {
    const d = join(work.path, `case-${++n}`);
    mkdirSync(d);
    return d;
  };

  beforeAll(async () => {
    work = makeTempDir('cli-contract');
    reg = await startRegistry('open');
    single = await makeOciLayout(join(work.path, 'single'), { tag: 'v1', seed: 'contract-single', layers: 2 });
    multi = await makeOciLayout(join(work.path, 'multi'), {
      tag: 'multi', seed: 'contract-multi', layers: 1,
      platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    });
    for (const [from, tag] of [[`oci:${single.dir}:v1`, 'v1'], [`oci:${multi.dir}:multi`, 'multi']] as const) {
      const r = await runCli(['push', '-q', from, `${reg.host}/contract/app:${tag}`]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    work?.remove();
  });

  it('every command\'s --json document has the fields docs/json.md lists for it, under the same names', async () => {
    const app = `${reg.host}/contract/app`;
    const [push, pushIdx] = await Promise.all([
      ferryJson<TransferDoc>(['push', '-q', `oci:${single.dir}:v1`, `${reg.host}/contract/pushed:v1`]),
      ferryJson<TransferDoc>(['push', '-q', `oci:${multi.dir}:multi`, `${reg.host}/contract/pushed:multi`]),
    ]);
    expectDocument(push, 'push');
    expectDocument(pushIdx, 'push');
    expect(push.images[0]).toMatchObject({ source: `oci:${single.dir}:v1`, digest: single.digest, sourceDigest: single.digest, manifests: 1 });
    expect(push.destination).toBe(`${reg.host}/contract/pushed:v1`);
    expect(push.bytesPerSecond).toBeGreaterThan(0); // push has a rate, as pull and copy
    expect(pushIdx.images[0]!.manifests).toBe(3);

    const [image, index, picked, tags] = await Promise.all([
      ferryJson<InspectDoc>(['inspect', `${app}:v1`]),
      ferryJson<InspectDoc>(['inspect', `${app}:multi`]),
      ferryJson<InspectDoc>(['inspect', '--platform', 'linux/arm64', `${app}:multi`]),
      ferryJson(['tags', app]),
    ]);
    for (const d of [image, index, picked]) expectDocument(d, 'inspect');
    expect(image).toMatchObject({ source: `${app}:v1`, digest: single.digest, manifests: 1 });
    expect(index.manifests).toBe(3); // a count everywhere: the index and its two entries
    expect(index.children?.map((c) => c.platform)).toEqual(['linux/amd64', 'linux/arm64/v8']);
    expect(picked).toMatchObject({ manifests: 1, platform: 'linux/arm64/v8', index: { digest: multi.indexDigest } });
    expectDocument(tags, 'tags');
    expect(tags).toMatchObject({ source: app, tags: expect.arrayContaining(['v1', 'multi']) as unknown });

    const [one, two] = await Promise.all([
      ferryJson<TransferDoc>(['pull', '-q', `${app}:v1`, `oci:${dir()}`]),
      ferryJson<TransferDoc>(['pull', '-q', '--platform', 'linux/amd64', `${app}:v1`, `${app}:multi`, '-o', join(dir(), 'two.tar')]),
    ]);
    expectDocument(one, 'pull');
    expectDocument(two, 'pull');
    expect(one.images.map((i) => i.digest)).toEqual([single.digest]);
    expect(two.images.map((i) => i.source)).toEqual([`${app}:v1`, `${app}:multi`]);
    expect(two.images[1]).toMatchObject({ platform: 'linux/amd64', sourceDigest: multi.indexDigest });
    expect(two).not.toHaveProperty('digest'); // no image repeated at the top level

    const copied = await ferryJson<TransferDoc>(['cp', '-q', '--tag', 'also', `${app}:v1`, `${reg.host}/contract/copy:v1`]);
    expectDocument(copied, 'copy'); // an alias reports its command
    expect(copied.images[0]).toMatchObject({ digest: single.digest, tags: ['v1', 'also'] });

    const tagged = await ferryJson(['tag', `${app}:v1`, 'v1-again']);
    expectDocument(tagged, 'tag');
    expect(tagged).toMatchObject({ source: `${app}:v1`, digest: single.digest, tags: ['v1-again'] });
    const deleted = await ferryJson(['rm', `${reg.host}/contract/copy:also`]);
    expectDocument(deleted, 'delete');
    expect(deleted).toMatchObject({ source: `${reg.host}/contract/copy:also`, digest: single.digest, resolvedFromTag: true });
  });

  it('every error code is in docs/json.md with the exit status ferry uses', () => {
    const src = readFileSync(new URL('../../src/errors.ts', import.meta.url), 'utf8');
    const union = src.slice(src.indexOf('export type ErrorCode'), src.indexOf(';', src.indexOf('export type ErrorCode')));
    const codes = [...union.matchAll(/'(E_[A-Z_]+)'/g)].map((m) => m[1]! as ErrorCode);
    expect(codes.length).toBeGreaterThan(15);
    const documented = documentedExitCodes();
    expect([...documented.keys()].sort()).toEqual([...codes].sort());
    for (const c of codes) expect(documented.get(c), c).toBe(exitCodeFor(c));
  });

  it('failures with --json: the error document on stdout (usage, not found, network), exit status = error.exitCode', async () => {
    const closed = await freePort();
    const [unknownOpt, missingArg, usage, notFound, network, noJson] = await Promise.all([
      runCli(['--json', 'pull', '--no-such-flag', `${reg.host}/contract/app:v1`, `oci:${dir()}`]),
      runCli(['tag', '--json']),
      runCli(['pull', '--json', `${reg.host}/contract/app:v1`]),
      runCli(['inspect', '--json', `${reg.host}/contract/nope:v1`]),
      runCli(['ls', '--json', `127.0.0.1:${closed}/contract/app`]),
      runCli(['inspect', `${reg.host}/contract/nope:v1`]),
    ]);
    expectFailure(unknownOpt, 2, 'unknown option');
    expectErrorDocument(unknownOpt.stdout, 'pull', 'E_USAGE', 2);
    expectFailure(missingArg, 2, 'missing required argument');
    expectErrorDocument(missingArg.stdout, 'tag', 'E_USAGE', 2);
    expectFailure(usage, 2, 'destination');
    expectErrorDocument(usage.stdout, 'pull', 'E_USAGE', 2);
    expect(JSON.parse(usage.stdout).error.hint).toMatch(/-o FILE/);
    expectFailure(notFound, 4, 'not found');
    expectErrorDocument(notFound.stdout, 'inspect', 'E_NOT_FOUND', 4);
    expectFailure(network, 5);
    expectErrorDocument(network.stdout, 'tags', 'E_NETWORK', 5);
    expect(noJson.stdout).toBe(''); // without --json, stdout stays empty on failure
  }, 60_000);

  it('local problems are never exit 4: a missing path is 8 (E_NO_SUCH_FILE), a layout or archive without the image named is 2', async () => {
    const d = dir();
    const broken = await makeOciLayout(join(d, 'broken'), { tag: 'v1', seed: 'contract-broken' });
    rmSync(join(broken.dir, 'blobs', 'sha256', broken.manifests[0]!.layerDigests[0]!.slice(7)));
    const cases: Array<[string[], string, number]> = [
      [['inspect', `oci:${join(d, 'no-such-dir')}`], 'E_NO_SUCH_FILE', 8],
      [['push', `docker-archive:${join(d, 'no-such.tar')}`, `${reg.host}/contract/x:1`], 'E_NO_SUCH_FILE', 8],
      [['copy', `oci:${single.dir}:v1`, `docker-archive:${join(d, 'no', 'such', 'dir', 'x.tar')}`], 'E_NO_SUCH_FILE', 8], // no output directory
      [['copy', `oci:${broken.dir}:v1`, `oci:${join(d, 'out')}`], 'E_NO_SUCH_FILE', 8], // the index names a blob that is gone
      [['inspect', `oci:${single.dir}:no-such-tag`], 'E_LOCAL_NOT_FOUND', 2],
      [['inspect', '--platform', 'linux/s390x', `oci:${multi.dir}:multi`], 'E_LOCAL_NOT_FOUND', 2],
      [['inspect', `oci:${d}`], 'E_BAD_ARCHIVE', 2], // a directory that is not a layout
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(['--json', ...args])));
    results.forEach((r, i) => {
      const [args, code, exit] = cases[i]!;
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(exit);
      expectFailure(r, exit);
      expectErrorDocument(r.stdout, args[0]!, code, exit);
    });
    expect(existsSync(join(d, 'out', 'index.json'))).toBe(false);
  }, 60_000);

  it('a closed stdout ends ferry quietly with 141, for help, results and raw bytes: no stack trace, no message', async () => {
    const app = `${reg.host}/contract/app`;
    const runs = await Promise.all([
      runClosed(['--help']),
      runClosed(['pull', '--help']),
      runClosed(['tags', app]),
      runClosed(['inspect', '--raw', `${app}:v1`]),
      runClosed(['inspect', '--json', `${app}:v1`]),
      runClosed(['--version']),
    ]);
    for (const r of runs) {
      expect(r.other, 'stderr').not.toMatch(/EPIPE|^\s+at |Unhandled/m);
      expect(r.other).toBe('');
      expect(r.code, r.other).toBe(141);
    }
  }, 60_000);

  it('a pull whose stderr is closed stops quietly (141) and leaves nothing at the target', async () => {
    const d = dir();
    const r = await runClosed(['pull', '--progress', 'plain', `${reg.host}/contract/app:multi`, '--all-platforms', `oci-archive:${join(d, 'x.tar')}`], 'stderr');
    expect(r.code).toBe(141);
    expect(readdirSync(d)).toEqual([]);
  }, 60_000);
});
