/**
 * Credential flags → credentials bound to the registry hosts of one command.
 *
 * Flags: `--creds U:P` / `--username U` (side-less), `--src-creds` / `--src-username`,
 * `--dest-creds` / `--dest-username`, one `--password-stdin` (pairs with the one username flag
 * given), `--authfile F` (both sides), `--src-authfile` / `--dest-authfile` (override it per side).
 *
 * Rules (all checked before standard input is read or any request is made):
 *   - a short name that pull, inspect or a copy's source qualify by registries.conf (an alias, the
 *     unqualified-search-registries) binds to the registry it resolves to, not to docker.io as it
 *     parses: one registry (an alias, a single search registry) → that one; several search
 *     registries → usage error asking to qualify the name (the credential would otherwise reach
 *     every registry probed, as podman's --creds does; it goes to one registry only).
 *   - side-less credentials go to the one registry host the command touches; none → usage error,
 *     more than one (copy between registries, pull from several) → usage error naming the
 *     per-side flags. A copy within one registry is one host: both sides use them.
 *   - `--src-*` bind to the source registry, `--dest-*` to the destination; a side without a
 *     registry, or with several (pull from several registries), is a usage error.
 *   - side-less and per-side credential flags do not mix; per-side flags belong to copy, push and
 *     pull (the commands with two sides).
 *   - a side without flag credentials resolves from its authfile, else the default chain.
 * Errors never echo a credential value.
 */
import type { Command } from 'commander';
import { loadAuthfile } from '../auth/authfile.js';
import type { Credential, CredentialBinding, CredentialSide } from '../auth/credential.js';
import { parseCredsFlag } from '../auth/flags.js';
import { RATE_LIMIT_PROBE } from '../ops/ratelimit.js';
import { resolveShortName, type RegistriesConf, type ShortNameMode } from '../config/index.js';
import { FerryError } from '../errors.js';
import { resolveLocalLocation } from '../ops/sniff.js';
import { parseRepository } from '../ref/index.js';
import { formatLocation, parseLocation, type Location } from '../transports/index.js';

export interface CredentialFlags {
  creds?: string;
  username?: string;
  srcCreds?: string;
  srcUsername?: string;
  destCreds?: string;
  destUsername?: string;
  passwordStdin?: boolean;
  authfile?: string;
  srcAuthfile?: string;
  destAuthfile?: string;
}

/** The locations a command reads (source) and writes (destination), as far as the CLI knows. */
export interface CommandScope {
  command: string;
  /** Commands with two sides (copy, push, pull) accept the per-side flags. */
  twoSided: boolean;
  source: Location[];
  destination: Location[];
  /** Source locations the command qualifies by registries.conf (pull, inspect, copy): as typed. */
  shortNames?: Map<Location, string>;
}

/** registries.conf for short names, loaded only when a credential flag meets a short name. */
export interface ShortNameRules {
  load(): Promise<RegistriesConf>;
  mode?: ShortNameMode;
}

/** Where a short name's credential would go: every registry it may resolve to. */
interface ShortNameHosts {
  input: string;
  hosts: string[];
  why: string;
  first: string;
}

export interface BoundCredentials {
  credentials: CredentialBinding[];
  authfiles: Partial<Record<CredentialSide, string>>;
}

const hostsIn = (resolved: Map<Location, ShortNameHosts>) => (locs: Location[]): string[] =>
  [...new Set(locs.flatMap((l) => (l.transport === 'docker' ? resolved.get(l)?.hosts ?? [l.ref.registry] : [])))];

/** The registries each short name of the scope resolves to (registries.conf read, no request). */
async function shortNameHosts(scope: CommandScope, rules: ShortNameRules | undefined): Promise<Map<Location, ShortNameHosts>> {
  const out = new Map<Location, ShortNameHosts>();
  if (!rules || !scope.shortNames?.size) return out;
  let conf: RegistriesConf | undefined;
  for (const [loc, input] of scope.shortNames) {
    if (loc.transport !== 'docker') continue;
    conf ??= await rules.load();
    const r = resolveShortName(input.replace(/^docker:\/\//, ''), conf, rules.mode);
    if (r.rationale === 'qualified' || r.rationale === 'docker') continue;
    const why = `${r.rationale === 'alias' ? 'alias' : 'unqualified-search-registries'}${r.origin ? ` at ${r.origin}` : ''}`;
    out.set(loc, { input, hosts: [...new Set(r.candidates.map((c) => c.registry))], why, first: r.candidates[0]!.toString() });
  }
  return out;
}
const describe = (locs: Location[]): string => locs.map(formatLocation).join(', ') || 'nothing';

/** Parses a location as the command will; undefined when it does not parse (the command reports that). */
async function tryLocation(f: () => Location | Promise<Location>): Promise<Location[]> {
  try {
    return [await f()];
  } catch {
    return [];
  }
}

/** The scope of a parsed commander command (its action's positional arguments and options). */
export async function commandScope(cmd: Command, debug?: (line: string) => void): Promise<CommandScope> {
  const name = cmd.name();
  const args = cmd.processedArgs as unknown[];
  const str = (i: number): string => String(args[i] ?? '');
  const docker = (s: string) => () => parseLocation(s);
  switch (name) {
    case 'copy':
    case 'push': { // push reads a local image only (a registry source is its own usage error)
      const source = await tryLocation(() => resolveLocalLocation(str(0), debug ? { debug } : {}));
      const shortNames = new Map<Location, string>(name === 'copy' ? source.map((l) => [l, str(0)]) : []);
      return { command: name, twoSided: true, source, destination: await tryLocation(docker(str(1))), shortNames };
    }
    case 'pull': {
      const all = Array.isArray(args[0]) ? (args[0] as string[]) : [];
      const hasOutput = (cmd.opts() as { output?: string }).output !== undefined;
      const refs = hasOutput ? all : all.slice(0, -1);
      const shortNames = new Map<Location, string>();
      const source = (await Promise.all(refs.map(async (r) => (await tryLocation(docker(r))).map((l) => (shortNames.set(l, r), l))))).flat();
      return { command: name, twoSided: true, source, destination: hasOutput ? [] : await tryLocation(docker(all[all.length - 1] ?? '')), shortNames };
    }
    case 'tags': {
      const s = str(0);
      const loc = /^(oci|oci-archive|docker-archive):/.test(s) ? docker(s) : () => ({ transport: 'docker' as const, ref: parseRepository(s.replace(/^docker:\/\//, '')) });
      return { command: name, twoSided: false, source: await tryLocation(loc), destination: [] };
    }
    case 'tag':
    case 'delete':
      return { command: name, twoSided: false, source: await tryLocation(docker(`docker://${str(0).replace(/^docker:\/\//, '')}`)), destination: [] };
    case 'inspect': {
      const source = await tryLocation(docker(str(0)));
      return { command: name, twoSided: false, source, destination: [], shortNames: new Map(source.map((l) => [l, str(0)])) };
    }
    case 'explain': // ferry auth explain REF
      return { command: name, twoSided: false, source: await tryLocation(docker(str(0))), destination: [] };
    case 'ratelimit':
      return { command: name, twoSided: false, source: await tryLocation(docker(str(0) || RATE_LIMIT_PROBE)), destination: [] };
    default:
      return { command: name, twoSided: false, source: [], destination: [] };
  }
}

const usage = (msg: string, hint?: string): FerryError => new FerryError('E_USAGE', msg, hint ? { hint } : {});

/**
 * Checks the flags against the command's scope and binds them to hosts. `readPassword` is called
 * (once) only after every check passed.
 */
export async function bindCredentials(f: CredentialFlags, scope: CommandScope, readPassword: () => Promise<string>, shortNames?: ShortNameRules): Promise<BoundCredentials> {
  const sides = {
    any: { creds: f.creds, username: f.username, flag: '--creds', userFlag: '--username' },
    source: { creds: f.srcCreds, username: f.srcUsername, flag: '--src-creds', userFlag: '--src-username' },
    destination: { creds: f.destCreds, username: f.destUsername, flag: '--dest-creds', userFlag: '--dest-username' },
  } as const;
  for (const s of Object.values(sides)) {
    if (s.creds !== undefined && s.username !== undefined) throw usage(`${s.flag} cannot be combined with ${s.userFlag}`);
  }
  const given = (s: (typeof sides)[keyof typeof sides]): boolean => s.creds !== undefined || s.username !== undefined;
  const anySide = given(sides.any);
  const perSide = given(sides.source) || given(sides.destination);
  if (anySide && perSide) {
    throw usage(`${sides.any.creds !== undefined ? '--creds' : '--username'} cannot be combined with --src-*/--dest-* credentials`, 'give each side its own: --src-creds and --dest-creds (or --src-username/--dest-username)');
  }

  // Which username the one --password-stdin belongs to.
  const users = Object.values(sides).filter((s) => s.username !== undefined);
  const emptyUser = users.find((u) => u.username === '');
  if (emptyUser) throw usage(`${emptyUser.userFlag} is empty`);
  if (f.passwordStdin && users.length === 0) throw usage('--password-stdin needs --username, --src-username or --dest-username');
  if (f.passwordStdin && users.length > 1) {
    throw usage(`--password-stdin can give the password of only one of ${users.map((u) => u.userFlag).join(' and ')} (standard input is read once)`, 'give the other side with --src-creds/--dest-creds or --src-authfile/--dest-authfile');
  }
  if (!f.passwordStdin && users.length > 0) {
    throw usage(`${users[0]!.userFlag} needs --password-stdin`, `echo "$TOKEN" | ferry … ${users[0]!.userFlag} me --password-stdin`);
  }

  // Per-side flags only where there are two sides.
  const sidedFlags = [
    ...(f.srcCreds !== undefined ? ['--src-creds'] : []), ...(f.srcUsername !== undefined ? ['--src-username'] : []),
    ...(f.destCreds !== undefined ? ['--dest-creds'] : []), ...(f.destUsername !== undefined ? ['--dest-username'] : []),
    ...(f.srcAuthfile !== undefined ? ['--src-authfile'] : []), ...(f.destAuthfile !== undefined ? ['--dest-authfile'] : []),
  ];
  if (!scope.twoSided && sidedFlags.length > 0) {
    throw usage(`${sidedFlags[0]} is for copy, push and pull; ${scope.command} takes --creds, --username or --authfile`);
  }

  // A short name's credential goes to the registry it resolves to; several possible → refused.
  const resolved = given(sides.any) || given(sides.source) ? await shortNameHosts(scope, shortNames) : new Map<Location, ShortNameHosts>();
  const hostsOf = hostsIn(resolved);
  for (const s of [sides.any, sides.source]) {
    if (!given(s)) continue;
    for (const l of scope.source) {
      const r = resolved.get(l);
      if (r && r.hosts.length > 1) {
        throw usage(`${s.creds !== undefined ? s.flag : s.userFlag}: short name ${r.input} may resolve to any of ${r.hosts.join(', ')} (${r.why}); credentials go to one registry only`,
          `qualify the name (${r.first}) so they go to that registry, or use --authfile FILE with an entry for each registry`);
      }
    }
  }

  const allLocs = [...scope.source, ...scope.destination];
  const allHosts = hostsOf(allLocs);
  const flagOf = (s: (typeof sides)[keyof typeof sides]): string => (s.creds !== undefined ? s.flag : s.userFlag);
  if (anySide) {
    const flag = flagOf(sides.any);
    if (allHosts.length === 0) throw usage(`${flag} given, but ${scope.command} ${describe(allLocs)} talks to no registry`);
    if (allHosts.length > 1) {
      const hint = hostsOf(scope.source).length > 1
        ? 'use --authfile FILE with an entry for each registry (a docker config.json or podman auth.json)'
        : 'name each side: --src-creds USER:PASSWORD and --dest-creds USER:PASSWORD (or --src-username/--dest-username with --password-stdin)';
      throw usage(`${flag} would go to every registry of this command (${allHosts.join(', ')}); credentials go to one registry only`, hint);
    }
  }
  const sideHosts = (side: CredentialSide, flag: string): string[] => {
    const locs = side === 'source' ? scope.source : scope.destination;
    const hosts = hostsOf(locs);
    if (hosts.length === 0) throw usage(`${flag} given, but the ${side} (${describe(locs)}) is not a registry`);
    return hosts;
  };
  for (const side of ['source', 'destination'] as const) {
    const s = sides[side];
    if (!given(s)) continue;
    const hosts = sideHosts(side, flagOf(s));
    if (hosts.length > 1) {
      throw usage(`${flagOf(s)} would go to every ${side} registry (${hosts.join(', ')}); credentials go to one registry only`, `use --${side === 'source' ? 'src' : 'dest'}-authfile FILE with an entry for each registry`);
    }
  }
  if (f.srcAuthfile !== undefined) sideHosts('source', '--src-authfile');
  if (f.destAuthfile !== undefined) sideHosts('destination', '--dest-authfile');

  // Authfiles: fail now on a missing or malformed file, not at the first 401.
  const authfiles: Partial<Record<CredentialSide, string>> = {};
  const srcFile = f.srcAuthfile ?? f.authfile;
  const destFile = f.destAuthfile ?? f.authfile;
  for (const file of new Set([srcFile, destFile, f.authfile])) if (file !== undefined) loadAuthfile(file);
  if (srcFile !== undefined) authfiles.source = srcFile;
  if (destFile !== undefined) authfiles.destination = destFile;

  // Every check passed: now read the one password and bind.
  const password = f.passwordStdin ? await readPassword() : undefined;
  if (f.passwordStdin && !password) throw usage('--password-stdin: standard input was empty');
  const credentialOf = (s: (typeof sides)[keyof typeof sides]): Credential => s.creds !== undefined
    ? parseCredsFlag(s.creds, s.flag)
    : { kind: 'basic', username: s.username!, password: password!, source: `${s.userFlag} with --password-stdin` };
  const credentials: CredentialBinding[] = [];
  if (anySide) credentials.push({ registry: allHosts[0]!, credential: credentialOf(sides.any) });
  for (const side of ['source', 'destination'] as const) {
    const s = sides[side];
    if (given(s)) credentials.push({ registry: hostsOf(side === 'source' ? scope.source : scope.destination)[0]!, side, credential: credentialOf(s) });
  }
  return { credentials, authfiles };
}
