/**
 * What ferry prints and where, against the in-process registry (ferry runs as a child process,
 * so the registry in this process keeps serving): stdout holds only results (one JSON document
 * with --json), progress goes to stderr in the chosen mode (plain lines, NDJSON events, nothing
 * with --quiet), colour follows NO_COLOR/FORCE_COLOR, and help/usage errors behave.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { seedImage, startMemRegistry, type MemRegistry, type SeedResult } from '../helpers/mem-registry.js';
import { runInPty, shq } from '../helpers/pty.js';
import { FERRY_BIN, runCli, type RunCliOptions } from '../helpers/run-cli.js';
import { expectFailure, ferryOk, oneImage, type TransferDoc } from './support.js';

const ESC = /\x1b\[/;
const KiB = 1024;

describe('ferry CLI output: stdout, stderr, progress modes, colour, help', () => {
  let reg: MemRegistry;
  let work: TempDir;
  let app: SeedResult;
  let slow: SeedResult;
  let n = 0;
  const out = (): string => {
    const d = join(work.path, `case-${++n}`);
    mkdirSync(d);
    return join(d, 'x.tar');
  };
  const pull = (args: string[], opts: RunCliOptions = {}) =>
    ferryOk(['pull', '--plain-http', ...args, `${reg.host}/library/app:v1`, '-o', out()], opts);

  beforeAll(async () => {
    work = makeTempDir('cli-output');
    reg = await startMemRegistry();
    app = seedImage(reg, 'library/app', 'v1', { layers: 3, layerSize: 128 * KiB, seed: 'cli-output' });
    slow = seedImage(reg, 'library/slow', 'v1', { layers: 2, layerSize: 64 * KiB, seed: 'cli-output-slow' });
  });
  afterAll(async () => {
    await reg?.stop();
    work?.remove();
  });

  it('--json on a non-TTY: stdout is exactly one JSON document; progress lines go to stderr', async () => {
    const r = await pull(['--json']);
    const doc = oneImage(JSON.parse(r.stdout) as TransferDoc); // throws on anything else
    expect(r.stdout.trim().startsWith('{') && r.stdout.trim().endsWith('}')).toBe(true);
    expect(doc).toMatchObject({ digest: app.digest, source: `${reg.host}/library/app:v1` });
    expect(doc.blobs).toMatchObject({ total: 4, transferred: 4 });
    expect(r.stderr).toContain(app.digest); // the "resolved" line
    expect(r.stderr.match(/^ {2}verified +[0-9a-f]{12} /gm), r.stderr).toHaveLength(4);
    expect(r.stderr).not.toMatch(ESC);
    expect(r.stdout).not.toContain('verified');
  });

  it('--progress json: every stderr line is a JSON event (resolved, plan, blob-done, committed)', async () => {
    const [withJson, without] = await Promise.all([pull(['--progress', 'json', '--json']), pull(['--progress', 'json'])]);
    for (const r of [withJson, without]) {
      const lines = r.stderr.trim().split('\n');
      const events = lines.map((l) => {
        expect(() => JSON.parse(l), `stderr line is not JSON: ${l}`).not.toThrow();
        return JSON.parse(l) as { event: string; digest?: string; blobs?: number };
      });
      const kinds = events.map((e) => e.event);
      expect(kinds).toEqual(expect.arrayContaining(['resolved', 'plan', 'blob-done', 'committed']));
      expect(kinds.filter((k) => k === 'blob-done')).toHaveLength(4);
      expect(events.find((e) => e.event === 'resolved')?.digest).toBe(app.digest);
      expect(events.find((e) => e.event === 'plan')?.blobs).toBe(4);
      expect(kinds.indexOf('plan')).toBeLessThan(kinds.indexOf('blob-done'));
      expect(kinds.at(-1)).toBe('committed');
      // Every event is stamped (ms since the epoch) and blob events carry digest, size and bytes.
      const t0 = Date.now() - 120_000;
      for (const e of events as Array<Record<string, unknown>>) {
        expect(typeof e['ts'], JSON.stringify(e)).toBe('number');
        expect(e['ts'] as number).toBeGreaterThan(t0);
        expect(e['ts'] as number).toBeLessThanOrEqual(Date.now());
        if (String(e['event']).startsWith('blob-')) {
          expect(e['digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
          expect(typeof e['size']).toBe('number');
          expect(e['bytes']).toBe(e['event'] === 'blob-done' ? e['size'] : 0);
        }
      }
      const ts = events.map((e) => (e as unknown as { ts: number }).ts);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
    }
    // The summary is a JSON object on stdout only with --json.
    expect((oneImage(JSON.parse(withJson.stdout) as TransferDoc)).digest).toBe(app.digest);
    expect(without.stdout).toContain(`pulled ${reg.host}/library/app:v1`);
    expect(() => JSON.parse(without.stdout)).toThrow();
  });

  it('regression: --jobs 16 prints no MaxListenersExceededWarning (every job hangs abort listeners on one signal)', async () => {
    seedImage(reg, 'library/wide', 'v1', { layers: 12, layerSize: 16 * KiB, seed: 'cli-output-wide' });
    // Hold every blob GET so all 12 downloads are in flight at once.
    const fault = { match: { method: 'GET', path: /\/library\/wide\/blobs\// }, action: { kind: 'delay' as const, ms: 300 } };
    reg.faults.push(fault);
    const r = await ferryOk(['pull', '--plain-http', '--quiet', '--jobs', '16', `${reg.host}/library/wide:v1`, `oci:${out().replace(/x\.tar$/, 'layout')}`]).finally(() => reg.faults.splice(reg.faults.indexOf(fault), 1));
    expect(r.stderr).not.toMatch(/MaxListeners|Warning/);
    expect(r.stderr).toBe('');
  });

  it('--quiet: nothing on stderr on success (and --quiet --json still prints the document)', async () => {
    const [quiet, quietJson] = await Promise.all([pull(['--quiet']), pull(['-q', '--json'])]);
    expect(quiet.stderr).toBe('');
    expect(quietJson.stderr).toBe('');
    expect((oneImage(JSON.parse(quietJson.stdout) as TransferDoc)).digest).toBe(app.digest);
  });

  it('--progress plain --progress-interval 0.2 on a slow pull: periodic "blobs n/m" lines, no escape codes', async () => {
    const fault = { match: { method: 'GET', path: /\/v2\/library\/slow\/blobs\// }, action: { kind: 'delay' as const, ms: 600 } };
    reg.faults.push(fault);
    try {
      const r = await ferryOk(['pull', '--plain-http', '--progress', 'plain', '--progress-interval', '0.2', `${reg.host}/library/slow:v1`, '-o', out()]);
      const periodic = r.stderr.split('\n').filter((l) => /blobs \d+\/\d+/.test(l));
      expect(periodic.length, r.stderr).toBeGreaterThanOrEqual(1);
      expect(periodic[0]).toMatch(/^pull: blobs \d+\/3 /);
      expect(r.stderr).not.toMatch(ESC);
      expect(r.stdout).not.toMatch(ESC);
    } finally {
      reg.faults.splice(reg.faults.indexOf(fault), 1);
    }
    expect(slow.blobs).toHaveLength(3);
  });

  // An unsized pty reports 0 columns: ora then looped forever writing cursor-up escapes
  // (gigabytes of them) until ferry fed it a known width (output/status.ts withKnownWidth).
  it.each([
    ['a 100-column pty', 'stty cols 100 rows 40; '],
    ['an unsized pty (0 columns: regression)', ''],
  ])('on a real terminal (%s from script(1)): a live spinner line with blobs/bytes/rate, green per-blob lines; stdout redirected to a file still gets only the JSON', async (_what, sizing) => {
    requireBinary('script'); // util-linux (bsdutils, essential on Debian)
    const fault = { match: { method: 'GET', path: /\/v2\/library\/slow\/blobs\// }, action: { kind: 'delay' as const, ms: 600 } };
    reg.faults.push(fault);
    const target = out();
    const json = join(work.path, `tty-${n}.json`);
    const cmd = sizing + [process.execPath, FERRY_BIN, 'pull', '--plain-http', '--json', `${reg.host}/library/slow:v1`, '-o', target].map(shq).join(' ') + ` > ${shq(json)}`;
    try {
      const r = await runInPty(cmd);
      expect(r.tty.length, 'runaway terminal output').toBeLessThan(1 << 20);
      expect(r.code, r.tty.slice(0, 2000)).toBe(0);
      expect(r.tty).toMatch(/\x1b\[\?25l/); // ora hides the cursor while it spins…
      expect(r.tty).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏](?:\x1b\[39m)? pull: blobs \d\/3 · /); // …and draws frames with live counts
      expect(r.tty).toMatch(/\x1b\[32mverified\x1b\[39m/); // persisted per-blob lines, in colour
      expect(r.tty).toMatch(/\x1b\[\?25h/); // and gives the cursor back
      const doc = readFileSync(json, 'utf8');
      expect(doc).not.toMatch(ESC);
      expect((oneImage(JSON.parse(doc) as TransferDoc)).digest).toBe(slow.digest);
    } finally {
      reg.faults.splice(reg.faults.indexOf(fault), 1);
    }
  });

  it('--progress json on a slow pull: periodic progress events list each blob in flight with its bytes so far', async () => {
    const fault = { match: { method: 'GET', path: /\/v2\/library\/slow\/blobs\// }, action: { kind: 'delay' as const, ms: 600 } };
    reg.faults.push(fault);
    try {
      const r = await ferryOk(['pull', '--plain-http', '--progress', 'json', '--progress-interval', '0.2', `${reg.host}/library/slow:v1`, '-o', out()]);
      const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; ts: number; active?: Array<{ digest: string; bytes: number; size: number }> });
      const progress = events.filter((e) => e.event === 'progress');
      expect(progress.length, r.stderr).toBeGreaterThanOrEqual(1);
      const active = progress.flatMap((e) => e.active ?? []);
      expect(active.length, r.stderr).toBeGreaterThanOrEqual(1);
      for (const a of active) {
        expect(a.digest).toMatch(/^sha256:/);
        expect(a.bytes).toBeGreaterThanOrEqual(0);
        expect(a.bytes).toBeLessThanOrEqual(a.size);
      }
    } finally {
      reg.faults.splice(reg.faults.indexOf(fault), 1);
    }
  });

  // ora colours its frames with its own chalk, which ignores NO_COLOR; and CI=false is not CI.
  it.each([
    ['NO_COLOR=1', 'NO_COLOR=1 ', false],
    ['CI=false', 'CI=false ', true],
    ['CI=0', 'CI=0 ', true],
  ])('on a terminal with %s: the spinner still runs, coloured only without NO_COLOR', async (_what, envPrefix, coloured) => {
    requireBinary('script');
    const fault = { match: { method: 'GET', path: /\/v2\/library\/slow\/blobs\// }, action: { kind: 'delay' as const, ms: 600 } };
    reg.faults.push(fault);
    // stdout on the terminal too: ora's own chalk looks at stdout (fd 1), not at stderr.
    const cmd = `stty cols 100; ${envPrefix}${[process.execPath, FERRY_BIN, 'pull', '--plain-http', `${reg.host}/library/slow:v1`, '-o', out()].map(shq).join(' ')}`;
    try {
      const r = await runInPty(cmd);
      expect(r.code, r.tty.slice(0, 2000)).toBe(0);
      expect(r.tty).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏](?:\x1b\[39m)? pull: blobs \d\/3 · /); // a spinner, so not CI mode
      if (coloured) expect(r.tty).toMatch(/\x1b\[36m[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
      else expect(r.tty.replace(/\x1b\[(\?25[lh]|\d*[GKAB]|2K|1G)/g, ''), 'colour escapes with NO_COLOR').not.toMatch(/\x1b\[\d+m/);
    } finally {
      reg.faults.splice(reg.faults.indexOf(fault), 1);
    }
  });

  it('on a terminal with CI=true: plain lines, no spinner', async () => {
    requireBinary('script');
    const r = await runInPty(`CI=true ${[process.execPath, FERRY_BIN, 'pull', '--plain-http', `${reg.host}/library/app:v1`, '-o', out()].map(shq).join(' ')} > /dev/null`);
    expect(r.code, r.tty.slice(0, 2000)).toBe(0);
    expect(r.tty).toMatch(/verified/);
    expect(r.tty).not.toMatch(/\x1b\[\?25l/); // ora never hid the cursor
  });

  it('Ctrl-C on a terminal: the spinner ends with a red ✖ and the last counts, one "interrupted" line, the cursor back, exit 130, no file at the target', async () => {
    requireBinary('script');
    const fault = { match: { method: 'GET', path: /\/v2\/library\/slow\/blobs\// }, action: { kind: 'delay' as const, ms: 3000 } };
    reg.faults.push(fault);
    const target = out();
    const cmd = `stty cols 100; ${[process.execPath, FERRY_BIN, 'pull', '--plain-http', `${reg.host}/library/slow:v1`, '-o', target].map(shq).join(' ')}`;
    let typed = false;
    try {
      const r = await runInPty(cmd, (tty, type) => {
        if (!typed && /pull: blobs \d\/3/.test(tty)) { // the spinner is up: the pull is under way
          typed = true;
          type('\x03');
        }
      });
      expect(typed, r.tty).toBe(true);
      expect(r.code, r.tty.slice(-2000)).toBe(130);
      expect(r.tty).toMatch(/\x1b\[31m✖\x1b\[39m pull: blobs \d\/3 · /);
      expect(r.tty).toContain('ferry: interrupted by SIGINT; partial output removed');
      expect(r.tty.lastIndexOf('\x1b[?25h')).toBeGreaterThan(r.tty.lastIndexOf('\x1b[?25l'));
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(dirname(target))).toEqual([]); // no temp file left beside it either
    } finally {
      reg.faults.splice(reg.faults.indexOf(fault), 1);
    }
  });

  it('--debug ends with peak memory and CPU; an inspect stays small (undici\'s parser is not optimised by V8: 98 → 62 MiB)', async () => {
    const r = await ferryOk(['--debug', 'inspect', '--plain-http', `${reg.host}/library/app:v1`]);
    const m = /^debug: exit 0; peak RSS (\d+) MiB; CPU \d+\.\d\d s user \+ \d+\.\d\d s system$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(85);
  });

  it('bin/ferry runs the one-file bundle: an inspect loads dist/ferry.mjs and dist/undici-lean.cjs, no other module of ferry\'s and none of undici\'s own files', async () => {
    // An ESM load hook lists every module file loaded; a CommonJS preload lists require()d files.
    const hook = join(work.path, 'hook.mjs');
    const probe = join(work.path, 'probe.cjs');
    writeFileSync(hook, "export async function load(url, ctx, next) { process.stderr.write('@@esm ' + url + '\\n'); return next(url, ctx); }\n");
    writeFileSync(probe, "process.on('exit', () => process.stderr.write('@@cjs ' + JSON.stringify(Object.keys(require('node:module')._cache)) + '\\n'));\n");
    const r = await ferryOk(['inspect', '--plain-http', `${reg.host}/library/app:v1`], { env: { NODE_OPTIONS: `--no-warnings --experimental-loader ${pathToFileURL(hook).href} --require ${probe}` } });
    const esm = [...r.stderr.matchAll(/^@@esm (file:\S+)$/gm)].map((m) => fileURLToPath(m[1]!));
    const root = dirname(dirname(FERRY_BIN));
    const ours = esm.filter((f) => f.startsWith(root) && !f.includes(`${sep}node_modules${sep}`));
    expect(ours.map((f) => relative(root, f)).sort()).toEqual([join('bin', 'ferry'), join('dist', 'ferry.mjs')]);
    const cjs = JSON.parse(/^@@cjs (.*)$/m.exec(r.stderr)![1]!) as string[];
    // undici comes from the one packed file beside the bundle (scripts/bundle.mjs), none of its own.
    expect(cjs.filter((f) => f.includes(`${sep}undici${sep}`))).toEqual([]);
    expect(cjs.filter((f) => f !== probe && f.startsWith(root) && !f.includes(`${sep}node_modules${sep}`)).map((f) => relative(root, f))).toEqual([join('dist', 'undici-lean.cjs')]);
  });

  it('NO_COLOR=1: no escape codes anywhere, even with FORCE_COLOR', async () => {
    const [plain, both] = await Promise.all([
      pull(['--progress', 'plain', '--json'], { env: { NO_COLOR: '1' } }),
      pull(['--progress', 'plain', '--json'], { env: { NO_COLOR: '1', FORCE_COLOR: '1' } }),
    ]);
    for (const r of [plain, both]) {
      expect(r.stderr).toContain('verified');
      expect(r.stderr).not.toMatch(ESC);
      expect(r.stdout).not.toMatch(ESC);
    }
  });

  it('FORCE_COLOR=1 (NO_COLOR unset): coloured per-blob lines on stderr, stdout JSON still plain', async () => {
    const r = await pull(['--json'], { env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
    expect(r.stderr).toMatch(ESC);
    expect(r.stderr).toMatch(/\x1b\[32mverified\x1b\[39m/); // green "verified"
    expect(r.stdout).not.toMatch(ESC);
    expect((oneImage(JSON.parse(r.stdout) as TransferDoc)).digest).toBe(app.digest);
  });

  it.each(['ferry', 'ferry inspect', 'ferry tags', 'ferry pull', 'ferry copy', 'ferry push', 'ferry tag', 'ferry delete'])('%s --help exits 0 and shows Examples:', async (cmd) => {
    const r = await runCli([...cmd.split(' ').slice(1), '--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ferry/m);
    expect(r.stdout).toContain('Examples:');
    expect(r.stderr).toBe('');
  });

  it('an unknown option → exit 2 with a "ferry:" line', async () => {
    const [global, sub] = await Promise.all([
      runCli(['--no-such-flag', 'tags', 'x']),
      runCli(['pull', '--no-such-flag', `${reg.host}/library/app:v1`, 'oci:/tmp/never']),
    ]);
    for (const r of [global, sub]) {
      expectFailure(r, 2, /^ferry: .*unknown option/m, '--no-such-flag');
      expect(r.stdout).toBe('');
    }
  });

  it('ferry pull with one argument (or none) → exit 2', async () => {
    const [one, none] = await Promise.all([runCli(['pull', `${reg.host}/library/app:v1`]), runCli(['pull'])]);
    expectFailure(one, 2, 'destination', /hint: .*-o/);
    expectFailure(none, 2);
    expect(one.stdout + none.stdout).toBe('');
  });
});
