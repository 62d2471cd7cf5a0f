/**
 * A REAL Secret Service for tests: a private D-Bus session bus (`dbus-daemon --session`, Debian
 * dbus-daemon) with gnome-keyring-daemon (Debian gnome-keyring) on it, its login keyring created
 * and unlocked with a known password, in a temp HOME so the user's own keyrings are never touched.
 *
 * Contracts:
 * - startSecretService() resolves once `org.freedesktop.secrets` has an owner on the bus (polled
 *   with dbus-send, 15 s limit). `env` holds DBUS_SESSION_BUS_ADDRESS (and HOME/XDG dirs) for
 *   anything that should talk to this keyring (ferry, secret-tool).
 * - stop() kills both daemons by pid (SIGTERM, then SIGKILL) and removes the temp dir; both are also
 *   killed if the test process exits, and via `setpriv --pdeathsig` if it is SIGKILLed.
 * - `servicesDir: false` starts a bus that cannot activate anything, WITHOUT gnome-keyring (the "no
 *   Secret Service" case).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir, onProcessExit, parentDeathCommand } from './binaries.js';

export interface SecretService {
  address: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

const BUS_CONFIG = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=@BUS@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`;

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const w = parentDeathCommand(cmd, args);
  return spawn(w.cmd, w.args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 3000);
  await done;
  clearTimeout(t);
}

function hasOwner(env: NodeJS.ProcessEnv, name: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${name}`],
      { env, timeout: 5000 }, (err, stdout) => resolve(!err && /boolean true/.test(stdout)));
  });
}

export async function startSecretService(opts: { withKeyring?: boolean; password?: string } = {}): Promise<SecretService> {
  const tmp = makeTempDir('secret-service');
  const home = join(tmp.path, 'home');
  const run = join(tmp.path, 'run');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(run, { mode: 0o700 });
  const bus = join(tmp.path, 'bus');
  const conf = join(tmp.path, 'bus.conf');
  writeFileSync(conf, BUS_CONFIG.replace('@BUS@', bus));
  const address = `unix:path=${bus}`;
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home, XDG_RUNTIME_DIR: run,
    XDG_DATA_HOME: join(home, '.local', 'share'), DBUS_SESSION_BUS_ADDRESS: address,
  };
  const children: ChildProcess[] = [];
  const unregister = onProcessExit(() => {
    for (const c of children) c.kill('SIGKILL');
    tmp.remove();
  });
  const stop = async (): Promise<void> => {
    for (const c of [...children].reverse()) await stopChild(c);
    unregister();
    tmp.remove();
  };
  try {
    const daemon = start('dbus-daemon', [`--config-file=${conf}`, '--nofork', '--nopidfile'], env);
    children.push(daemon);
    let log = '';
    daemon.stderr!.on('data', (d) => (log += String(d)));
    for (let i = 0; ; i++) {
      if (await hasOwner(env, 'org.freedesktop.DBus')) break;
      if (i > 75 || daemon.exitCode !== null) throw new Error(`dbus-daemon did not start: ${log}`);
      await sleep(200);
    }
    if (opts.withKeyring !== false) {
      const gk = start('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], env);
      children.push(gk);
      let gkLog = '';
      gk.stderr!.on('data', (d) => (gkLog += String(d)));
      gk.stdout!.on('data', (d) => (gkLog += String(d)));
      gk.stdin!.end(opts.password ?? 'ferry-test-keyring');
      for (let i = 0; ; i++) {
        if (await hasOwner(env, 'org.freedesktop.secrets')) break;
        if (i > 75 || gk.exitCode !== null) throw new Error(`gnome-keyring-daemon did not start: ${gkLog}`);
        await sleep(200);
      }
    }
    return { address, env, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
