/**
 * Test-harness process hygiene: locating external binaries, temp dirs and
 * last-resort cleanup when the test process exits.
 *
 * Contracts:
 * - requireBinary(name): true if `name` is an executable on PATH. If it is
 *   missing and CI === 'true' it THROWS (a suite whose real binary is missing
 *   must fail under CI, never silently skip); otherwise it returns false so a
 *   suite can use `describe.skipIf(!requireBinary('skopeo'))`.
 * - makeTempDir(prefix): creates a fresh dir under os.tmpdir() and registers
 *   it for synchronous removal on process exit (in case stop() never runs).
 * - onProcessExit(fn): registers a SYNCHRONOUS callback run on process 'exit'
 *   and on SIGTERM/SIGINT/SIGHUP (vitest stops fork workers with SIGTERM, which
 *   skips 'exit'); returns an unregister function. After running the
 *   callbacks on a signal, the signal is re-raised if nobody else listens, so
 *   default termination semantics are kept.
 * - parentDeathCommand(cmd, args): wraps a long-running child in
 *   `setpriv --pdeathsig KILL` (util-linux, Essential in Debian) when
 *   available, so the child dies even if this process is SIGKILLed.
 */
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Debian package that provides each binary the harness uses. */
const DEBIAN_PACKAGE: Record<string, string> = {
  'docker-registry': 'docker-registry',
  skopeo: 'skopeo',
  podman: 'podman',
  umoci: 'umoci',
  openssl: 'openssl',
  perl: 'perl-base',
  script: 'bsdutils',
  chattr: 'e2fsprogs',
  'dbus-daemon': 'dbus-daemon',
  'dbus-send': 'dbus-bin',
  'gnome-keyring-daemon': 'gnome-keyring',
  'secret-tool': 'libsecret-tools',
  mksquashfs: 'squashfs-tools',
  unsquashfs: 'squashfs-tools',
  'ch-run': 'charliecloud-runtime',
  busybox: 'busybox-static',
  zstd: 'zstd',
  tinyproxy: 'tinyproxy',
};

/** Absolute path of `name` on PATH, or undefined. */
export function whichBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * True if `name` is on PATH. Missing + CI=true → throws; missing otherwise →
 * false (caller skips).
 */
export function requireBinary(name: string): boolean {
  if (whichBinary(name)) return true;
  if (process.env.CI === 'true') {
    const pkg = DEBIAN_PACKAGE[name] ?? name;
    throw new Error(
      `${name} is required under CI=true (install the Debian package ${pkg}: apt-get install -y ${pkg})`,
    );
  }
  return false;
}

// ---------------------------------------------------------------------------
// Exit cleanup
// ---------------------------------------------------------------------------

const exitCallbacks = new Set<() => void>();
let exitListenerInstalled = false;

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

function onSignal(signal: NodeJS.Signals): void {
  runExitCallbacks();
  for (const s of SIGNALS) process.off(s, onSignal);
  // Re-raise with the default disposition unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function runExitCallbacks(): void {
  // Newest first, so processes are killed before their dirs are removed.
  for (const fn of [...exitCallbacks].reverse()) {
    try {
      fn();
    } catch {
      // best effort during exit
    }
  }
  exitCallbacks.clear();
}

/** Register a synchronous callback for process exit; returns unregister. */
export function onProcessExit(fn: () => void): () => void {
  if (!exitListenerInstalled) {
    process.on('exit', runExitCallbacks);
    for (const s of SIGNALS) process.on(s, onSignal);
    exitListenerInstalled = true;
  }
  exitCallbacks.add(fn);
  return () => {
    exitCallbacks.delete(fn);
  };
}

export interface TempDir {
  path: string;
  /** Removes the dir (idempotent) and unregisters the exit hook. */
  remove(): void;
}

/** mkdtemp under os.tmpdir(), removed on stop or, at the latest, on exit. */
export function makeTempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `ferry-${prefix}-`));
  const rm = (): void => rmSync(path, { recursive: true, force: true });
  const unregister = onProcessExit(rm);
  return {
    path,
    remove() {
      unregister();
      rm();
    },
  };
}

/** `setpriv --pdeathsig KILL <cmd> <args>` when setpriv exists, else as is. */
export function parentDeathCommand(cmd: string, args: string[]): { cmd: string; args: string[] } {
  if (process.platform !== 'linux' || !whichBinary('setpriv')) return { cmd, args };
  return { cmd: 'setpriv', args: ['--pdeathsig', 'KILL', '--', cmd, ...args] };
}
