import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRegistriesConf, registriesConfPaths } from '../../../src/config/index.js';
import { conf, thrown } from './helpers.js';

describe('registries.conf v2 parsing', () => {
  it('reads every field, with defaults and the line each rule came from', () => {
    const c = conf(`# comment
unqualified-search-registries = ["registry.fedoraproject.org", "quay.io"]
short-name-mode = "enforcing"

[[registry]]
prefix = "docker.io"
location = "docker.io"
mirror-by-digest-only = true

[[registry.mirror]]
location = "mirror.internal:5000/hub"
insecure = true

[[registry]]
location = "quay.io"
blocked = true

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
`);
    expect(c.search).toEqual({ registries: ['registry.fedoraproject.org', 'quay.io'], origin: { file: '/c/0.conf', line: 2 } });
    expect(c.shortNameMode).toEqual({ mode: 'enforcing', origin: { file: '/c/0.conf', line: 3 } });
    const [hub, quay] = c.registries;
    expect(hub).toMatchObject({ prefix: 'docker.io', location: 'docker.io', insecure: false, blocked: false, mirrorByDigestOnly: true, origin: { line: 5 } });
    expect(hub!.mirrors).toEqual([{ location: 'mirror.internal:5000/hub', insecure: true, pullFromMirror: 'digest-only', pullFromMirrorSet: false, origin: { file: '/c/0.conf', line: 10 } }]);
    expect(quay).toMatchObject({ prefix: 'quay.io', location: 'quay.io', blocked: true, origin: { line: 14 }, blockedOrigin: { line: 16 } });
    expect(c.aliases.get('fedora')).toEqual({ name: 'fedora', value: 'registry.fedoraproject.org/fedora', origin: { file: '/c/0.conf', line: 19 } });
  });

  it('a trailing slash is dropped from prefixes and locations; a wildcard prefix has no location', () => {
    const c = conf('[[registry]]\nprefix = "example.com/ns/"\nlocation = "other.example/x/"\n[[registry]]\nprefix = "*.corp.example"\n');
    expect(c.registries.map((r) => [r.prefix, r.location])).toEqual([['example.com/ns', 'other.example/x'], ['*.corp.example', undefined]]);
  });

  // Every malformed file: E_BAD_CONFIG, naming the file and the line of the offence.
  it.each([
    ['TOML syntax', 'a = 1\nb = [\n  x\n', 3, 'not valid TOML'],
    ['duplicate key', 'short-name-mode = "enforcing"\nshort-name-mode = "permissive"\n', 2, 'not valid TOML'],
    ['v1 format', '[registries.search]\nregistries = ["docker.io"]\n', 1, 'v1 registries.conf format'],
    ['v1 format after comments', '# old\n\n[registries.insecure]\nregistries = []\n', 3, 'v1 registries.conf format'],
    ['search registries not strings', 'unqualified-search-registries = [1, 2]\n', 1, 'must be an array of strings'],
    ['search registry with a path', '\nunqualified-search-registries = ["quay.io/ns"]\n', 2, 'not a registry host'],
    ['unknown short-name-mode', '\n\nshort-name-mode = "strict"\n', 3, '"short-name-mode" is "strict"'],
    ['insecure not a boolean', '[[registry]]\nlocation = "a.example"\ninsecure = "yes"\n', 3, '"insecure" must be true or false, not a string'],
    ['blocked not a boolean', '[[registry]]\nlocation = "a.example"\n\nblocked = 1\n', 4, '"blocked" must be true or false'],
    ['location not a string', '[[registry]]\nlocation = 5\n', 2, '"location" must be a string, not a number'],
    ['neither prefix nor location', '[[registry]]\nlocation = "a.example"\n[[registry]]\ninsecure = true\n', 3, 'neither "prefix" nor "location"'],
    ['wildcard in the wrong place', '[[registry]]\nlocation = "a.example"\n[[registry]]\nprefix = "example.*.com"\nlocation = "b.example"\n', 4, 'wildcard in the wrong place'],
    ['wildcard with a path', '[[registry]]\nprefix = "*.example.com/ns"\n', 2, 'wildcard with a port, path'],
    ['wildcard with a location', '[[registry]]\nprefix = "*.example.com"\nlocation = "x.example"\n', 3, 'cannot have a location'],
    ['location with a scheme', '[[registry]]\nlocation = "https://a.example"\n', 2, 'URI scheme'],
    ['unknown pull-from-mirror', '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m1.example"\n[[registry.mirror]]\nlocation = "m2.example"\npull-from-mirror = "sometimes"\n', 7, '"pull-from-mirror" is "sometimes"'],
    ['pull-from-mirror with mirror-by-digest-only', '[[registry]]\nlocation = "a.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "all"\n', 6, 'cannot be set on a mirror of a registry with "mirror-by-digest-only" (line 3)'],
    ['mirror without location', '[[registry]]\nlocation = "a.example"\n[[registry]]\nlocation = "b.example"\n[[registry.mirror]]\ninsecure = true\n', 5, 'has no "location"'],
    ['mirror insecure not a boolean', '[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m.example"\ninsecure = "no"\n', 5, '"insecure" must be true or false'],
    ['the same prefix twice in one file', '[[registry]]\nlocation = "a.example"\n[[registry]]\nprefix = "a.example"\nlocation = "b.example"\n', 3, 'prefix "a.example" is already defined at line 1'],
    ['registry not an array of tables', 'registry = "docker.io"\n', 1, 'must be an array of tables'],
    ['alias not a string', '[aliases]\n"a" = "x.example/a"\n"b" = 3\n', 3, 'alias "b" must be a string'],
    ['alias value not qualified', '[aliases]\n"a" = "library/a"\n', 2, 'fully qualified'],
    ['alias value with a tag', '[aliases]\n\n"a" = "x.example/a:1"\n', 3, 'no tag or digest'],
    ['alias name qualified', '[aliases]\n"x.example/a" = "x.example/a"\n', 2, 'must not name a registry'],
  ])('%s → E_BAD_CONFIG at its line', (_what, text, line, why) => {
    const e = thrown(() => conf(text));
    expect(e.code).toBe('E_BAD_CONFIG');
    expect(e.message).toMatch(new RegExp(`^/c/0\\.conf:${line}: `));
    expect(e.message).toContain(why);
  });

  it('the v1 format gets a hint to convert', () => {
    expect(thrown(() => conf('[registries.block]\nregistries = []\n')).hint).toContain('unqualified-search-registries');
  });
});

describe('drop-ins', () => {
  it('a later file replaces a [[registry]] with the same prefix wholly, and top-level keys it sets', () => {
    const c = conf(
      'unqualified-search-registries = ["a.example"]\nshort-name-mode = "enforcing"\n[[registry]]\nprefix = "docker.io"\nlocation = "one.example"\ninsecure = true\n[[registry]]\nlocation = "quay.io"\n[aliases]\n"x" = "a.example/x"\n"y" = "a.example/y"\n',
      '[[registry]]\nprefix = "docker.io"\nlocation = "two.example"\n[aliases]\n"y" = "b.example/y"\n',
      'unqualified-search-registries = []\n[aliases]\n"x" = ""\n',
    );
    const hub = c.registries.find((r) => r.prefix === 'docker.io')!;
    expect(hub).toMatchObject({ location: 'two.example', insecure: false, origin: { file: '/c/1.conf', line: 1 } });
    expect(c.registries.map((r) => r.prefix).sort()).toEqual(['docker.io', 'quay.io']);
    expect(c.search).toEqual({ registries: [], origin: { file: '/c/2.conf', line: 1 } }); // an empty list replaces too
    expect(c.shortNameMode?.mode).toBe('enforcing'); // not set later: kept
    expect(c.aliases.has('x')).toBe(false); // '' removes
    expect(c.aliases.get('y')?.value).toBe('b.example/y');
    expect(c.files).toEqual(['/c/0.conf', '/c/1.conf', '/c/2.conf']);
  });
});

describe('finding the files', () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-conf-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const put = (p: string, text: string) => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
    return join(root, p);
  };
  const home = join(root, 'home');
  const env = (extra: Record<string, string> = {}) => ({ HOME: home, FERRY_SYSCONF_ROOT: join(root, 'sys'), ...extra });

  it('nothing configured: no files, no rules', async () => {
    expect(registriesConfPaths(env())).toEqual({ main: undefined, dropIns: [], aliasCache: undefined });
    expect((await loadRegistriesConf(env())).registries).toEqual([]);
  });

  it('system file and its drop-ins (lexical order), then the user drop-ins; the alias cache wins', async () => {
    const sys = put('sys/etc/containers/registries.conf', 'unqualified-search-registries = ["sys.example"]\n[aliases]\n"app" = "sys.example/app"\n');
    const d10 = put('sys/etc/containers/registries.conf.d/10-b.conf', '[[registry]]\nlocation = "b.example"\n');
    const d02 = put('sys/etc/containers/registries.conf.d/02-a.conf', 'unqualified-search-registries = ["dropin.example"]\n');
    put('sys/etc/containers/registries.conf.d/notes.txt', 'not toml');
    const u = put('home/.config/containers/registries.conf.d/50-user.conf', '[aliases]\n"tool" = "user.example/tool"\n');
    const cache = put('home/.cache/containers/short-name-aliases.conf', '[aliases]\n"app" = "cache.example/app"\n');
    expect(registriesConfPaths(env())).toEqual({ main: sys, dropIns: [d02, d10, u], aliasCache: cache });
    const c = await loadRegistriesConf(env());
    expect(c.files).toEqual([sys, d02, d10, u, cache]);
    expect(c.search?.registries).toEqual(['dropin.example']);
    expect(c.aliases.get('app')).toMatchObject({ value: 'cache.example/app', origin: { file: cache, line: 2 } });
    expect(c.aliases.get('tool')?.value).toBe('user.example/tool');
  });

  it('a user registries.conf replaces the system one and its drop-ins', async () => {
    const user = put('home/.config/containers/registries.conf', 'unqualified-search-registries = ["user.example"]\n');
    const p = registriesConfPaths(env());
    expect(p.main).toBe(user);
    expect(p.dropIns.every((f) => f.startsWith(join(home, '.config/containers/registries.conf.d')))).toBe(true);
    rmSync(user);
  });

  it('CONTAINERS_REGISTRIES_CONF, or --registries-conf over it, names the main file; its own registries.conf.d applies', async () => {
    const mine = put('elsewhere/registries.conf', 'unqualified-search-registries = ["env.example"]\n');
    const dropin = put('elsewhere/registries.conf.d/01.conf', 'short-name-mode = "disabled"\n');
    const flag = put('flag/registries.conf', 'unqualified-search-registries = ["flag.example"]\n');
    const viaEnv = registriesConfPaths(env({ CONTAINERS_REGISTRIES_CONF: mine }));
    expect(viaEnv.main).toBe(mine);
    expect(viaEnv.dropIns[0]).toBe(dropin);
    expect(registriesConfPaths(env({ CONTAINERS_REGISTRIES_CONF: mine }), flag).main).toBe(flag);
    const c = await loadRegistriesConf(env({ CONTAINERS_REGISTRIES_CONF: mine }));
    expect(c.search?.registries).toEqual(['env.example']);
    expect(c.shortNameMode?.mode).toBe('disabled');
  });

  it('a named file that does not exist is E_NO_SUCH_FILE naming it and where it was named', () => {
    const e = thrown(() => registriesConfPaths(env({ CONTAINERS_REGISTRIES_CONF: join(root, 'nope.conf') })));
    expect(e.code).toBe('E_NO_SUCH_FILE');
    expect(e.message).toContain('nope.conf');
    expect(e.message).toContain('CONTAINERS_REGISTRIES_CONF');
    expect(thrown(() => registriesConfPaths(env(), join(root, 'nope.conf'))).message).toContain('--registries-conf');
  });

  it('a malformed drop-in names the drop-in and line', async () => {
    const bad = put('bad/registries.conf.d/20-bad.conf', '[[registry]]\nlocation = "a.example"\n\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "never"\n');
    const main = put('bad/registries.conf', '');
    await expect(loadRegistriesConf(env({ CONTAINERS_REGISTRIES_CONF: main }))).rejects.toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringMatching(new RegExp(`^${bad.replace(/[.]/g, '\\.')}:6: `)) });
  });

  it('an alias cache holding anything but [aliases] is refused', async () => {
    const main = put('cache/registries.conf', '');
    const h = join(root, 'cachehome');
    mkdirSync(join(h, '.cache/containers'), { recursive: true });
    writeFileSync(join(h, '.cache/containers/short-name-aliases.conf'), '[aliases]\n"a" = "x.example/a"\n[[registry]]\nlocation = "x.example"\n');
    await expect(loadRegistriesConf({ HOME: h, CONTAINERS_REGISTRIES_CONF: main, FERRY_SYSCONF_ROOT: join(root, 'sys') })).rejects.toMatchObject({ code: 'E_BAD_CONFIG', message: expect.stringContaining('short-name-aliases.conf:1: "registry" does not belong') });
  });
});
