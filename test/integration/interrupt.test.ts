import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedImage, startMemRegistry, type MemRegistry } from '../helpers/mem-registry.js';
import { FERRY_BIN, runCli } from '../helpers/run-cli.js';

// Interrupting a pull must never leave something at the target that looks complete: the archive
// is written under a temp name and renamed only after every blob verified. The registry slows
// blob downloads down (delay fault) so the signal lands mid-transfer.
let reg: MemRegistry;
let work: string;

beforeAll(async () => {
  reg = await startMemRegistry();
  seedImage(reg, 'slow/app', 'v1', { layers: 3, layerSize: 256 * 1024, seed: 'interrupt' });
  work = mkdtempSync(join(tmpdir(), 'ferry-interrupt-'));
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

function startPull(args: string[]) {
  const child = spawn(process.execPath, [FERRY_BIN, 'pull', '--plain-http', '--progress', 'none', ...args], {
    env: { PATH: process.env['PATH'], HOME: '/nonexistent', DOCKER_CONFIG: '/nonexistent', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, done, stderr: () => stderr };
}

async function waitForBlobRequest(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (reg.requests.some((r) => r.method === 'GET' && r.path.includes('/blobs/'))) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('ferry never started downloading blobs');
}

describe.each([
  ['docker-archive', 'app.tar', []],
  ['oci-archive', 'app-oci.tar', ['--format', 'oci-archive']],
] as const)('interrupting a %s pull', (_format, file, extra) => {
  it.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)('%s leaves no file at the target, keeps an existing one, and a rerun succeeds', async (sig) => {
    const dir = mkdtempSync(join(work, 'out-'));
    const target = join(dir, file);
    writeFileSync(target, 'previous contents');
    reg.requests.length = 0;
    reg.faults.push({ match: { method: 'GET', path: /\/blobs\/sha256:/ }, action: { kind: 'delay', ms: 4000 } });
    const run = startPull([`${reg.host}/slow/app:v1`, '-o', target, ...extra]);
    await waitForBlobRequest();
    run.child.kill(sig);
    const res = await run.done;
    reg.faults.length = 0;
    if (sig === 'SIGKILL') expect(res.signal).toBe('SIGKILL');
    else {
      expect(res.code).toBe(sig === 'SIGINT' ? 130 : 143);
      expect(run.stderr()).toContain('interrupted');
    }
    // The old file is untouched; no temp files are left (a SIGKILLed run cannot clean up, but its
    // temp file is never at the target name and a rerun still succeeds).
    expect(readFileSync(target, 'utf8')).toBe('previous contents');
    if (sig !== 'SIGKILL') expect(readdirSync(dir).filter((n) => n !== file)).toEqual([]);
    const again = await runCli(['pull', '--plain-http', '--quiet', `${reg.host}/slow/app:v1`, '-o', target, ...extra]);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(target).length).toBeGreaterThan(3 * 256 * 1024);
    expect(existsSync(target)).toBe(true);
  }, 60_000);
});
