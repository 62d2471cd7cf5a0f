/**
 * containers-registries.conf(5) v2: parsing one file, merging drop-ins, and finding the files.
 * Every malformed file is E_BAD_CONFIG naming the file and line. The v1 format
 * (`[registries.search]`, `[registries.insecure]`, `[registries.block]`) is refused with a hint
 * to convert: containers/image itself deprecated it, and a half-supported v1 would be worse.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';
import { TomlLines } from './lines.js';
import { locationError, prefixError, trimSlash } from './prefix.js';
import {
  PULL_FROM_MIRROR, SHORT_NAME_MODES, emptyRegistriesConf,
  type AliasRule, type MirrorRule, type Origin, type PullFromMirror, type RegistriesConf, type RegistriesConfFile, type RegistryRule, type ShortNameMode,
} from './types.js';

/** A TOML parser: smol-toml's `parse`, loaded lazily by loadRegistriesConf. Its errors carry `line`. */
export type TomlParse = (text: string) => Record<string, unknown>;

export function badConfig(file: string, line: number, what: string, hint?: string): FerryError {
  return new FerryError('E_BAD_CONFIG', `${file}:${line}: ${what}`, hint === undefined ? {} : { hint });
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

const typeName = (v: unknown): string => (Array.isArray(v) ? 'an array' : isTable(v) ? 'a table' : v instanceof Date ? 'a date' : `a ${typeof v}`);

/**
 * Parses one registries.conf, drop-in, shortnames.conf or alias cache file. `aliasesOnly` (the
 * short-name alias cache) allows nothing but `[aliases]`.
 */
export function parseRegistriesConf(text: string, file: string, parse: TomlParse, aliasesOnly = false): RegistriesConfFile {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (e) {
    const line = typeof (e as { line?: unknown }).line === 'number' ? (e as { line: number }).line : 1;
    const col = (e as { column?: unknown }).column;
    const why = String((e as Error).message ?? e).split('\n')[0]!.replace(/^Invalid TOML document: /, '');
    throw badConfig(file, line, `not valid TOML: ${why}${typeof col === 'number' ? ` (column ${col})` : ''}`);
  }
  const at = new TomlLines(text);
  const out: RegistriesConfFile = { file, registries: [], aliases: [] };
  const o = (line: number): Origin => ({ file, line });

  if ('registries' in doc) {
    throw badConfig(file, at.firstTable('registries'), 'the v1 registries.conf format ([registries.search], [registries.insecure], [registries.block]) is not supported',
      'rewrite it in the v2 format: unqualified-search-registries = [...] and [[registry]] tables with location, insecure and blocked (containers-registries.conf(5))');
  }
  if (aliasesOnly) {
    for (const k of Object.keys(doc)) if (k !== 'aliases') throw badConfig(file, at.top(k), `"${k}" does not belong in a short-name alias file (only [aliases])`);
  }

  const bool = (v: unknown, key: string, line: number): boolean => {
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw badConfig(file, line, `"${key}" must be true or false, not ${typeName(v)}`);
    return v;
  };
  const str = (v: unknown, key: string, line: number): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badConfig(file, line, `"${key}" must be a string, not ${typeName(v)}`);
    return v;
  };

  const usr = doc['unqualified-search-registries'];
  if (usr !== undefined) {
    const line = at.top('unqualified-search-registries');
    if (!Array.isArray(usr) || usr.some((r) => typeof r !== 'string')) throw badConfig(file, line, '"unqualified-search-registries" must be an array of strings (registry host[:port] names)');
    for (const r of usr as string[]) {
      if (r === '' || /[\s/*@]/.test(r) || r.includes('://')) throw badConfig(file, line, `"unqualified-search-registries" holds "${r}", which is not a registry host[:port]`);
    }
    out.search = { registries: usr as string[], origin: o(line) };
  }

  const mode = doc['short-name-mode'];
  if (mode !== undefined) {
    const line = at.top('short-name-mode');
    if (mode !== '' && !SHORT_NAME_MODES.includes(mode as ShortNameMode)) {
      throw badConfig(file, line, `"short-name-mode" is ${JSON.stringify(mode)}; expected one of ${SHORT_NAME_MODES.map((m) => `"${m}"`).join(', ')}`);
    }
    if (mode !== '') out.shortNameMode = { mode: mode as ShortNameMode, origin: o(line) };
  }

  const regs = doc['registry'];
  if (regs !== undefined) {
    if (!Array.isArray(regs)) throw badConfig(file, at.top('registry'), '"registry" must be an array of tables ([[registry]])');
    regs.forEach((r, i) => {
      const rule = parseRegistry(r, i);
      const dup = out.registries.find((x) => x.prefix === rule.prefix);
      if (dup) throw badConfig(file, rule.origin.line, `[[registry]] prefix "${rule.prefix}" is already defined at line ${dup.origin.line}`);
      out.registries.push(rule);
    });
  }

  const aliases = doc['aliases'];
  if (aliases !== undefined) {
    if (!isTable(aliases)) throw badConfig(file, at.top('aliases'), '"aliases" must be a table ([aliases])');
    for (const [name, value] of Object.entries(aliases)) {
      const line = at.table('aliases', name);
      if (typeof value !== 'string') throw badConfig(file, line, `alias "${name}" must be a string, not ${typeName(value)}`);
      const why = aliasError(name, value);
      if (why) throw badConfig(file, line, `alias "${name}" = "${value}": ${why}`);
      out.aliases.push({ name, value, origin: o(line) });
    }
  }
  return out;

  function parseRegistry(r: unknown, i: number): RegistryRule {
    const head = at.registry(i);
    if (!isTable(r)) throw badConfig(file, head, `[[registry]] entry ${i + 1} must be a table, not ${typeName(r)}`);
    const line = (k: string) => at.registry(i, k);
    let prefix = str(r['prefix'], 'prefix', line('prefix'));
    let location = str(r['location'], 'location', line('location'));
    if (prefix !== undefined) {
      prefix = trimSlash(prefix);
      const why = prefixError(prefix);
      if (why) throw badConfig(file, line('prefix'), `prefix "${prefix}" ${why}`);
    }
    if (location !== undefined) {
      location = trimSlash(location);
      const why = locationError(location);
      if (why) throw badConfig(file, line('location'), `location "${location}" ${why}`);
    }
    if (prefix === undefined && location === undefined) throw badConfig(file, head, '[[registry]] has neither "prefix" nor "location"');
    if (prefix?.startsWith('*.') && location !== undefined) throw badConfig(file, line('location'), `[[registry]] with the wildcard prefix "${prefix}" cannot have a location (the matched host is the location)`);
    const mirrorByDigestOnly = bool(r['mirror-by-digest-only'], 'mirror-by-digest-only', line('mirror-by-digest-only'));
    const mirrors: MirrorRule[] = [];
    const ms = r['mirror'];
    if (ms !== undefined) {
      if (!Array.isArray(ms)) throw badConfig(file, line('mirror'), '"mirror" must be an array of tables ([[registry.mirror]])');
      ms.forEach((m, j) => {
        const ml = (k?: string) => at.mirror(i, j, k);
        if (!isTable(m)) throw badConfig(file, ml(), `[[registry.mirror]] entry ${j + 1} must be a table, not ${typeName(m)}`);
        const loc = str(m['location'], 'location', ml('location'));
        if (loc === undefined) throw badConfig(file, ml(), '[[registry.mirror]] has no "location"');
        const why = locationError(trimSlash(loc));
        if (why) throw badConfig(file, ml('location'), `mirror location "${loc}" ${why}`);
        const pfm = str(m['pull-from-mirror'], 'pull-from-mirror', ml('pull-from-mirror'));
        if (pfm !== undefined && pfm !== '' && !PULL_FROM_MIRROR.includes(pfm as PullFromMirror)) {
          throw badConfig(file, ml('pull-from-mirror'), `"pull-from-mirror" is ${JSON.stringify(pfm)}; expected "all", "digest-only" or "tag-only"`);
        }
        if (pfm && mirrorByDigestOnly) throw badConfig(file, ml('pull-from-mirror'), `"pull-from-mirror" cannot be set on a mirror of a registry with "mirror-by-digest-only" (line ${line('mirror-by-digest-only')}): use one or the other`);
        mirrors.push({
          location: trimSlash(loc),
          insecure: bool(m['insecure'], 'insecure', ml('insecure')),
          pullFromMirror: mirrorByDigestOnly ? 'digest-only' : ((pfm || 'all') as PullFromMirror),
          pullFromMirrorSet: !!pfm,
          origin: o(ml()),
        });
      });
    }
    const blocked = bool(r['blocked'], 'blocked', line('blocked'));
    return {
      prefix: prefix ?? location!,
      location: prefix?.startsWith('*.') ? undefined : (location ?? prefix!),
      insecure: bool(r['insecure'], 'insecure', line('insecure')),
      blocked,
      mirrorByDigestOnly,
      mirrors,
      origin: o(head),
      blockedOrigin: o(blocked ? line('blocked') : head),
    };
  }
}

/** docker's rule: the first component names a registry when it has '.' or ':', is localhost, or has capitals. */
export function isQualifiedName(name: string): boolean {
  const i = name.indexOf('/');
  if (i < 0) return false;
  const first = name.slice(0, i);
  return /[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first;
}

function aliasError(name: string, value: string): string | undefined {
  if (name === '' || /[\s@]/.test(name) || /:[^/]*$/.test(name)) return 'the short name must have no tag or digest';
  if (isQualifiedName(name)) return 'the short name must not name a registry';
  if (value === '') return undefined; // a drop-in removing the alias
  if (!isQualifiedName(value)) return 'the value must be a fully qualified name (registry/repository)';
  if (/@/.test(value) || /:[^/]*$/.test(value.slice(value.indexOf('/')))) return 'the value must have no tag or digest';
  return undefined;
}

/**
 * Merges files in order, as containers/image does: a later `[[registry]]` with the same prefix
 * replaces the earlier one wholly; `unqualified-search-registries` and `short-name-mode` are
 * replaced when a later file sets them; aliases are merged per name ('' removes one).
 */
export function mergeRegistriesConf(files: readonly RegistriesConfFile[]): RegistriesConf {
  const c = emptyRegistriesConf();
  const byPrefix = new Map<string, RegistryRule>();
  for (const f of files) {
    c.files.push(f.file);
    for (const r of f.registries) {
      byPrefix.delete(r.prefix); // a replaced entry takes its new file's place in the order
      byPrefix.set(r.prefix, r);
    }
    if (f.search) c.search = f.search;
    if (f.shortNameMode) c.shortNameMode = f.shortNameMode;
    for (const a of f.aliases) {
      if (a.value === '') c.aliases.delete(a.name);
      else c.aliases.set(a.name, a as AliasRule);
    }
  }
  c.registries = [...byPrefix.values()];
  return c;
}

export interface RegistriesConfPaths {
  /** The main file, or undefined when none exists. */
  main: string | undefined;
  /** Drop-in files (`*.conf`, lexical order within each directory), in the order they apply. */
  dropIns: string[];
  /** The short-name alias cache, when it exists. */
  aliasCache: string | undefined;
}

/**
 * Finds the files. Main: `explicit` (--registries-conf), else $CONTAINERS_REGISTRIES_CONF, else
 * $HOME/.config/containers/registries.conf if it exists, else /etc/containers/registries.conf.
 * Drop-ins: `registries.conf.d/` next to the main file, then (unless the main file is the user's
 * own, whose directory that already is) $HOME/.config/containers/registries.conf.d/.
 * `FERRY_SYSCONF_ROOT` stands for `/` in front of /etc paths (tests never read the real /etc).
 * A main file named by the flag or the variable must exist (E_NO_SUCH_FILE).
 */
export function registriesConfPaths(env: NodeJS.ProcessEnv, explicit?: string): RegistriesConfPaths {
  const home = env['HOME'] || homedir();
  const root = env['FERRY_SYSCONF_ROOT'] ?? '';
  const userFile = join(home, '.config/containers/registries.conf');
  const userDir = join(home, '.config/containers/registries.conf.d');
  const named = explicit ?? (env['CONTAINERS_REGISTRIES_CONF'] || undefined);
  let main: string | undefined;
  let dirs: string[];
  if (named !== undefined) {
    if (!existsSync(named)) {
      throw new FerryError('E_NO_SUCH_FILE', `registries.conf ${named} (${explicit !== undefined ? '--registries-conf' : 'CONTAINERS_REGISTRIES_CONF'}) does not exist`);
    }
    main = named;
    dirs = [join(dirname(named), 'registries.conf.d'), userDir];
  } else if (existsSync(userFile)) {
    main = userFile;
    dirs = [userDir];
  } else {
    const sys = join(root || '/', 'etc/containers/registries.conf');
    main = existsSync(sys) ? sys : undefined;
    dirs = [join(root || '/', 'etc/containers/registries.conf.d'), userDir];
  }
  const dropIns: string[] = [];
  for (const d of [...new Set(dirs)]) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names.filter((n) => n.endsWith('.conf')).sort()) dropIns.push(join(d, n));
  }
  const cache = join(home, '.cache/containers/short-name-aliases.conf');
  return { main, dropIns, aliasCache: existsSync(cache) ? cache : undefined };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw ioError(e, file);
  }
}

/**
 * Reads and merges the registries.conf files (main, drop-ins, then the alias cache, whose aliases
 * win). Loads the TOML parser only when there is a file to read.
 */
export async function loadRegistriesConf(env: NodeJS.ProcessEnv, explicit?: string): Promise<RegistriesConf> {
  const p = registriesConfPaths(env, explicit);
  const files = [...(p.main ? [p.main] : []), ...p.dropIns];
  if (!files.length && !p.aliasCache) return emptyRegistriesConf();
  const { parse } = await import('smol-toml');
  const parsed = files.map((f) => parseRegistriesConf(readText(f), f, parse as TomlParse));
  if (p.aliasCache) parsed.push(parseRegistriesConf(readText(p.aliasCache), p.aliasCache, parse as TomlParse, true));
  return mergeRegistriesConf(parsed);
}
