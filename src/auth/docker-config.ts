/**
 * Reading docker's config.json (and files in the same `auths` format) the way docker/cli does.
 *
 * Follows docker/cli `cli/config/config.go` (`Dir`, `load`), `cli/config/configfile/file.go`
 * (`getAuthConfigKey`, `decodeAuth`, `parseEnvConfig`, `getConfiguredCredentialStore`) and
 * `cli/config/credentials/file_store.go` (`Get`, `ConvertToHostname`).
 *
 * Contracts:
 * - A missing file is an empty config; unreadable or malformed JSON is FerryError('E_BAD_CONFIG',
 *   `cannot read docker config <path>: <error>`). JSON error texts are stripped of the input
 *   excerpt V8 puts in them, so a secret near the syntax error never reaches a message.
 * - `auth` fields are decoded lazily, only for the entry actually selected. docker/cli fails the
 *   whole file on any bad `auth` (and `docker pull` then only warns and carries on with what it
 *   loaded); we fail only when the bad entry is the one we need, with E_BAD_CONFIG naming the key.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Credential } from './credential.js';
import { FerryError } from '../errors.js';

/** docker/cli `registry.IndexServer`: the config key for Docker Hub. */
export const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** One `auths` entry as stored on disk (docker `types.AuthConfig` JSON). */
export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfig {
  path: string;
  /** False when the file does not exist (then everything else is empty). */
  exists: boolean;
  auths: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers: Record<string, string>;
}

/** docker/cli `getAuthConfigKey`: docker.io / index.docker.io → the Hub key, else unchanged. */
export function dockerAuthKey(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? DOCKER_HUB_KEY : registry;
}

/**
 * docker/cli `ConvertToHostname`: for `scheme://authority/path` keep the authority's host[:port]
 * (IPv6 brackets kept only when a port follows, as Go's JoinHostPort does); otherwise cut at the
 * first '/'. Unlike WHATWG URL parsing, an explicit default port (`:443`) is kept, as in Go.
 */
export function convertToHostname(maybeUrl: string): string {
  const i = maybeUrl.indexOf('://');
  if (i >= 0) {
    let authority = maybeUrl.slice(i + 3).split(/[/?#]/, 1)[0] ?? '';
    authority = authority.slice(authority.lastIndexOf('@') + 1);
    const hp = splitHostPort(authority);
    if (hp && hp.host !== '') {
      if (hp.port === '') return hp.host;
      return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
    }
  }
  return maybeUrl.split('/', 1)[0] ?? '';
}

/**
 * Go's `url.URL.Hostname()`/`Port()` of an authority: `[v6]:port` in brackets, else the port is
 * what follows the LAST colon when it is digits, so an unbracketed `::1:6555` is host `::1`, port
 * `6555` (what docker/cli's ConvertToHostname then writes as `[::1]:6555`). Undefined where Go's
 * url.Parse fails.
 */
function splitHostPort(authority: string): { host: string; port: string } | undefined {
  if (authority.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(\d*))?$/.exec(authority);
    return m ? { host: m[1]!, port: m[2] ?? '' } : undefined;
  }
  const c = authority.lastIndexOf(':');
  if (c < 0) return { host: authority, port: '' };
  const port = authority.slice(c + 1);
  return /^\d*$/.test(port) ? { host: authority.slice(0, c), port } : undefined;
}

/** Text of a JSON.parse error without the input excerpt, plus line/column when known. */
export function jsonErrorText(err: unknown, text: string): string {
  let msg = err instanceof Error ? err.message : String(err);
  msg = msg.replace(/, ".*" is not valid JSON$/s, ' (not valid JSON)');
  const pos = /at position (\d+)/.exec(msg);
  if (pos && !/line \d+/.test(msg)) {
    const before = text.slice(0, Number(pos[1]));
    const line = before.split('\n').length;
    msg += ` (line ${line} column ${before.length - before.lastIndexOf('\n')})`;
  }
  return msg;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field lookup the way Go's encoding/json matches struct fields: exact name, else case-insensitive. */
function field(o: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(o, name)) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

/** An on-disk entry reduced to the string fields docker reads. */
export function toEntry(o: Record<string, unknown>): AuthEntry {
  const e: AuthEntry = {};
  for (const f of ['auth', 'username', 'password', 'identitytoken', 'registrytoken'] as const) {
    const v = field(o, f);
    if (typeof v === 'string') e[f] = v;
  }
  return e;
}

/**
 * Reads a JSON auth file (docker config.json or containers auth.json). `what` names the file kind
 * in errors ("docker config", "podman auth file"). Returns undefined when the file is missing.
 */
export function readAuthFile(path: string, what: string): Omit<DockerConfig, 'path' | 'exists'> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new FerryError('E_BAD_CONFIG', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseAuthFileText(text, `${what} ${path}`, `fix or remove ${path}`);
}

/** Parses auth-file JSON text; `where` ("docker config /x/config.json") prefixes every error. */
export function parseAuthFileText(text: string, where: string, hint?: string): Omit<DockerConfig, 'path' | 'exists'> {
  let doc: unknown;
  try {
    doc = text.trim() === '' ? {} : JSON.parse(text); // docker treats an empty file (io.EOF) as empty config
  } catch (e) {
    throw new FerryError('E_BAD_CONFIG', `cannot read ${where}: ${jsonErrorText(e, text)}`, hint ? { hint } : {});
  }
  return parseAuthDoc(doc, where);
}

/** The `auths` / `credHelpers` / `credsStore` fields of a parsed auth-file document. */
export function parseAuthDoc(doc: unknown, where: string): Omit<DockerConfig, 'path' | 'exists'> {
  if (doc === null) doc = {};
  if (!isObject(doc)) throw new FerryError('E_BAD_CONFIG', `cannot read ${where}: top-level value is not a JSON object`);
  const auths: Record<string, AuthEntry> = {};
  const rawAuths = field(doc, 'auths');
  if (isObject(rawAuths)) {
    for (const [k, v] of Object.entries(rawAuths)) if (isObject(v)) auths[k] = toEntry(v);
  } else if (rawAuths !== undefined && rawAuths !== null) {
    throw new FerryError('E_BAD_CONFIG', `cannot read ${where}: "auths" is not an object`);
  }
  const credHelpers: Record<string, string> = {};
  const rawHelpers = field(doc, 'credHelpers');
  if (isObject(rawHelpers)) {
    for (const [k, v] of Object.entries(rawHelpers)) if (typeof v === 'string') credHelpers[k] = v;
  }
  const rawStore = field(doc, 'credsStore');
  const credsStore = typeof rawStore === 'string' ? rawStore : undefined;
  return credsStore === undefined ? { auths, credHelpers } : { auths, credHelpers, credsStore };
}

/** docker/cli `config.Dir()` + `load`: `$DOCKER_CONFIG/config.json` else `<home>/.docker/config.json`. */
export function loadDockerConfig(env: NodeJS.ProcessEnv, homeDir: string): DockerConfig {
  const dir = env['DOCKER_CONFIG'] || join(homeDir, '.docker');
  const path = join(dir, 'config.json');
  const c = readAuthFile(path, 'docker config');
  return c ? { path, exists: true, ...c } : { path, exists: false, auths: {}, credHelpers: {} };
}

/** docker/cli `ConfigFile.ContainsAuth` (gates default credential-store auto-detection). */
export function containsAuth(c: DockerConfig): boolean {
  return (c.credsStore ?? '') !== '' || Object.keys(c.credHelpers).length > 0 || Object.keys(c.auths).length > 0;
}

/** docker/cli `getConfiguredCredentialStore`: credHelpers[key] over credsStore; '' = file store. */
export function configuredHelper(c: DockerConfig, key: string): { helper: string; via: 'credHelpers' | 'credsStore' } | undefined {
  if (key !== '' && Object.hasOwn(c.credHelpers, key)) {
    const h = c.credHelpers[key]!;
    return h === '' ? undefined : { helper: h, via: 'credHelpers' };
  }
  return c.credsStore ? { helper: c.credsStore, via: 'credsStore' } : undefined;
}

/** Keys written by `docker login`'s Hub OAuth flow; never credentials for a host. */
function isHubOAuthKey(k: string): boolean {
  return k === `${DOCKER_HUB_KEY}access-token` || k === `${DOCKER_HUB_KEY}refresh-token`;
}

/**
 * docker/cli file store `Get(key)`: exact `auths[key]`, else the first key whose
 * ConvertToHostname equals `key` (Go map order is random; we take file order). The lookup key
 * itself is never normalised, so `auths["docker.io"]` does not serve Docker Hub.
 */
export function fileStoreGet(auths: Record<string, AuthEntry>, key: string): { key: string; entry: AuthEntry } | undefined {
  if (Object.hasOwn(auths, key) && !isHubOAuthKey(key)) return { key, entry: auths[key]! };
  for (const [k, entry] of Object.entries(auths)) {
    if (!isHubOAuthKey(k) && convertToHostname(k) === key) return { key: k, entry };
  }
  return undefined;
}

/**
 * docker/cli `decodeAuth`: base64 (padding optional here; Go's StdEncoding requires it), split at
 * the first ':', non-empty username, NUL bytes trimmed from both ends of the password.
 * Throws a plain Error (message free of secrets) on malformed input.
 */
export function decodeAuth(auth: string): { username: string; password: string } {
  const s = auth.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new Error('"auth" is not valid base64');
  }
  const decoded = Buffer.from(s, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new Error('"auth" must decode to "username:password" with a non-empty username');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
}

/**
 * Turns one `auths` entry into a credential, docker's precedence: `registrytoken` (sent as-is;
 * moby `existingTokenHandler`) > `identitytoken` (OAuth2 refresh token) > username/password
 * (from `auth`, which wins over the `username`/`password` fields as in docker's LoadFromReader).
 * Returns undefined for an entry without usable credentials (e.g. the `{}` docker writes next to a
 * helper). Throws E_BAD_CONFIG for a malformed `auth`.
 */
export function entryToCredential(entry: AuthEntry, source: string, where: string): Credential | undefined {
  const str = (v: string | undefined): string => v ?? '';
  let username = str(entry.username);
  let password = str(entry.password);
  if (str(entry.auth) !== '') {
    try {
      ({ username, password } = decodeAuth(str(entry.auth)));
    } catch (e) {
      throw new FerryError('E_BAD_CONFIG', `cannot read ${where}: ${(e as Error).message}`);
    }
  }
  if (str(entry.registrytoken) !== '') return { kind: 'registry-token', token: str(entry.registrytoken), source };
  if (str(entry.identitytoken) !== '') {
    if (username === '') return { kind: 'identity-token', token: str(entry.identitytoken), source };
    return password !== ''
      ? { kind: 'identity-token', token: str(entry.identitytoken), username, password, source }
      : { kind: 'identity-token', token: str(entry.identitytoken), username, source };
  }
  if (username !== '') return { kind: 'basic', username, password, source };
  return undefined;
}

/**
 * docker/cli `parseEnvConfig` for DOCKER_AUTH_CONFIG: exactly one JSON object `{"auths": {key:
 * {"auth": "<base64>"}}}`; any other field, a missing/empty `auth` or a bad `auth` is an error
 * (which docker reports on stderr and then ignores the variable — so does resolveCredential).
 */
export function parseDockerAuthConfigEnv(v: string): Map<string, { username: string; password: string }> {
  let doc: unknown;
  try {
    doc = JSON.parse(v);
  } catch (e) {
    throw new Error(jsonErrorText(e, v));
  }
  const out = new Map<string, { username: string; password: string }>();
  if (doc === null) return out;
  if (!isObject(doc)) throw new Error('expected a JSON object');
  for (const k of Object.keys(doc)) if (k.toLowerCase() !== 'auths') throw new Error(`unknown field "${k}"`);
  const auths = field(doc, 'auths');
  if (auths === undefined || auths === null) return out;
  if (!isObject(auths)) throw new Error('"auths" is not an object');
  for (const [addr, e] of Object.entries(auths)) {
    if (!isObject(e)) throw new Error(`entry for ${addr} is not an object`);
    for (const k of Object.keys(e)) if (k.toLowerCase() !== 'auth') throw new Error(`unknown field "${k}" for ${addr} (only "auth" is supported)`);
    const auth = field(e, 'auth');
    if (typeof auth !== 'string' || auth === '') throw new Error(`missing key \`auth\` for ${addr}`);
    out.set(addr, decodeAuth(auth));
  }
  return out;
}
