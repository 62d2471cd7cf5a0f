import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FERRY_BIN = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunCliOptions {
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  timeoutMs?: number;
  cwd?: string;
}

/**
 * Runs the built CLI (bin/ferry → dist/) as a child process, the way users and CI run it.
 * The environment is isolated by default: HOME and DOCKER_CONFIG point at nothing, so a
 * developer's own credentials never leak into tests. `env` entries override (undefined deletes).
 */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    HOME: '/nonexistent-ferry-test-home',
    DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config',
    XDG_RUNTIME_DIR: '/nonexistent-ferry-test-xdg',
    XDG_CONFIG_HOME: '/nonexistent-ferry-test-xdg-config',
    // /etc/containers/registries.conf (+ drop-ins) and /etc/docker/daemon.json of this machine
    // are not the test's: ferry reads /etc below this root instead.
    FERRY_SYSCONF_ROOT: '/nonexistent-ferry-test-sysconf',
    FERRY_SYSTEM_CERTS_D: '', // nor its /etc/{containers,docker}/certs.d
    NO_COLOR: '1',
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY_BIN, ...args], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code, signal });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}
