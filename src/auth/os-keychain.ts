/**
 * ferry's own items in the OS keychain (`--keychain`): Secret Service on Linux, Keychain on
 * macOS, Credential Manager on Windows, through `@napi-rs/keyring` (an optionalDependency with
 * prebuilt binaries), else `keytar` if the user has it installed. Neither is ever loaded unless a
 * keychain function is called: ferry's start-up does not pay for a native module.
 *
 * Contracts:
 * - One item per registry: service `ferry`, account = docker's key for the registry (Hub
 *   `https://index.docker.io/v1/`, else the host; docker-config.ts `dockerAuthKey`), secret =
 *   JSON `{"username","secret"}` or `{"identitytoken"[,"username"]}`. With @napi-rs/keyring on
 *   Linux the Secret Service item has attributes `service=ferry`, `username=<account>` (so
 *   `secret-tool lookup service ferry username <host>` finds it); keytar writes `service` and
 *   `account`. Docker's helpers cannot see these items nor ferry theirs (protocol.md §8.5):
 *   sharing with docker goes through a credential helper instead (cred-helper-store.ts).
 * - Linux: the item store is pinned to the Secret Service. @napi-rs/keyring would otherwise fall
 *   back to kernel keyutils, which do not survive a reboot — a surprise for a credential store.
 * - Anything missing is FerryError('E_UNSUPPORTED') naming it: the module ("@napi-rs/keyring is
 *   not installed (and neither is keytar)"), the session bus ("DBUS_SESSION_BUS_ADDRESS is
 *   unset"), the service ("no Secret Service on the session bus: org.freedesktop.secrets is not
 *   provided"). A locked keyring or another platform failure is E_IO with the library's text.
 *   No message ever contains a secret.
 */
import { FerryError } from '../errors.js';
import type { Credential } from './credential.js';
import { dockerAuthKey } from './docker-config.js';

export const KEYCHAIN_SERVICE = 'ferry';
export const DEFAULT_KEYCHAIN_MODULES = ['@napi-rs/keyring', 'keytar'] as const;

/** The four operations ferry needs, over either library. */
export interface KeychainBackend {
  readonly module: string;
  get(account: string): Promise<string | null>;
  set(account: string, secret: string): Promise<void>;
  delete(account: string): Promise<boolean>;
  list(): Promise<{ account: string; secret: string }[]>;
}

export interface KeychainOptions {
  env?: NodeJS.ProcessEnv;
  /** Module names tried in order (tests pass a missing one); default @napi-rs/keyring, keytar. */
  modules?: readonly string[];
  platform?: NodeJS.Platform;
}

interface NapiEntry {
  getPassword(): Promise<string | null>;
  setPassword(p: string): Promise<void>;
  deleteCredential(): Promise<boolean>;
}
interface NapiModule {
  AsyncEntry: new (service: string, user: string, opts?: unknown) => NapiEntry;
  findCredentialsAsync(service: string): Promise<{ account: string; password: string }[]>;
}
interface KeytarModule {
  getPassword(s: string, a: string): Promise<string | null>;
  setPassword(s: string, a: string, p: string): Promise<void>;
  deletePassword(s: string, a: string): Promise<boolean>;
  findCredentials(s: string): Promise<{ account: string; password: string }[]>;
}

function explain(e: unknown, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): FerryError {
  const text = e instanceof Error ? e.message : String(e);
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd') {
    if (!env['DBUS_SESSION_BUS_ADDRESS'] && /DBUS_SESSION_BUS_ADDRESS|autolaunch|Failed to connect|No such file/i.test(text)) {
      return new FerryError('E_UNSUPPORTED', '--keychain: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)', {
        hint: 'run inside a desktop session, or start one: dbus-run-session -- sh -c \'echo -n PASSWORD | gnome-keyring-daemon --unlock --components=secrets; ferry …\'',
      });
    }
    if (/org\.freedesktop\.secrets|ServiceUnknown|NameHasNoOwner/i.test(text)) {
      return new FerryError('E_UNSUPPORTED', '--keychain: no Secret Service on the session bus (org.freedesktop.secrets is not provided)', {
        hint: 'install and start a Secret Service (gnome-keyring, KeePassXC), or log in without --keychain',
      });
    }
  }
  if (/locked|prompt was dismissed/i.test(text)) {
    return new FerryError('E_IO', `--keychain: the OS keychain is locked: ${text}`, { hint: 'unlock the keyring (log in to the desktop session) and retry' });
  }
  return new FerryError('E_IO', `--keychain: OS keychain failed: ${text}`, { cause: e });
}

function napiBackend(m: NapiModule, name: string, platform: NodeJS.Platform): KeychainBackend {
  const opts = platform === 'linux' ? { linux: { store: 'secret-service' } } : undefined;
  const entry = (account: string) => new m.AsyncEntry(KEYCHAIN_SERVICE, account, opts);
  return {
    module: name,
    get: (a) => entry(a).getPassword(),
    set: (a, s) => entry(a).setPassword(s),
    delete: (a) => entry(a).deleteCredential(),
    list: async () => (await m.findCredentialsAsync(KEYCHAIN_SERVICE)).map((c) => ({ account: c.account, secret: c.password })),
  };
}

function keytarBackend(m: KeytarModule, name: string): KeychainBackend {
  return {
    module: name,
    get: (a) => m.getPassword(KEYCHAIN_SERVICE, a),
    set: (a, s) => m.setPassword(KEYCHAIN_SERVICE, a, s),
    delete: (a) => m.deletePassword(KEYCHAIN_SERVICE, a),
    list: async () => (await m.findCredentials(KEYCHAIN_SERVICE)).map((c) => ({ account: c.account, secret: c.password })),
  };
}

/** Loads the first keychain module that works; E_UNSUPPORTED naming them all when none does. */
export async function loadKeychainBackend(opts: KeychainOptions = {}): Promise<KeychainBackend> {
  const platform = opts.platform ?? process.platform;
  const modules = opts.modules ?? DEFAULT_KEYCHAIN_MODULES;
  const why: string[] = [];
  for (const name of modules) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(name)) as Record<string, unknown>;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      why.push(code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        ? `${name} is not installed`
        : `${name} cannot be loaded (${(e as Error).message.split('\n', 1)[0]})`);
      continue;
    }
    const m = (mod['default'] && typeof mod['default'] === 'object' ? { ...(mod['default'] as object), ...mod } : mod) as Record<string, unknown>;
    if (typeof m['AsyncEntry'] === 'function' && typeof m['findCredentialsAsync'] === 'function') return napiBackend(m as unknown as NapiModule, name, platform);
    if (typeof m['getPassword'] === 'function' && typeof m['findCredentials'] === 'function') return keytarBackend(m as unknown as KeytarModule, name);
    why.push(`${name} has an unknown API`);
  }
  throw new FerryError('E_UNSUPPORTED', `--keychain: no OS keychain module: ${why.join('; ')}`, {
    hint: 'install @napi-rs/keyring next to ferry (npm install @napi-rs/keyring), or log in without --keychain',
  });
}

/** The keychain, with every platform failure turned into a FerryError (see the header). */
export class OsKeychain {
  private constructor(private readonly b: KeychainBackend, private readonly env: NodeJS.ProcessEnv, private readonly platform: NodeJS.Platform) {}

  static async open(opts: KeychainOptions = {}): Promise<OsKeychain> {
    return new OsKeychain(await loadKeychainBackend(opts), opts.env ?? process.env, opts.platform ?? process.platform);
  }

  get module(): string {
    return this.b.module;
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw explain(e, this.env, this.platform);
    }
  }

  /** Talks to the keychain once (a read) so a missing bus/service/locked keyring shows up early. */
  async check(registry: string): Promise<void> {
    await this.call(() => this.b.get(dockerAuthKey(registry)));
  }

  /** The stored credential for `registry` (docker.io, ghcr.io, host:port), or undefined. */
  async get(registry: string): Promise<Credential | undefined> {
    const key = dockerAuthKey(registry);
    const raw = await this.call(() => this.b.get(key));
    return raw === null ? undefined : decode(raw, key);
  }

  async set(registry: string, c: { username: string; password: string } | { identityToken: string; username?: string }): Promise<void> {
    const value = 'identityToken' in c
      ? JSON.stringify(c.username ? { username: c.username, identitytoken: c.identityToken } : { identitytoken: c.identityToken })
      : JSON.stringify({ username: c.username, secret: c.password });
    await this.call(() => this.b.set(dockerAuthKey(registry), value));
  }

  /** True if an item was removed. */
  async delete(registry: string): Promise<boolean> {
    return this.call(() => this.b.delete(dockerAuthKey(registry)));
  }

  /** Deletes the item stored under exactly `key` (an account from `accounts()`). */
  async deleteKey(key: string): Promise<boolean> {
    return this.call(() => this.b.delete(key));
  }

  /** The keys (accounts) of every ferry item. */
  async accounts(): Promise<string[]> {
    return (await this.call(() => this.b.list())).map((c) => c.account);
  }
}

/** Decodes a stored item; a value that is not ferry's JSON is an E_BAD_CONFIG naming the key only. */
function decode(raw: string, key: string): Credential {
  const source = `OS keychain (service ${KEYCHAIN_SERVICE}, account ${key})`;
  let o: unknown;
  try {
    o = JSON.parse(raw);
  } catch {
    o = undefined;
  }
  if (typeof o === 'object' && o !== null) {
    const r = o as Record<string, unknown>;
    const username = typeof r['username'] === 'string' ? r['username'] : '';
    if (typeof r['identitytoken'] === 'string' && r['identitytoken'] !== '') {
      return username ? { kind: 'identity-token', token: r['identitytoken'], username, source } : { kind: 'identity-token', token: r['identitytoken'], source };
    }
    if (username !== '' && typeof r['secret'] === 'string') return { kind: 'basic', username, password: r['secret'], source };
  }
  throw new FerryError('E_BAD_CONFIG', `${source}: the stored item is not ferry's format`, { hint: `remove it: ferry logout ${key}` });
}
