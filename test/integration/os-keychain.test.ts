/**
 * --keychain's store against a REAL Secret Service: gnome-keyring-daemon on a private D-Bus
 * session bus (test/helpers/secret-service.ts), through @napi-rs/keyring, cross-checked with
 * libsecret's secret-tool. Also the failures a user meets: no bus, no Secret Service, no module.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { OsKeychain } from '../../src/auth/os-keychain.js';
import { requireBinary } from '../helpers/binaries.js';
import { startSecretService, type SecretService } from '../helpers/secret-service.js';

const HAVE = process.platform === 'linux'
  && [requireBinary('dbus-daemon'), requireBinary('dbus-send'), requireBinary('gnome-keyring-daemon'), requireBinary('secret-tool')].every(Boolean);

function secretTool(env: Record<string, string>, args: string[], input?: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    const c = execFile('secret-tool', args, { env, timeout: 10_000 }, (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }));
    if (input !== undefined) c.stdin!.end(input);
  });
}

/** Runs `fn` with DBUS_SESSION_BUS_ADDRESS set as given (the native module reads the real environment). */
async function withBus<T>(address: string | undefined, fn: () => Promise<T>): Promise<T> {
  const old = process.env['DBUS_SESSION_BUS_ADDRESS'];
  if (address === undefined) delete process.env['DBUS_SESSION_BUS_ADDRESS'];
  else process.env['DBUS_SESSION_BUS_ADDRESS'] = address;
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env['DBUS_SESSION_BUS_ADDRESS'];
    else process.env['DBUS_SESSION_BUS_ADDRESS'] = old;
  }
}

describe.skipIf(!HAVE)('OS keychain over a real Secret Service (gnome-keyring)', () => {
  let ss: SecretService;
  beforeAll(async () => {
    ss = await startSecretService();
  }, 30_000);
  afterAll(async () => {
    await ss?.stop();
  });

  it('stores, reads, lists and deletes through @napi-rs/keyring; secret-tool sees the same item', async () => {
    await withBus(ss.address, async () => {
      const kc = await OsKeychain.open({ env: ss.env });
      expect(kc.module).toBe('@napi-rs/keyring');
      await kc.set('127.0.0.1:5000', { username: 'alice', password: 'pa:ss' });
      await kc.set('docker.io', { identityToken: 'refresh-1', username: 'bob' });
      expect(await kc.get('127.0.0.1:5000')).toMatchObject({ kind: 'basic', username: 'alice', password: 'pa:ss' });
      expect(await kc.get('index.docker.io')).toMatchObject({ kind: 'identity-token', token: 'refresh-1', username: 'bob' });
      expect(await kc.get('ghcr.io')).toBeUndefined();
      expect((await kc.accounts()).sort()).toEqual(['127.0.0.1:5000', 'https://index.docker.io/v1/']);

      const look = await secretTool(ss.env, ['lookup', 'service', 'ferry', 'username', '127.0.0.1:5000']);
      expect(look.code).toBe(0);
      expect(JSON.parse(look.stdout)).toEqual({ username: 'alice', secret: 'pa:ss' });

      expect(await kc.delete('127.0.0.1:5000')).toBe(true);
      expect(await kc.delete('127.0.0.1:5000')).toBe(false);
      expect(await kc.get('127.0.0.1:5000')).toBeUndefined();
      expect((await secretTool(ss.env, ['lookup', 'service', 'ferry', 'username', '127.0.0.1:5000'])).code).not.toBe(0);
    });
  }, 30_000);

  it('reads an item another libsecret client stored under ferry\'s attributes', async () => {
    const st = await secretTool(ss.env, ['store', '--label=by secret-tool', 'service', 'ferry', 'username', 'quay.io'], JSON.stringify({ username: 'q', secret: 'from-secret-tool' }));
    expect(st.code).toBe(0);
    await withBus(ss.address, async () => {
      const kc = await OsKeychain.open({ env: ss.env });
      expect(await kc.get('quay.io')).toMatchObject({ kind: 'basic', username: 'q', password: 'from-secret-tool' });
      await kc.delete('quay.io');
    });
  }, 30_000);

  it('an item that is not ferry\'s JSON is E_BAD_CONFIG naming the account, not the value', async () => {
    await secretTool(ss.env, ['store', '--label=junk', 'service', 'ferry', 'username', 'junk.example'], 'NOT-JSON-SECRET');
    await withBus(ss.address, async () => {
      const kc = await OsKeychain.open({ env: ss.env });
      const err = await kc.get('junk.example').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('account junk.example') });
      expect((err as Error).message).not.toContain('NOT-JSON-SECRET');
      await kc.delete('junk.example');
    });
  }, 30_000);

  it('a bus without a Secret Service is E_UNSUPPORTED naming org.freedesktop.secrets', async () => {
    const bare = await startSecretService({ withKeyring: false });
    try {
      expect(await keychainInChild(bare.env, 'get')).toEqual({ code: 'E_UNSUPPORTED', message: '--keychain: no Secret Service on the session bus (org.freedesktop.secrets is not provided)' });
    } finally {
      await bare.stop();
    }
  }, 30_000);

  it('no session bus at all is E_UNSUPPORTED naming DBUS_SESSION_BUS_ADDRESS (no silent keyutils fallback)', async () => {
    const env = { PATH: process.env['PATH'] ?? '', HOME: ss.env['HOME']!, XDG_RUNTIME_DIR: '/nonexistent-ferry-run' };
    expect(await keychainInChild(env, 'set')).toEqual({ code: 'E_UNSUPPORTED', message: '--keychain: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)' });
  }, 30_000);
});

/**
 * Runs one keychain call in a fresh node process (the native module picks its store once per
 * process, so "no bus" cases cannot share the test process) using the built dist/ module.
 */
function keychainInChild(env: Record<string, string>, op: 'get' | 'set'): Promise<unknown> {
  const mod = new URL('../../dist/auth/os-keychain.js', import.meta.url).href;
  const script = `const { OsKeychain } = await import(${JSON.stringify(mod)});
try {
  const kc = await OsKeychain.open();
  ${op === 'get' ? "await kc.get('h');" : "await kc.set('h', { username: 'u', password: 'p' });"}
  console.log(JSON.stringify({ ok: true }));
} catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env, timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!));
    });
  });
}

describe('OS keychain module loading', () => {
  it('no loadable module: E_UNSUPPORTED naming each one tried', async () => {
    await expect(OsKeychain.open({ modules: ['@ferry-test/no-such-keyring', 'no-such-keytar'] })).rejects.toMatchObject({
      code: 'E_UNSUPPORTED',
      message: '--keychain: no OS keychain module: @ferry-test/no-such-keyring is not installed; no-such-keytar is not installed',
    });
  });

  it('falls back to a keytar-shaped module when @napi-rs/keyring is missing', async () => {
    // @napi-rs/keyring ships a keytar-compatible entry point: the fallback path, for real.
    const kc = await OsKeychain.open({ modules: ['@ferry-test/no-such-keyring', '@napi-rs/keyring/keytar.js'] });
    expect(kc.module).toBe('@napi-rs/keyring/keytar.js');
  });
});
