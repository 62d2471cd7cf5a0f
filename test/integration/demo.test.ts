/**
 * `npm run demo` (scripts/demo.mjs) must keep working: it ferries one image through tags,
 * inspect, pull into oci / oci-archive / docker-archive, push, copy (mounted), tag and delete,
 * checking each step, and exits non-zero when any check fails. Run here with the real
 * docker-registry and with ferry's in-process registry (the fallback on machines without it).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';

const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));
const CHECKS = 10;

function runDemo(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEMO], {
      // No developer credentials or config reach the demo's ferry runs.
      env: { PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject).on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function expectDemoOk(r: { code: number | null; stdout: string; stderr: string }, registry: RegExp): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(registry);
  for (const job of ['ferry tags', 'ferry inspect', 'ferry pull', '--format oci-archive', '-o ', 'ferry push', 'ferry copy', 'ferry tag ', 'ferry delete']) expect(r.stdout).toContain(job);
  expect(r.stdout.match(/✓/g)).toHaveLength(CHECKS);
  expect(r.stdout).toContain(`demo OK: ${CHECKS} checks passed`);
  expect(r.stdout).toMatch(/\d+ blobs mounted from demo\/hello, 0 bytes uploaded/);
  expect(r.stderr).not.toContain('demo failed');
}

describe('npm run demo', () => {
  it.skipIf(!requireBinary('docker-registry'))('passes every check against the real docker-registry', { timeout: 180_000 }, async () => {
    expectDemoOk(await runDemo({}), /registry: CNCF distribution \(docker-registry\)/);
  });

  it('passes every check against the in-process registry (no docker-registry installed)', { timeout: 180_000 }, async () => {
    expectDemoOk(await runDemo({ FERRY_DEMO_REGISTRY: 'mem' }), /registry: ferry's in-process registry/);
  });
});
