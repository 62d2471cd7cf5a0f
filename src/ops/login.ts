/**
 * `ferry login` / `ferry logout`: prove credentials against a registry, then store them where
 * docker would (docker/cli `cli/command/registry/login.go`, `logout.go`; `configfile/file.go`).
 *
 * login:
 * 1. Proof: `GET /v2/` through a Session holding exactly these credentials (the auth middleware
 *    does the Basic or token exchange). A 401 after that, or a rejected token exchange, is
 *    E_UNAUTHORIZED (exit 3) and nothing is stored. A registry that answers `/v2/` 200 without
 *    asking for credentials accepts the login unchecked, as docker does.
 * 2. Store, first match:
 *    - `authfile`: podman-style auth.json (key = bare host, Hub `docker.io`);
 *    - `keychain`: the OS keychain (os-keychain.ts);
 *    - docker config (`$DOCKER_CONFIG` or `~/.docker`)/config.json: helper = credHelpers[key] ??
 *      credsStore (else, in a config without any auth data, the platform default store if its
 *      helper is on PATH — then `credsStore` is written, as docker's Save does) → helper `store`
 *      plus the `{}` placeholder docker keeps in `auths`; no helper → `auths[key] = {"auth": …}`.
 *    (config-write.ts: atomic, 0600, unknown fields and key order kept.)
 * Identity tokens: the proof's token request asks for an offline token, as docker login does
 * (`client_id=ferry&offline_token=true`); a registry that returns a `refresh_token` gets it stored
 * as the `identitytoken` instead of the password (docker/cli `loginWithUsernameAndPassword`:
 * `auth` = base64("user:"), helpers get user `<token>`, the keychain item `{identitytoken,
 * username}`), so the password itself is not kept. A podman-style `authfile` keeps the password,
 * as podman login does.
 *
 * logout removes the credentials for one registry from every place ferry reads: the docker
 * config's helper (`erase`) and `auths` (the key and its URL forms), podman auth files (the given
 * `authfile`, else REGISTRY_AUTH_FILE / XDG_RUNTIME_DIR / ~/.config ones), and the OS keychain
 * (with `keychain` an unreachable keychain is an error; without, a missing module or Secret
 * Service is skipped quietly, and on Linux without a session bus nothing is loaded). `all` removes every
 * entry from those places (for helpers: every key in the config plus the credsStore's `list`).
 * A helper that fails (missing, erroring) is a warning and the rest is still removed, as docker
 * logout does; a broken config file or keychain is an error.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { authEntryFor, listAuthKeys, podmanAuthKey, removeAllAuthEntries, removeAuthEntries, removeAuthEntriesWhere, setAuthEntry } from '../auth/config-write.js';
import { eraseFromHelper, listHelper, storeInHelper } from '../auth/cred-helper-store.js';
import { detectDefaultStore } from '../auth/cred-helper.js';
import { configuredHelper, containsAuth, convertToHostname, dockerAuthKey, loadDockerConfig } from '../auth/docker-config.js';
import { OsKeychain } from '../auth/os-keychain.js';
import { normalizePodmanKey, normalizePodmanRegistry, podmanAuthFiles } from '../auth/podman-auth.js';
import { FerryError, isFerryError } from '../errors.js';
import { parseRepository, profileFor } from '../ref/index.js';
import { type OpContext, withSession } from './context.js';

export interface LoginArgs {
  registry: string;
  username: string;
  password: string;
  /** Write this podman-style auth.json instead of the docker config. */
  authfile?: string;
  /** Store in the OS keychain instead of the docker config. */
  keychain?: boolean;
}

export interface LoginResult {
  registry: string;
  /** The key the credentials are stored under. */
  key: string;
  /** Where they went, for the user: a file path, `docker-credential-X`, or `OS keychain`. */
  storedIn: string;
  /** True when the registry issued a refresh token and that was stored instead of the password. */
  identityToken?: boolean;
}

export interface LogoutArgs {
  registry?: string;
  all?: boolean;
  authfile?: string;
  keychain?: boolean;
}

export interface LogoutResult {
  /** What was removed: "<place>: <key>". Empty = was not logged in. */
  removed: string[];
}

/** `docker.io`, `ghcr.io`, `host:5000` from what a user types (`https://host/v1/` too). */
export function normalizeRegistry(input: string): string {
  const host = convertToHostname(input.trim()).toLowerCase();
  if (host === '') throw new FerryError('E_USAGE', 'login needs a registry host, e.g. ghcr.io or localhost:5000');
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return 'docker.io';
  if (host !== 'docker.io' && !host.includes('.') && !host.includes(':') && host !== 'localhost') {
    throw new FerryError('E_USAGE', `"${input}" is not a registry host name`, { hint: 'write the host as in an image reference: registry.example, host:5000, localhost:5000' });
  }
  return host;
}

function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  const home = env['HOME'] || env['USERPROFILE'] || homedir();
  return join(env['DOCKER_CONFIG'] || join(home, '.docker'), 'config.json');
}

function homeOf(env: NodeJS.ProcessEnv): string {
  return env['HOME'] || env['USERPROFILE'] || homedir();
}

/**
 * Proves `username`/`password` against `registry`: resolves with the refresh token the registry
 * issued for them (if any), or throws E_UNAUTHORIZED.
 */
export async function proveCredentials(registry: string, username: string, password: string, ctx: OpContext): Promise<{ identityToken?: string }> {
  const ref = parseRepository(`${registry}/ferry-login`);
  const credential = { kind: 'basic' as const, username, password, source: 'ferry login' };
  let identityToken: string | undefined;
  const status = await withSession({
    ...ctx, credentials: [{ registry: ref.registry, credential }], offlineTokens: true,
    observeAuth: (_r, _side, e) => {
      if (e.kind === 'token' && e.grant.refreshToken) identityToken = e.grant.refreshToken;
    },
  }, (s) => s.registry(ref).ping(ctx.signal));
  if (status === 401) {
    const hint = profileFor(registry)?.loginHint;
    throw new FerryError('E_UNAUTHORIZED', `login to ${registry} failed: credentials rejected`, { hint: hint ?? 'check the username and password/token' });
  }
  return identityToken ? { identityToken } : {};
}

/** One warning for user names that look damaged by a shell or CI variable expansion. */
function conventionWarning(registry: string, username: string): string | undefined {
  const p = profileFor(registry);
  if (p?.id === 'ngc' && username !== '$oauthtoken') return `nvcr.io expects the user name $oauthtoken (literally, with the $: quote it in the shell), not ${JSON.stringify(username)}`;
  if (username === 'robot' || username.startsWith('robot+')) return `user name ${JSON.stringify(username)} looks like a Harbor robot account whose "$" was expanded away by a shell or CI variable: write 'robot$project+name' in single quotes`;
  if (p?.id === 'ecr' && username !== 'AWS') return `Amazon ECR expects the user name AWS with the output of aws ecr get-login-password, not ${JSON.stringify(username)}`;
  return undefined;
}

export async function login(a: LoginArgs, ctx: OpContext): Promise<LoginResult> {
  const registry = normalizeRegistry(a.registry);
  if (a.username === '') throw new FerryError('E_USAGE', 'login needs a username (-u)');
  if (a.password === '') throw new FerryError('E_USAGE', 'login needs a password');
  if (a.authfile && a.keychain) throw new FerryError('E_USAGE', '--authfile and --keychain cannot be combined');
  const env = ctx.env ?? process.env;
  // A broken store is reported before the registry is asked (nothing to undo then).
  const keychain = a.keychain ? await OsKeychain.open({ env }) : undefined;
  await keychain?.check(registry);
  const odd = conventionWarning(registry, a.username);
  if (odd) (ctx.warn ?? ((m: string) => void process.stderr.write(`ferry: warning: ${m}\n`)))(odd);
  const { identityToken } = await proveCredentials(registry, a.username, a.password, ctx);
  const secret = { username: a.username, password: a.password };
  const identity = identityToken ? { identityToken } : {};

  if (a.authfile) {
    const key = podmanAuthKey(registry);
    setAuthEntry(a.authfile, key, authEntryFor(secret), { what: 'podman auth file' });
    return { registry, key, storedIn: a.authfile };
  }
  const key = dockerAuthKey(registry);
  if (keychain) {
    await keychain.set(registry, identityToken ? { identityToken, username: a.username } : secret);
    return { registry, key, storedIn: `OS keychain (${keychain.module})`, ...(identityToken ? { identityToken: true } : {}) };
  }
  const path = dockerConfigPath(env);
  const cfg = loadDockerConfig(env, homeOf(env));
  let helper = configuredHelper(cfg, key)?.helper;
  let writeStore: string | undefined;
  if (!helper && !containsAuth(cfg)) helper = writeStore = detectDefaultStore(env);
  if (helper) {
    await storeInHelper(helper, key, identityToken ? { identityToken } : { username: a.username, secret: a.password }, { env });
    setAuthEntry(path, key, {}, writeStore ? { credsStore: writeStore } : {});
    return { registry, key, storedIn: `docker-credential-${helper}`, ...(identityToken ? { identityToken: true } : {}) };
  }
  setAuthEntry(path, key, authEntryFor({ ...secret, ...identity }));
  return { registry, key, storedIn: path, ...(identityToken ? { identityToken: true } : {}) };
}

/** The registry a podman auth.json key is for (`host/ns/repo`, `https://host/v1/`, `docker.io`). */
function podmanKeyHost(k: string): string {
  return normalizePodmanKey(k.includes('://') ? k : (k.split('/', 1)[0] ?? ''));
}

export async function logout(a: LogoutArgs, ctx: OpContext): Promise<LogoutResult> {
  if (!a.all && !a.registry) throw new FerryError('E_USAGE', 'logout needs a registry, or --all');
  if (a.all && a.registry) throw new FerryError('E_USAGE', 'logout takes a registry or --all, not both');
  const env = ctx.env ?? process.env;
  const registry = a.registry ? normalizeRegistry(a.registry) : undefined;
  const removed: string[] = [];

  // docker config: helpers first (they need the auths keys), then auths.
  const path = dockerConfigPath(env);
  const cfg = loadDockerConfig(env, homeOf(env));
  const warn = ctx.warn ?? ((m: string) => void process.stderr.write(`ferry: warning: ${m}\n`));
  // As docker logout: a helper that fails is a warning, and the other places are still cleaned.
  const erase = async (helper: string, key: string): Promise<void> => {
    try {
      if (await eraseFromHelper(helper, key, { env })) removed.push(`docker-credential-${helper}: ${key}`);
    } catch (e) {
      if (!isFerryError(e)) throw e;
      warn(`could not erase the credentials for ${key}: ${e.message}`);
    }
  };
  const implicitStore = !containsAuth(cfg) ? detectDefaultStore(env) : undefined;
  if (registry) {
    const key = dockerAuthKey(registry);
    const helper = configuredHelper(cfg, key)?.helper ?? implicitStore;
    if (helper) await erase(helper, key);
    for (const k of removeAuthEntries(path, key)) removed.push(`${path}: ${k}`);
  } else {
    const pairs = new Map<string, string>(); // helper\0key → helper
    const keys = new Set([...listAuthKeys(path), ...Object.keys(cfg.credHelpers)]);
    for (const k of keys) {
      const h = configuredHelper(cfg, k)?.helper;
      if (h) pairs.set(`${h}\0${k}`, h);
    }
    const store = cfg.credsStore || implicitStore;
    if (store) {
      try {
        for (const k of Object.keys(await listHelper(store, { env }))) pairs.set(`${store}\0${k}`, store);
      } catch (e) {
        if (!isFerryError(e)) throw e;
        warn(`could not list the credentials in docker-credential-${store}: ${e.message}`);
      }
    }
    for (const [hk, h] of pairs) await erase(h, hk.slice(h.length + 1));
    for (const k of removeAllAuthEntries(path)) removed.push(`${path}: ${k}`);
  }

  // podman auth files
  const files = a.authfile ? [a.authfile] : podmanAuthFiles(env, homeOf(env)).filter((f) => f !== path);
  for (const f of files) {
    const gone = registry
      ? removeAuthEntriesWhere(f, (k) => podmanKeyHost(k) === normalizePodmanRegistry(registry), { what: 'podman auth file' })
      : removeAllAuthEntries(f, { what: 'podman auth file' });
    for (const k of gone) removed.push(`${f}: ${k}`);
  }

  // OS keychain: looked at too, since logout removes the credentials wherever they are. With
  // --keychain a keychain that cannot be reached is an error; without it, no keychain module or
  // Secret Service means nothing can be stored there (skipped quietly) and other trouble (a
  // locked keyring) is a warning. On Linux without a session bus nothing is even loaded.
  const noBus = (process.platform === 'linux' || process.platform === 'freebsd') && !env['DBUS_SESSION_BUS_ADDRESS'];
  if (a.keychain || !noBus) {
    try {
      const kc = await OsKeychain.open({ env });
      const keys = registry ? [dockerAuthKey(registry)] : await kc.accounts();
      for (const k of keys) if (await kc.deleteKey(k)) removed.push(`OS keychain: ${k}`);
    } catch (e) {
      if (a.keychain || !isFerryError(e)) throw e;
      if (e.code !== 'E_UNSUPPORTED') warn(`could not look in the OS keychain: ${e.message}`);
    }
  }
  return { removed };
}
