/**
 * A killed export leaves its staging directory (hidden, named with host and pid, never the
 * target); the next export to the same target removes those of dead processes, not live ones.
 *
 * `ferry export` verifies every layer while it applies it, and the next layer is read ahead of
 * the apply: a layer that fails its digest or size — before its turn or during it — fails the
 * export with exit 6 and a one-line message naming the layer, no stack trace, no unhandled
 * stream error, and nothing beside the target (no output, no staging directory).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';

let work: string;
let image: OciLayoutResult;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-export-verify-'));
  image = await makeOciLayout(join(work, 'img'), { tag: 'v1', layers: 4, layerSize: 300_000, seed: 'export-verify' });
}, 60_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A copy of the image whose layer `i` (0-based) has one byte flipped (in the middle, or at
 * `at`), or is cut short. */
function damaged(i: number, how: 'flip' | 'cut', at?: number): string {
  const dir = mkdtempSync(join(work, `bad-${i}-${how}-`));
  cpSync(image.dir, join(dir, 'img'), { recursive: true });
  const blob = join(dir, 'img', 'blobs', 'sha256', image.manifests[0]!.layerDigests[i]!.slice('sha256:'.length));
  const b = readFileSync(blob);
  if (how === 'flip') {
    b[at ?? b.length >> 1] ^= 0xff;
    writeFileSync(blob, b);
  } else {
    truncateSync(blob, b.length - 1000);
  }
  return dir;
}

describe('ferry export verifies each layer', () => {
  it('an intact image exports (the control)', async () => {
    const r = await runCli(['export', '--json', `oci:${image.dir}:v1`, '-o', join(work, 'ok')]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ layers: 4, digest: image.manifests[0]!.digest });
  });

  it('--jobs outside 1-64 is a usage error (exit 2) naming the value, before anything is written', async () => {
    for (const bad of ['abc', '0', '65']) {
      const dir = mkdtempSync(join(work, 'jobs-'));
      const r = await runCli(['export', '-j', bad, `oci:${image.dir}:v1`, '-o', join(dir, 'root')]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(`--jobs takes a whole number from 1 to 64, not "${bad}"`);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it('a flipped byte that breaks the inflate at once (the first deflate block header) is still reported as the digest mismatch it is, exit 6', async () => {
    for (const i of [1, 3]) {
      const dir = damaged(i, 'flip', 10);
      const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, 'root')]);
      expect(r.code, r.stderr).toBe(6);
      expect(r.stderr).toContain(`layer ${i + 1}/4 (${image.manifests[0]!.layerDigests[i]}): the content does not match its digest`);
      expect(readdirSync(dir)).toEqual(['img']);
    }
  });

  for (const [i, how] of [[0, 'flip'], [1, 'flip'], [3, 'flip'], [2, 'cut']] as const) {
    for (const out of ['root', 'root.tar']) {
      it(`layer ${i + 1} ${how === 'flip' ? 'with a flipped byte' : 'cut short'} → ${out}: exit 6 naming the layer, nothing left beside the target`, async () => {
        const dir = damaged(i, how);
        const r = await runCli(['export', `oci:${join(dir, 'img')}:v1`, '-o', join(dir, out)]);
        expect(r.code, r.stderr).toBe(6);
        expect(r.stderr).toContain(`layer ${i + 1}/4 (${image.manifests[0]!.layerDigests[i]})`);
        expect(r.stderr).toMatch(how === 'flip' ? /does not match its digest/ : /bytes, the manifest says/);
        expect(r.stderr).not.toMatch(/\n\s+at |Unhandled|node:events/);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(readdirSync(dir)).toEqual(['img']);
      }, 30_000);
    }
  }
});

describe('a killed export', () => {
  const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

  it('SIGKILLed while applying: no target, a hidden staging directory; the rerun exports and removes it', async () => {
    const dir = mkdtempSync(join(work, 'kill-'));
    const big = await makeOciLayout(join(dir, 'img'), { tag: 'v1', layers: 4, layerSize: 24 * 1024 * 1024, seed: 'export-kill' });
    const target = join(dir, 'root');
    const child = spawn(process.execPath, [FERRY_BIN, 'export', '--progress', 'none', `oci:${big.dir}:v1`, '-o', target], { stdio: 'ignore', env: { PATH: process.env['PATH'], HOME: '/nonexistent' } });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('close', (_c, sig) => r(sig)));
    const staging = (): string[] => readdirSync(dir).filter((n) => n.startsWith('.root.'));
    // Kill once the staging directory holds part of the first layer's file.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = staging();
      const inside = s.length ? spawnSync('du', ['-sb', join(dir, s[0]!)], { encoding: 'utf8' }).stdout : '';
      if (Number(inside.split('\t')[0]) > 1024 * 1024) break;
      if (Date.now() > deadline) throw new Error('the export never started writing');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(target)).toBe(false);
    const left = staging();
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^\\.root\\.${hostTag}-${child.pid}\\.[0-9a-f]{8}\\.partial$`));

    const r = await runCli(['export', `oci:${big.dir}:v1`, '-o', target]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['img', 'root']);
  }, 90_000);

  it("keeps a live process's staging directory and another machine's", async () => {
    const dir = mkdtempSync(join(work, 'live-'));
    const live = `.root.${hostTag}-${process.pid}.0badc0de.partial`;
    const other = `.root.${hostTag === '00000000' ? '11111111' : '00000000'}-1.0badc0de.partial`;
    for (const n of [live, other]) mkdirSync(join(dir, n, 'etc'), { recursive: true });
    const r = await runCli(['export', `oci:${image.dir}:v1`, '-o', join(dir, 'root')]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([live, other, 'root'].sort());
  });
});
