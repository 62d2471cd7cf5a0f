import { spawn } from 'node:child_process';

export interface PtyResult {
  code: number | null;
  /** Everything the terminal showed (stdout and stderr of the command, as one stream). */
  tty: string;
}

/** Quotes one argument for sh. */
export const shq = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;

/**
 * Runs a shell command on a real pseudo-terminal (util-linux script(1)), in an isolated
 * environment like runCli's but without NO_COLOR and CI (ora draws nothing under CI). `onOutput`
 * sees the terminal so far and may type into it (e.g. '\x03', Ctrl-C, which the terminal turns
 * into SIGINT for the foreground command). Runaway output (over 4 MiB) or 30 s kill it.
 */
export function runInPty(cmd: string, onOutput?: (tty: string, type: (keys: string) => void) => void): Promise<PtyResult> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env['PATH'], HOME: '/nonexistent-ferry-test-home', DOCKER_CONFIG: '/nonexistent-ferry-test-docker-config', TERM: 'xterm-256color' };
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let tty = '';
    const type = (keys: string) => child.stdin.write(keys);
    const take = (d: string) => {
      tty += d;
      if (tty.length > 4 << 20) child.kill('SIGKILL');
      else onOutput?.(tty, type);
    };
    child.stdout.setEncoding('utf8').on('data', take);
    child.stderr.setEncoding('utf8').on('data', take);
    child.stdin.on('error', () => {}); // the terminal may be gone when a late key is typed
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject).on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, tty });
    });
  });
}
