/**
 * `ferry login` / `ferry logout` against the REAL registry (htpasswd over https, and docker token
 * auth): right password → stored where docker would (0600, every other field kept), wrong → exit 3
 * and nothing changed; a configured credential helper gets `store`/`erase`; --authfile writes a
 * podman auth.json; ferry then uses what login stored; logout and logout --all remove it; the
 * password prompt on a real terminal; --keychain against a real gnome-keyring and without one
 * (stored, then read by --keychain on later commands); a refresh token the token server issues
 * is stored as identitytoken and used through the OAuth2 refresh-token POST.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { installFakeHelper } from '../helpers/fake-cred-helper.js';
import { runInPty, shq } from '../helpers/pty.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { FERRY_BIN, runCli, type CliResult } from '../helpers/run-cli.js';
import { startSecretService, type SecretService } from '../helpers/secret-service.js';
import { expectDocument } from './json-contract.js';

const has = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl');
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const mode = (p: string): number => statSync(p).mode & 0o777;

let work: TempDir;
let n = 0;
beforeAll(() => {
  work = makeTempDir('login');
});
afterAll(() => work?.remove());

/** A fresh DOCKER_CONFIG dir, with `doc` as config.json when given. */
function dockerDir(doc?: unknown): string {
  const dir = join(work.path, `docker-${++n}`);
  mkdirSync(dir, { recursive: true });
  if (doc !== undefined) writeFileSync(join(dir, 'config.json'), JSON.stringify(doc, null, '\t'));
  return dir;
}

function expectNoSecret(r: CliResult, secret: string): void {
  expect(r.stdout + r.stderr).not.toContain(secret);
  expect(r.stdout + r.stderr).not.toContain(b64(secret));
}

const OTHER = {
  psFormat: 'table {{.ID}}',
  auths: { 'ghcr.io': { auth: b64('g:h') } },
  proxies: { default: { httpProxy: 'http://proxy.invalid:3128' } },
};

describe.skipIf(!has)('login / logout against a real htpasswd registry (https)', () => {
  let reg: RealRegistry;
  let env: Record<string, string>;
  let pw: string;
  beforeAll(async () => {
    reg = await startRegistry('htpasswd-tls');
    env = { NODE_EXTRA_CA_CERTS: reg.caFile! };
    pw = reg.users['alice']!;
  }, 60_000);
  afterAll(async () => reg?.stop());

  it('right password: stored in auths (0600, other fields and order kept), then used by ferry; logout removes it', async () => {
    const dir = dockerDir(OTHER);
    const cfg = join(dir, 'config.json');
    const r = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host], { env: { ...env, DOCKER_CONFIG: dir }, stdin: `${pw}\n` });
    expect(r.stderr).toContain(`Login succeeded: ${reg.host} (stored in ${cfg})`);
    expect(r.code).toBe(0);
    expectNoSecret(r, pw);
    expect(mode(cfg)).toBe(0o600);
    const expected = structuredClone(OTHER) as Record<string, unknown> & typeof OTHER;
    (expected.auths as Record<string, unknown>)[reg.host] = { auth: b64(`alice:${pw}`) };
    expect(readFileSync(cfg, 'utf8')).toBe(JSON.stringify(expected, null, '\t'));

    // ferry itself now authenticates with what login stored
    const tags = await runCli(['tags', `${reg.host}/nothing/here`], { env: { ...env, DOCKER_CONFIG: dir } });
    expect(tags.stderr).not.toMatch(/authentication required|credentials rejected/);
    expect(tags.code).toBe(4); // authenticated: the repository just does not exist

    const out = await runCli(['logout', reg.host], { env: { ...env, DOCKER_CONFIG: dir } });
    expect(out.code).toBe(0);
    expect(out.stderr).toContain(`Removed ${cfg}: ${reg.host}`);
    expect(readFileSync(cfg, 'utf8')).toBe(JSON.stringify(OTHER, null, '\t'));
    const again = await runCli(['logout', reg.host], { env: { ...env, DOCKER_CONFIG: dir } });
    expect(again.stderr).toContain(`Not logged in to ${reg.host}`);
  });

  it('wrong password: exit 3 (E_UNAUTHORIZED), the config byte-for-byte unchanged, no secret shown', async () => {
    const dir = dockerDir(OTHER);
    const before = readFileSync(join(dir, 'config.json'), 'utf8');
    const r = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host, '--debug'], { env: { ...env, DOCKER_CONFIG: dir }, stdin: 'WRONG-pw-81\n' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/credentials rejected/);
    expectNoSecret(r, 'WRONG-pw-81');
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(before);
  });

  it('a missing docker config is created (dir 0700, file 0600); -p works but warns', async () => {
    const dir = join(work.path, `fresh-${++n}`, 'docker');
    const r = await runCli(['login', '-u', 'alice', '-p', pw, reg.host], { env: { ...env, DOCKER_CONFIG: dir } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: a password on the command line is visible/);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ auths: { [reg.host]: { auth: b64(`alice:${pw}`) } } });
  });

  it('a configured credHelpers helper gets store (auths keeps docker\'s {} placeholder) and erase', async () => {
    const h = installFakeHelper(join(work.path, `helper-${++n}`));
    const dir = dockerDir({ credHelpers: { [reg.host]: 'fake' } });
    const e = { ...env, ...h.env, DOCKER_CONFIG: dir };
    const r = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host], { env: e, stdin: pw });
    expect(r.stderr).toContain('stored in docker-credential-fake');
    expect(r.code).toBe(0);
    expect(h.items()).toEqual({ [reg.host]: { Username: 'alice', Secret: pw } });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ credHelpers: { [reg.host]: 'fake' }, auths: { [reg.host]: {} } });
    const tags = await runCli(['tags', `${reg.host}/nothing/here`], { env: e });
    expect(tags.code).toBe(4);

    const out = await runCli(['logout', reg.host], { env: e });
    expect(out.code).toBe(0);
    expect(h.items()).toEqual({});
    expect(h.calls().at(-1)).toEqual({ verb: 'erase', stdin: reg.host });
  });

  it('--authfile writes a podman-style auth.json (bare host key) that podman-style lookup then uses', async () => {
    const file = join(work.path, `auth-${++n}.json`);
    const dir = dockerDir();
    const r = await runCli(['login', '--authfile', file, '-u', 'alice', '--password-stdin', reg.host], { env: { ...env, DOCKER_CONFIG: dir }, stdin: pw });
    expect(r.code).toBe(0);
    expect(mode(file)).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ auths: { [reg.host]: { auth: b64(`alice:${pw}`) } } });
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
    const tags = await runCli(['tags', `${reg.host}/nothing/here`], { env: { ...env, DOCKER_CONFIG: dir, REGISTRY_AUTH_FILE: file } });
    expect(tags.code).toBe(4);
    const out = await runCli(['logout', '--authfile', file, reg.host], { env: { ...env, DOCKER_CONFIG: dir } });
    expect(out.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ auths: {} });
  });

  it('logout --all empties auths and erases every helper key, keeping the rest of the config', async () => {
    const h = installFakeHelper(join(work.path, `helper-${++n}`));
    const dir = dockerDir({ auths: { a: { auth: b64('a:b') }, 'b.example': {} }, credHelpers: { 'b.example': 'fake' }, keep: 1 });
    writeFileSync(h.db, JSON.stringify({ 'b.example': { Username: 'u', Secret: 's' } }));
    const r = await runCli(['logout', '--all'], { env: { ...h.env, DOCKER_CONFIG: dir } });
    expect(r.code).toBe(0);
    expect(h.items()).toEqual({});
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toEqual({ auths: {}, credHelpers: { 'b.example': 'fake' }, keep: 1 });
  });

  it('no terminal and no --password-stdin: exit 2 with a hint', async () => {
    const r = await runCli(['login', '-u', 'alice', reg.host], { env: { ...env, DOCKER_CONFIG: dockerDir() } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/standard input is not a terminal/);
  });

  it('on a terminal: prompts for user and password, the password is not echoed', async () => {
    if (!requireBinary('script')) return;
    const dir = dockerDir();
    let typedUser = false;
    let typedPw = false;
    const cmd = `NODE_EXTRA_CA_CERTS=${shq(reg.caFile!)} DOCKER_CONFIG=${shq(dir)} ${shq(process.execPath)} ${shq(FERRY_BIN)} login ${shq(reg.host)}`;
    const r = await runInPty(cmd, (tty, type) => {
      if (!typedUser && tty.includes('Username: ')) {
        typedUser = true;
        type('alice\r');
      }
      if (!typedPw && tty.includes('Password: ')) {
        typedPw = true;
        type(`${pw}\r`);
      }
    });
    expect(r.tty).toContain('Username: alice');
    expect(r.tty).not.toContain(pw);
    expect(r.tty).toContain('Login succeeded');
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).auths[reg.host]).toEqual({ auth: b64(`alice:${pw}`) });
  });
});

describe.skipIf(!has)('login prompt interruption', () => {
  it('Ctrl-C at the password prompt: exit 130, terminal echo restored, nothing stored', async () => {
    if (!requireBinary('script')) return;
    const dir = dockerDir();
    let typed = false;
    // After ferry exits, `stty -a` shows whether echo is back on for the terminal.
    const cmd = `DOCKER_CONFIG=${shq(dir)} ${shq(process.execPath)} ${shq(FERRY_BIN)} login -u alice 127.0.0.1:9; echo "rc=$?"; stty -a`;
    const r = await runInPty(cmd, (tty, type) => {
      if (!typed && tty.includes('Password: ')) {
        typed = true;
        type('abc\u0003');
      }
    });
    expect(r.tty).toContain('rc=130');
    expect(r.tty).toMatch(/(^|\s)echo(\s|$)/m);
    expect(r.tty).not.toContain('abc');
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });
});

describe.skipIf(!has)('login against a real token-auth registry', () => {
  let reg: RealRegistry;
  beforeAll(async () => {
    reg = await startRegistry('token');
  }, 60_000);
  afterAll(async () => reg?.stop());

  it('right password → stored; wrong → exit 3, nothing stored', async () => {
    const pw = reg.users['bob']!;
    const dir = dockerDir();
    const bad = await runCli(['login', '-u', 'bob', '--password-stdin', reg.host], { env: { DOCKER_CONFIG: dir }, stdin: 'nope-Wr0ng' });
    expect(bad.code).toBe(3);
    expectNoSecret(bad, 'nope-Wr0ng');
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
    const ok = await runCli(['login', '-u', 'bob', '--password-stdin', reg.host], { env: { DOCKER_CONFIG: dir }, stdin: pw });
    expect(ok.code).toBe(0);
    expect(reg.tokenServer!.requests.some((q) => q.user === 'bob' && q.status === 200)).toBe(true);
  });

  it('the refresh token the registry issues is stored as identitytoken (not the password), as docker does, and then used', async () => {
    const pw = reg.users['alice']!;
    const dir = dockerDir();
    const mark = reg.tokenServer!.requests.length;
    const ok = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host, '--json'], { env: { DOCKER_CONFIG: dir }, stdin: pw });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ schemaVersion: 1, command: 'login', registry: reg.host, identityToken: true });
    expectDocument(JSON.parse(ok.stdout), 'login');
    // docker login's request: Basic + offline_token=true and a client_id
    const asked = reg.tokenServer!.requests.slice(mark).find((q) => q.user === 'alice');
    expect(asked?.query['offline_token']).toEqual(['true']);
    expect(asked?.query['client_id']).toEqual(['ferry']);
    const cfgText = readFileSync(join(dir, 'config.json'), 'utf8');
    const entry = JSON.parse(cfgText).auths[reg.host] as { auth: string; identitytoken: string };
    expect(entry.auth).toBe(b64('alice:'));
    expect(entry.identitytoken).toMatch(/^[0-9a-f]{64}$/);
    expect(cfgText).not.toContain(pw);
    expect(cfgText).not.toContain(b64(`alice:${pw}`));
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    // a later command authenticates with the identity token: an OAuth2 refresh-token POST
    const mark2 = reg.tokenServer!.requests.length;
    const tags = await runCli(['tags', `${reg.host}/nothing/here`], { env: { DOCKER_CONFIG: dir } });
    expect(tags.code, tags.stderr).toBe(4);
    const used = reg.tokenServer!.requests.slice(mark2);
    expect(used.some((q) => q.method === 'POST' && q.grantType === 'refresh_token' && q.user === 'alice' && q.status === 200)).toBe(true);
    expect(used.some((q) => q.hasAuth)).toBe(false); // the password is never sent again
    const out = await runCli(['logout', reg.host, '--json'], { env: { DOCKER_CONFIG: dir } });
    expect(out.code).toBe(0);
    expectDocument(JSON.parse(out.stdout), 'logout');
    expect(JSON.parse(out.stdout).removed).toEqual([`${join(dir, 'config.json')}: ${reg.host}`]);
  });
});

const HAVE_SS = process.platform === 'linux' && has
  && [requireBinary('dbus-daemon'), requireBinary('dbus-send'), requireBinary('gnome-keyring-daemon'), requireBinary('secret-tool')].every(Boolean);

describe.skipIf(!HAVE_SS)('login --keychain (real gnome-keyring)', () => {
  let reg: RealRegistry;
  let ss: SecretService;
  beforeAll(async () => {
    reg = await startRegistry('htpasswd-tls');
    ss = await startSecretService();
  }, 60_000);
  afterAll(async () => {
    await ss?.stop();
    await reg?.stop();
  });

  it('stores in the keychain, not the docker config; logout --keychain removes it', async () => {
    const pw = reg.users['alice']!;
    const dir = dockerDir();
    const e = { ...ss.env, NODE_EXTRA_CA_CERTS: reg.caFile!, DOCKER_CONFIG: dir };
    const r = await runCli(['login', '--keychain', '-u', 'alice', '--password-stdin', reg.host], { env: e, stdin: pw });
    expect(r.stderr).toContain('stored in OS keychain (@napi-rs/keyring)');
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
    const out = await runCli(['logout', '--keychain', reg.host], { env: e });
    expect(out.stderr).toContain(`Removed OS keychain: ${reg.host}`);
    expect(out.code).toBe(0);
  });

  it('--keychain on later commands reads the item (first); without --keychain it is not consulted', async () => {
    const pw = reg.users['alice']!;
    const dir = dockerDir();
    const e = { ...ss.env, NODE_EXTRA_CA_CERTS: reg.caFile!, DOCKER_CONFIG: dir };
    const r = await runCli(['login', '--keychain', '-u', 'alice', '--password-stdin', reg.host], { env: e, stdin: pw });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('later commands read it with --keychain');
    try {
      const withKc = await runCli(['tags', '--keychain', '--debug', `${reg.host}/nothing/here`], { env: e });
      expect(withKc.code, withKc.stderr).toBe(4); // authenticated; the repository does not exist
      expect(withKc.stderr).toContain(`credentials for ${reg.host} (source): basic (OS keychain (service ferry, account ${reg.host}))`);
      expect(withKc.stdout + withKc.stderr).not.toContain(pw);
      const without = await runCli(['tags', `${reg.host}/nothing/here`], { env: e });
      expect(without.code).toBe(3);
      // a docker config entry does not win over the keychain item with --keychain
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: b64('alice:wrong-password') } } }));
      const both = await runCli(['tags', '--keychain', `${reg.host}/nothing/here`], { env: e });
      expect(both.code, both.stderr).toBe(4);
    } finally {
      // plain logout (no --keychain) removes the keychain item too: "wherever they are"
      const out = await runCli(['logout', reg.host], { env: e });
      expect(out.stderr).toContain(`Removed OS keychain: ${reg.host}`);
      expect(out.code).toBe(0);
    }
    const after = await runCli(['tags', '--keychain', `${reg.host}/nothing/here`], { env: e });
    expect(after.code).toBe(3);
  });

  it('--keychain on a pull-side command without a session bus: exit 7 naming what is missing', async () => {
    const r = await runCli(['tags', '--keychain', `${reg.host}/nothing/here`], { env: { NODE_EXTRA_CA_CERTS: reg.caFile!, DOCKER_CONFIG: dockerDir() } });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('--keychain: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)');
  });

  it('without a session bus: exit 7 naming DBUS_SESSION_BUS_ADDRESS, before the registry is asked', async () => {
    const r = await runCli(['login', '--keychain', '-u', 'alice', '--password-stdin', reg.host], {
      env: { NODE_EXTRA_CA_CERTS: reg.caFile!, DOCKER_CONFIG: dockerDir() }, stdin: 'x',
    });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('--keychain: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)');
  });
});

describe('the keychain module is loaded only for --keychain', () => {
  /** Runs ferry with an ESM resolve hook that records every module specifier it resolves. */
  async function resolvedModules(args: string[]): Promise<string[]> {
    const dir = join(work.path, `trace-${++n}`);
    mkdirSync(dir);
    const hook = join(dir, 'hook.mjs');
    const trace = join(dir, 'trace.txt');
    writeFileSync(trace, '');
    const body = `import { appendFileSync } from 'node:fs';
export async function resolve(s, c, next) { appendFileSync(${JSON.stringify(trace)}, s + '\\n'); return next(s, c); }`;
    writeFileSync(hook, `import { register } from 'node:module';\nregister('data:text/javascript,' + encodeURIComponent(${JSON.stringify(body)}));\n`);
    await runCli(args, { env: { NODE_OPTIONS: `--import=${hook}`, DOCKER_CONFIG: dockerDir() } });
    return readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  }

  it('not by --version, nor by plain logout where no session bus exists (Linux); by logout --keychain', async () => {
    expect((await resolvedModules(['--version'])).filter((m) => /keyring|keytar/.test(m))).toEqual([]);
    expect((await resolvedModules(['logout', 'localhost:5000'])).filter((m) => /keyring|keytar/.test(m))).toEqual([]);
    expect(await resolvedModules(['logout', '--keychain', 'localhost:5000'])).toContain('@napi-rs/keyring');
  });
});
