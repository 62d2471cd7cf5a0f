/**
 * Credential helpers that hang or leave processes behind (auth/cred-helper.ts): the helper runs
 * in its own process group; a timeout kills the whole group and stops reading at once, even when
 * a grandchild of a shell-script helper still holds the pipes; a helper that answered and exited
 * is not waited on because a child it left holds stdout. Error text never quotes a secret.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { clearCredentialHelperCache, getFromHelper } from '../../../src/auth/cred-helper.js';

const roots: string[] = [];
const pids: number[] = [];
afterEach(() => {
  clearCredentialHelperCache();
  for (const p of pids.splice(0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone, as it should be */
    }
  }
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A temp dir with `bin/docker-credential-<name>` running `body` under /bin/sh; `$PIDFILE` is
 * where the script writes the pid of the child it leaves behind. */
function helper(name: string, body: string): { env: NodeJS.ProcessEnv; pidFile: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-helper-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'bin'));
  const pidFile = path.join(root, 'grandchild.pid');
  const p = path.join(root, 'bin', `docker-credential-${name}`);
  fs.writeFileSync(p, `#!/bin/sh\n${body.replaceAll('$PIDFILE', pidFile)}\n`);
  fs.chmodSync(p, 0o755);
  return { env: { PATH: `${path.join(root, 'bin')}:/usr/bin:/bin`, HOME: root }, pidFile };
}

/** The pid the helper wrote (waits for the file a little: the script writes it first thing). */
async function grandchild(pidFile: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const t = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : '';
    if (t) {
      const pid = Number(t);
      pids.push(pid);
      return pid;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the helper never wrote its child pid');
}

/** True while `pid` is a live (non-zombie) process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

const LEAVE_CHILD = 'sleep 600 &\necho $! > "$PIDFILE"';

describe('a hanging credential helper', () => {
  it.each([
    ['a background child holding the pipe, the script in `wait`', `${LEAVE_CHILD}\nwait`],
    ['the script itself in a foreground sleep, a background child too', `${LEAVE_CHILD}\nsleep 100`],
  ])('%s: gives up at the timeout, one line naming the helper, and the grandchild is killed', async (_name, body) => {
    const { env, pidFile } = helper('hang', body);
    const t0 = performance.now();
    const p = getFromHelper('hang', 'ghcr.io', { env, timeoutMs: 400 });
    const pid = await grandchild(pidFile);
    expect(alive(pid)).toBe(true);
    const e = await p.then(() => { throw new Error('resolved'); }, (x: Error & { code?: string }) => x);
    const ms = performance.now() - t0;
    expect(e.code).toBe('E_BAD_CONFIG');
    expect(e.message).toBe('credential helper docker-credential-hang failed for ghcr.io: timed out after 0.4 s (killed)');
    expect(ms).toBeGreaterThanOrEqual(390);
    expect(ms).toBeLessThan(1500);
    expect(await goneWithin(pid, 1000)).toBe(true);
  });

  it('the process running ferry exits right after the timeout, not when the grandchild ends', async () => {
    const { env, pidFile } = helper('hang', `${LEAVE_CHILD}\nsleep 100`);
    const mod = new URL('../../../dist/auth/cred-helper.js', import.meta.url); // npm run build first
    // Run the helper client in a separate node process (as the CLI would) and time its exit.
    const code = `const { getFromHelper } = await import(${JSON.stringify(fileURLToPath(mod))});
      await getFromHelper('hang', 'ghcr.io', { env: ${JSON.stringify(env)}, timeoutMs: 400 }).catch((e) => console.log(e.code));`;
    const t0 = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let s = '';
      c.stdout.on('data', (d: Buffer) => (s += d));
      const kill = setTimeout(() => c.kill('SIGKILL'), 20_000);
      c.on('error', reject);
      c.on('close', () => {
        clearTimeout(kill);
        resolve(s);
      });
    });
    const ms = performance.now() - t0;
    expect(out.trim()).toBe('E_BAD_CONFIG');
    expect(ms).toBeLessThan(4000);
    expect(await goneWithin(await grandchild(pidFile), 1000)).toBe(true);
  }, 30_000);
});

describe('a helper that answers but leaves a child holding stdout', () => {
  it('is taken at its word within the grace period; the leftover child is killed', async () => {
    const { env, pidFile } = helper('leaky', `printf '%s' '{"ServerURL":"ghcr.io","Username":"u","Secret":"s3cr3t-value"}'\n${LEAVE_CHILD}\nexit 0`);
    const t0 = performance.now();
    const r = await getFromHelper('leaky', 'ghcr.io', { env, timeoutMs: 10_000 });
    expect(r).toEqual({ kind: 'basic', username: 'u', secret: 's3cr3t-value' });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(await goneWithin(await grandchild(pidFile), 1000)).toBe(true);
  });
});

describe('helper output is not echoed with secrets', () => {
  it('success with cut JSON: the error does not quote the output', async () => {
    const { env } = helper('cut', `printf '%s' '{"ServerURL":"ghcr.io","Username":"u","Secret":"hunter2-cut-secret'`);
    const e = await getFromHelper('cut', 'ghcr.io', { env }).catch((x: Error & { code?: string }) => x);
    expect((e as { code?: string }).code).toBe('E_BAD_CONFIG');
    expect((e as Error).message).toContain('docker-credential-cut');
    expect((e as Error).message).toContain('not JSON');
    expect((e as Error).message).not.toContain('hunter2');
  });

  it('failure quoting an unterminated Secret: redacted to the end', async () => {
    const { env } = helper('fails', `printf '%s' 'error: {"Secret": "hunter2-unterminated'\nexit 3`);
    const e = (await getFromHelper('fails', 'ghcr.io', { env }).catch((x: Error) => x)) as Error;
    expect(e.message).toContain('exit status 3: error:');
    expect(e.message).not.toContain('hunter2');
    expect(e.message.split('\n')).toHaveLength(1);
  });
});
