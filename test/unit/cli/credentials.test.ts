/**
 * Credential flags → host bindings (src/cli/credentials.ts): which registry each flag goes to,
 * the usage errors (ambiguous host, local side, mixed forms, one stdin), and the CLI wiring
 * (commander scope of copy/push/pull/inspect/tags/tag/delete) run in-process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { bindCredentials, type CommandScope, type CredentialFlags } from '../../../src/cli/credentials.js';
import { run } from '../../../src/cli/main.js';
import { parseLocation } from '../../../src/transports/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-cli-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scope = (command: string, source: string[], destination: string[], twoSided = true): CommandScope => ({
  command, twoSided, source: source.map(parseLocation), destination: destination.map(parseLocation),
});
const COPY_2 = scope('copy', ['a.example/x:1'], ['b.example/y:1']);
const COPY_1 = scope('copy', ['a.example/x:1'], ['a.example/y:1']);
const PULL_2 = scope('pull', ['a.example/x:1', 'b.example/y:1'], ['oci:out']);
const PUSH = scope('push', ['oci:layout'], ['b.example/y:1']);
const LOCAL = scope('copy', ['oci:a'], ['oci:b']);
const INSPECT = scope('inspect', ['a.example/x:1'], [], false);

const noStdin = async (): Promise<string> => {
  throw new Error('stdin must not be read');
};
const bind = (f: CredentialFlags, s: CommandScope, stdin: () => Promise<string> = noStdin) => bindCredentials(f, s, stdin);
const basic = (username: string, password: string, source: string) => ({ kind: 'basic', username, password, source });

describe('bindCredentials: where each flag goes', () => {
  it('--creds binds to the one host of the command, for both sides', async () => {
    expect((await bind({ creds: 'u:p' }, COPY_1)).credentials).toEqual([{ registry: 'a.example', credential: basic('u', 'p', 'command line (--creds)') }]);
    expect((await bind({ creds: 'u:p' }, PUSH)).credentials).toEqual([{ registry: 'b.example', credential: basic('u', 'p', 'command line (--creds)') }]);
    expect((await bind({ creds: 'u:p' }, INSPECT)).credentials).toEqual([{ registry: 'a.example', credential: basic('u', 'p', 'command line (--creds)') }]);
  });

  it('--src-creds / --dest-creds bind to their side\'s host', async () => {
    const r = await bind({ srcCreds: 's:1', destCreds: 'd:2' }, COPY_2);
    expect(r.credentials).toEqual([
      { registry: 'a.example', side: 'source', credential: basic('s', '1', 'command line (--src-creds)') },
      { registry: 'b.example', side: 'destination', credential: basic('d', '2', 'command line (--dest-creds)') },
    ]);
    // one registry, two users: two bindings for one host, told apart by side
    expect((await bind({ srcCreds: 's:1', destCreds: 'd:2' }, COPY_1)).credentials.map((b) => [b.registry, b.side])).toEqual([['a.example', 'source'], ['a.example', 'destination']]);
  });

  it('one --password-stdin goes with the one username flag given, read only after every check', async () => {
    let reads = 0;
    const stdin = async () => {
      reads++;
      return 'from-stdin';
    };
    const r = await bind({ srcUsername: 'me', passwordStdin: true, destCreds: 'd:2' }, COPY_2, stdin);
    expect(r.credentials[0]).toEqual({ registry: 'a.example', side: 'source', credential: basic('me', 'from-stdin', '--src-username with --password-stdin') });
    expect(reads).toBe(1);
    await expect(bind({ srcUsername: 'me', passwordStdin: true }, LOCAL, stdin)).rejects.toMatchObject({ code: 'E_USAGE' });
    expect(reads).toBe(1);
    await expect(bind({ username: 'me', passwordStdin: true }, INSPECT, async () => '')).rejects.toThrow('standard input was empty');
  });

  it('authfiles: --authfile for both sides, --src-authfile/--dest-authfile override it; checked up front', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(a, '{"auths":{}}');
    writeFileSync(b, '{}');
    expect((await bind({ authfile: a }, COPY_2)).authfiles).toEqual({ source: a, destination: a });
    expect((await bind({ authfile: a, destAuthfile: b }, COPY_2)).authfiles).toEqual({ source: a, destination: b });
    expect((await bind({ authfile: a }, LOCAL)).authfiles).toEqual({ source: a, destination: a }); // harmless: no registry asks
    await expect(bind({ authfile: join(dir, 'missing.json') }, INSPECT)).rejects.toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('missing.json: no such file') });
  });

  it('no flags: no bindings, no authfiles (the default chain)', async () => {
    expect(await bind({}, COPY_2)).toEqual({ credentials: [], authfiles: {} });
  });
});

describe('bindCredentials: usage errors', () => {
  const rows: Array<{ name: string; f: CredentialFlags; s: CommandScope; msg: RegExp; hint?: RegExp }> = [
    { name: '--creds on a copy between two registries', f: { creds: 'u:secret-pw' }, s: COPY_2, msg: /^--creds would go to every registry of this command \(a\.example, b\.example\)/, hint: /--src-creds .*--dest-creds/ },
    { name: '--username on two registries', f: { username: 'u', passwordStdin: true }, s: COPY_2, msg: /^--username would go to every registry/, hint: /--src-username/ },
    { name: '--creds on a pull from two registries', f: { creds: 'u:secret-pw' }, s: PULL_2, msg: /every registry/, hint: /--authfile/ },
    { name: '--src-creds on a pull from two registries', f: { srcCreds: 'u:secret-pw' }, s: PULL_2, msg: /^--src-creds would go to every source registry/, hint: /--src-authfile/ },
    { name: '--creds where no registry is involved', f: { creds: 'u:secret-pw' }, s: LOCAL, msg: /^--creds given, but copy oci:a, oci:b talks to no registry/ },
    { name: '--src-creds with a local source', f: { srcCreds: 'u:secret-pw' }, s: PUSH, msg: /^--src-creds given, but the source \(oci:layout\) is not a registry/ },
    { name: '--dest-creds with a local destination', f: { destCreds: 'u:secret-pw' }, s: PULL_2, msg: /^--dest-creds given, but the destination \(oci:out\) is not a registry/ },
    { name: '--dest-authfile with a local destination', f: { destAuthfile: '/x' }, s: PULL_2, msg: /^--dest-authfile given, but the destination/ },
    { name: '--creds with --src-creds', f: { creds: 'u:secret-pw', srcCreds: 'v:secret-pw' }, s: COPY_2, msg: /^--creds cannot be combined with --src-\*\/--dest-\*/ },
    { name: '--src-creds with --src-username', f: { srcCreds: 'u:secret-pw', srcUsername: 'v', passwordStdin: true }, s: COPY_2, msg: /^--src-creds cannot be combined with --src-username/ },
    { name: 'two usernames, one stdin', f: { srcUsername: 'a', destUsername: 'b', passwordStdin: true }, s: COPY_2, msg: /only one of --src-username and --dest-username \(standard input is read once\)/ },
    { name: '--dest-username without --password-stdin', f: { destUsername: 'b' }, s: COPY_2, msg: /^--dest-username needs --password-stdin/ },
    { name: '--password-stdin without a username', f: { passwordStdin: true }, s: COPY_2, msg: /^--password-stdin needs --username/ },
    { name: 'an empty username', f: { srcUsername: '', passwordStdin: true }, s: COPY_2, msg: /^--src-username is empty/ },
    { name: 'per-side flags on a one-location command', f: { srcCreds: 'u:secret-pw' }, s: INSPECT, msg: /^--src-creds is for copy, push and pull; inspect takes --creds/ },
    { name: 'a --dest-creds value without ":"', f: { destCreds: 'secret-pw' }, s: COPY_2, msg: /^--dest-creds must be USERNAME:PASSWORD/ },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const e = await bind(r.f, r.s).then(() => undefined, (err: unknown) => err as { code: string; message: string; hint?: string });
      expect(e?.code).toBe('E_USAGE');
      expect(e!.message).toMatch(r.msg);
      if (r.hint) expect(e!.hint).toMatch(r.hint);
      expect(`${e!.message} ${e!.hint ?? ''}`).not.toContain('secret-pw');
    });
  }
});

/** Runs the CLI in-process; usage errors happen before any network. */
async function cli(args: string[], stdin = ''): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const sink = (f: (s: string) => void) => Object.assign(new PassThrough(), { isTTY: false }).on('data', (d: Buffer) => f(d.toString()));
  const input = new PassThrough();
  input.end(stdin);
  const code = await run(['node', 'ferry', ...args], {
    stdout: sink(() => {}), stderr: sink((s) => (stderr += s)), stdin: input,
    env: { HOME: dir, DOCKER_CONFIG: join(dir, 'none'), PATH: '' },
  });
  return { code, stderr };
}

describe('the CLI computes each command\'s registries', () => {
  it('copy between registries with --creds → exit 2; pull -o from two registries → exit 2 naming --authfile', async () => {
    const copy = await cli(['copy', '--creds', 'u:secret-pw', 'a.example/x:1', 'b.example/y:1']);
    expect(copy.code).toBe(2);
    expect(copy.stderr).toMatch(/^ferry: --creds would go to every registry of this command \(a\.example, b\.example\)/);
    expect(copy.stderr).toMatch(/hint: .*--src-creds/);
    const pull = await cli(['pull', '--creds', 'u:secret-pw', 'a.example/x:1', 'docker.io/library/alpine:3', '-o', join(dir, 'o.tar')]);
    expect(pull.code).toBe(2);
    expect(pull.stderr).toContain('(a.example, docker.io)');
    for (const r of [copy, pull]) expect(r.stderr).not.toContain('secret-pw');
  });

  it('pull without -o: the last argument is the (local) destination', async () => {
    const r = await cli(['pull', '--dest-creds', 'u:p', 'a.example/x:1', `oci:${join(dir, 'layout')}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--dest-creds given, but the destination (oci:');
  });

  it('push: the source is local; tags/tag/delete/inspect take only side-less flags', async () => {
    const push = await cli(['push', '--src-creds', 'u:p', `oci:${dir}`, 'b.example/y:1']);
    expect(push.stderr).toContain('--src-creds given, but the source (oci:');
    for (const args of [['tags', 'a.example/x'], ['tag', 'a.example/x:1', 'v2'], ['delete', 'a.example/x:1'], ['inspect', 'a.example/x:1']]) {
      const r = await cli([args[0]!, '--dest-creds', 'u:p', ...args.slice(1)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--dest-creds is for copy, push and pull; ${args[0]} takes --creds`);
    }
  });

  it('two username flags with one --password-stdin → exit 2 before stdin is read', async () => {
    const r = await cli(['copy', '--src-username', 'a', '--dest-username', 'b', '--password-stdin', 'a.example/x:1', 'b.example/y:1'], 'pw\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('standard input is read once');
  });
});
