/**
 * Writing one `auths` entry of a docker config.json or a podman/containers auth.json, the way
 * `docker login` / `podman login` do, without losing anything else in the file.
 *
 * Follows docker/cli `cli/config/configfile/file.go` (`Save`, `encodeAuth`: the entry becomes
 * `{"auth": base64(user:password)}`, plus `identitytoken` when the registry returned one, with
 * the password then left out of `auth` — CLI `login.go` `loginWithUsernameAndPassword`) and
 * containers/image `pkg/docker/config/config.go` (`modifyJSON`).
 *
 * Contracts:
 * - The document is parsed, the one entry is changed in place and the whole document is written
 *   back with JSON.stringify: every other field, unknown ones included, and the key order of the
 *   document are kept; an existing entry keeps its position, a new one goes last in `auths`.
 *   Indentation is the file's own (detected from its first indented line), tab for a new file
 *   (docker's `json.MarshalIndent(…, "", "\t")`); a trailing newline is kept if the file had one.
 *   A file already in that form therefore changes only in the entry touched.
 * - Atomic: a temp file (`.<name>.<random>.tmp`, created 0600 with O_EXCL) in the same directory,
 *   written, fsynced, renamed over the file, then the directory is fsynced (best effort). On any
 *   failure the temp file is removed and the old file is untouched.
 * - Mode 0600, ALWAYS, also when the old file was wider (docker's Save copies the old file's mode
 *   instead; we narrow on purpose: the file holds secrets). When running as root the old file's
 *   owner and group are kept (as docker's `copyFilePermissions`). A missing directory is created
 *   0700 (docker: `os.MkdirAll(dir, 0o700)`).
 * - A symlinked file is written through: the link's final target is replaced, the link kept
 *   (docker `Save` uses `filepath.EvalSymlinks`).
 * - Failures: unreadable or malformed file → E_BAD_CONFIG (as the readers, messages never quote
 *   the file's content); write failures → E_IO / E_NO_SPACE naming the path.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync, fchownSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, realpathSync,
  renameSync, statSync, unlinkSync, writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';
import { convertToHostname, jsonErrorText } from './docker-config.js';

/** The fields ferry writes into an `auths` entry. */
export interface StoredAuth {
  username: string;
  /** Left out of `auth` (which is then `user:`) when `identityToken` is set, as docker does. */
  password: string;
  identityToken?: string;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** podman/containers key for a registry: Docker Hub is `docker.io` (podman login writes that). */
export function podmanAuthKey(registry: string): string {
  return registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? 'docker.io' : registry;
}

/** docker's `auths` entry for a credential (`encodeAuth`). */
export function authEntryFor(a: StoredAuth): Json {
  const password = a.identityToken ? '' : a.password;
  const e: Json = { auth: Buffer.from(`${a.username}:${password}`, 'utf8').toString('base64') };
  if (a.identityToken) e['identitytoken'] = a.identityToken;
  return e;
}

/** The path actually written: the final target of a symlink chain (even a dangling one). */
export function writeTarget(path: string): string {
  let p = resolve(path);
  for (let hops = 0; hops < 40; hops++) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return p; // missing: written here (its dir may be created)
    }
    if (!st.isSymbolicLink()) return realpathSync(p);
    p = resolve(dirname(p), readlinkSync(p));
  }
  throw new FerryError('E_IO', `${path}: too many levels of symbolic links`);
}

interface Loaded {
  doc: Json;
  indent: string;
  newline: boolean;
  existed: boolean;
}

function load(path: string, what: string): Loaded {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { doc: {}, indent: '\t', newline: false, existed: false };
    throw new FerryError('E_BAD_CONFIG', `cannot read ${what} ${path}: ${(e as Error).message}`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = text.trim() === '' ? {} : JSON.parse(text);
  } catch (e) {
    throw new FerryError('E_BAD_CONFIG', `cannot read ${what} ${path}: ${jsonErrorText(e, text)}`, { hint: `fix or remove ${path}` });
  }
  if (doc === null) doc = {};
  if (!isObject(doc)) throw new FerryError('E_BAD_CONFIG', `cannot read ${what} ${path}: top-level value is not a JSON object`);
  const m = /\n([ \t]+)\S/.exec(text);
  return { doc, indent: m ? m[1]! : '\t', newline: text.endsWith('\n'), existed: true };
}

/** The document's `auths` object (docker matches field names case-insensitively); created if absent. */
function authsOf(doc: Json, what: string, path: string, create: boolean): Json | undefined {
  let name = Object.hasOwn(doc, 'auths') ? 'auths' : Object.keys(doc).find((k) => k.toLowerCase() === 'auths');
  if (name === undefined || doc[name] === null) {
    if (!create) return undefined;
    name ??= 'auths';
    doc[name] = {};
  }
  const a = doc[name];
  if (!isObject(a)) throw new FerryError('E_BAD_CONFIG', `cannot update ${what} ${path}: "auths" is not an object`);
  return a;
}

/** Writes `text` to `path` atomically, mode 0600 (see the header). */
export function writeFileAtomic(path: string, text: string): void {
  const target = writeTarget(path);
  const dir = dirname(target);
  let owner: { uid: number; gid: number } | undefined;
  try {
    const st = statSync(target);
    if (process.getuid?.() === 0 && (st.uid !== 0 || st.gid !== 0)) owner = { uid: st.uid, gid: st.gid };
  } catch {
    /* new file */
  }
  const tmp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fd = openSync(tmp, 'wx', 0o600);
    const buf = Buffer.from(text, 'utf8');
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* already failing */ }
    }
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw ioError(e, target);
  }
  try {
    const dfd = openSync(dir, 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch {
    /* best effort: some file systems refuse fsync on a directory */
  }
}

function save(path: string, l: Loaded): void {
  writeFileAtomic(path, JSON.stringify(l.doc, null, l.indent) + (l.newline ? '\n' : ''));
}

export interface UpdateOptions {
  /** Names the file kind in errors: "docker config" (default) or "podman auth file". */
  what?: string;
  /** Also set the top-level `credsStore` if the document has none (docker's Save after
   * DetectDefaultStore). */
  credsStore?: string;
}

/**
 * Sets `auths[key]` to `entry` (docker's `{auth, identitytoken}` form from authEntryFor, or `{}`,
 * the placeholder docker writes when a helper holds the secret). Fields of an existing entry
 * that are not credentials (`email`, unknown ones) are kept, as docker keeps `email`.
 */
export function setAuthEntry(path: string, key: string, entry: Json, opts: UpdateOptions = {}): void {
  const what = opts.what ?? 'docker config';
  const l = load(path, what);
  const auths = authsOf(l.doc, what, path, true)!;
  const old = auths[key];
  const kept: Json = {};
  if (isObject(old)) {
    for (const [k, v] of Object.entries(old)) {
      if (!['auth', 'username', 'password', 'identitytoken', 'registrytoken'].includes(k.toLowerCase())) kept[k] = v;
    }
  }
  auths[key] = { ...entry, ...kept };
  if (opts.credsStore && !Object.keys(l.doc).some((k) => k.toLowerCase() === 'credsstore')) l.doc['credsStore'] = opts.credsStore;
  save(path, l);
}

/**
 * Removes `auths[key]` and every other key that docker's file store would match for it (those
 * whose ConvertToHostname is `key`: `https://host`, `http://host/v2/`, …; docker logout erases
 * `host`, `http://host` and `https://host`). Returns the keys removed; the file is rewritten only
 * when something was removed (a missing file stays missing).
 */
export function removeAuthEntries(path: string, key: string, opts: UpdateOptions = {}): string[] {
  return removeAuthEntriesWhere(path, (k) => k === key || convertToHostname(k) === key, opts);
}

/** Removes every `auths` entry (logout --all). Returns the keys removed. */
export function removeAllAuthEntries(path: string, opts: UpdateOptions = {}): string[] {
  return removeAuthEntriesWhere(path, () => true, opts);
}

/** The keys of `auths` in file order (for logout --all); [] for a missing file. */
export function listAuthKeys(path: string, opts: UpdateOptions = {}): string[] {
  const what = opts.what ?? 'docker config';
  const auths = authsOf(load(path, what).doc, what, path, false);
  return auths ? Object.keys(auths) : [];
}

/** Removes the `auths` entries whose key matches; rewrites the file only if one did. */
export function removeAuthEntriesWhere(path: string, match: (k: string) => boolean, opts: UpdateOptions = {}): string[] {
  const what = opts.what ?? 'docker config';
  const l = load(path, what);
  if (!l.existed) return [];
  const auths = authsOf(l.doc, what, path, false);
  if (!auths) return [];
  const gone = Object.keys(auths).filter(match);
  if (gone.length === 0) return [];
  for (const k of gone) delete auths[k];
  save(path, l);
  return gone;
}
