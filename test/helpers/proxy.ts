/**
 * A real forward proxy for integration tests: Debian's `tinyproxy` (1.11), on 127.0.0.1.
 *
 * Contracts:
 * - startProxy({connectPorts, basicAuth, deny}) writes a config into a fresh temp dir (Listen
 *   127.0.0.1, a free Port, LogLevel Connect, LogFile <temp>/tinyproxy.log) and runs
 *   `tinyproxy -d -c <conf>` in the foreground (wrapped in `setpriv --pdeathsig KILL`); resolves
 *   once the port accepts connections (15 s timeout, early exit → rejects with the log).
 * - `connectPorts`: the ports CONNECT may reach (tinyproxy allows only 443 and 563 by default).
 * - `basicAuth: {user, password}`: every request must carry Proxy-Authorization (else 407).
 * - `deny: [hostname]`: these hosts are filtered (tinyproxy answers 403 "Filtered").
 * - `requests()` returns the request lines tinyproxy logged so far (`CONNECT vm:5000 HTTP/1.1`,
 *   `GET http://vm:5000/v2/ HTTP/1.1`): the proof that a request went through the proxy.
 * - stop() is idempotent: SIGTERM (SIGKILL after 5 s), waits, removes the temp dir; on test
 *   process exit the proxy is SIGKILLed (onProcessExit).
 * - loopbackAlias(): a name that is not `localhost` and not an IP (so ferry, following Go's
 *   rules, does proxy it) but that this machine resolves to a loopback address: the machine's
 *   hostname (Debian maps it to 127.0.1.1, some VMs to 127.0.0.1), or another loopback name in
 *   /etc/hosts (read, never written). `{name, address}`, undefined if there is none.
 * - relayTo(alias, port): the test registries listen on 127.0.0.1 only; when the alias resolves
 *   to another loopback address, this listens on <alias address>:<port> and pipes every
 *   connection to 127.0.0.1:<port>, so `<alias>:<port>` reaches the registry (no-op for 127.0.0.1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, onProcessExit, parentDeathCommand } from './binaries.js';
import { freePort } from './real-registry.js';

export interface ProxyOptions {
  connectPorts?: number[];
  basicAuth?: { user: string; password: string };
  deny?: string[];
}

export interface TestProxy {
  /** `http://127.0.0.1:PORT` (without credentials). */
  url: string;
  port: number;
  logFile: string;
  /** Request lines tinyproxy logged, oldest first. */
  requests(): string[];
  stop(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 15_000;

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export async function startProxy(opts: ProxyOptions = {}): Promise<TestProxy> {
  const temp = makeTempDir('tinyproxy');
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const logFile = join(temp.path, `tinyproxy-${attempt}.log`);
      const conf = join(temp.path, 'tinyproxy.conf');
      const lines = [
        `Port ${port}`, 'Listen 127.0.0.1', 'Timeout 60', 'MaxClients 100',
        `LogFile "${logFile}"`, 'LogLevel Connect', 'DisableViaHeader Yes',
        ...(opts.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
      ];
      if (opts.basicAuth) lines.push(`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.password}`);
      if (opts.deny?.length) {
        const filter = join(temp.path, 'filter');
        await writeFile(filter, opts.deny.map((h) => `^${h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).join('\n') + '\n');
        lines.push(`Filter "${filter}"`, 'FilterType ere', 'FilterDefaultDeny No');
      }
      await writeFile(conf, `${lines.join('\n')}\n`);
      const outFile = join(temp.path, `stdout-${attempt}.log`);
      const outFd = openSync(outFile, 'a');
      let child: ChildProcess;
      try {
        const { cmd, args } = parentDeathCommand('tinyproxy', ['-d', '-c', conf]);
        child = spawn(cmd, args, { cwd: temp.path, stdio: ['ignore', outFd, outFd] });
      } finally {
        closeSync(outFd);
      }
      const unregisterKill = onProcessExit(() => child.kill('SIGKILL'));
      let exited = false;
      const exitPromise = new Promise<void>((resolve) => {
        child.once('exit', () => { exited = true; resolve(); });
        child.once('error', () => { exited = true; resolve(); });
      });
      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      let ready = false;
      while (!exited && Date.now() < deadline) {
        if (await canConnect(port)) { ready = true; break; }
        await sleep(30);
      }
      if (!ready) {
        if (!exited) child.kill('SIGKILL');
        await exitPromise;
        unregisterKill();
        const log = `${readText(outFile)}${readText(logFile)}`;
        if (/address already in use/i.test(log) && attempt < 5) continue;
        throw new Error(`tinyproxy did not listen on 127.0.0.1:${port} within ${STARTUP_TIMEOUT_MS} ms. Log:\n${log}`);
      }
      let stopped: Promise<void> | undefined;
      return {
        url: `http://127.0.0.1:${port}`, port, logFile,
        requests: () => [...readText(logFile).matchAll(/: Request \(file descriptor \d+\): (.*)$/gm)].map((m) => m[1]!),
        stop() {
          stopped ??= (async () => {
            if (!exited) {
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              await exitPromise;
              clearTimeout(timer);
            }
            unregisterKill();
            temp.remove();
          })();
          return stopped;
        },
      };
    }
  } catch (err) {
    temp.remove();
    throw err;
  }
}

export interface LoopbackAlias {
  name: string;
  address: string; // 127.x.y.z
}

async function loopbackAddress(name: string): Promise<string | undefined> {
  try {
    const all = await lookup(name, { all: true, family: 4 });
    return all.length > 0 && all.every((a) => a.address === all[0]!.address && a.address.startsWith('127.')) ? all[0]!.address : undefined;
  } catch {
    return undefined;
  }
}

/** A proxied-by-Go-rules name for a loopback address (see the contracts above). */
export async function loopbackAlias(): Promise<LoopbackAlias | undefined> {
  const candidates = [hostname()];
  for (const line of readText('/etc/hosts').split('\n')) {
    const [addr, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    if (addr?.startsWith('127.')) candidates.push(...names);
  }
  for (const name of candidates) {
    const n = name.toLowerCase();
    if (!n || n === 'localhost' || n.endsWith('.localhost') || /^[\d.]+$/.test(n) || n.includes(':')) continue;
    const address = await loopbackAddress(n);
    if (address) return { name: n, address };
  }
  return undefined;
}

/** Makes `<alias>:<port>` reach 127.0.0.1:<port> (see the contracts above). */
export async function relayTo(alias: LoopbackAlias, port: number): Promise<{ stop(): Promise<void> }> {
  if (alias.address === '127.0.0.1') return { stop: async () => {} };
  const sockets = new Set<Socket>();
  const srv = createServer((inbound) => {
    const outbound = connect({ host: '127.0.0.1', port });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => { inbound.destroy(); outbound.destroy(); });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, alias.address, () => resolve());
  });
  return {
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      srv.close(() => resolve());
    }),
  };
}
