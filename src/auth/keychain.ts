/**
 * resolveCredential: which credential to use for a registry, resolved exactly as docker/cli does
 * (`cli/command/registry.go` → `ConfigFile.GetAuthConfig` → `GetCredentialsStore(key).Get(key)`),
 * then podman/containers auth files, then anonymous.
 *
 * 1. DOCKER_AUTH_CONFIG (docker/cli ≥ 2025, `parseEnvConfig` + memorystore): exact key only; an
 *    invalid value is reported through `warn` and ignored, as docker prints and carries on.
 * 2. docker config (`$DOCKER_CONFIG` or `~/.docker`)/config.json, key = dockerAuthKey(registry):
 *    a. helper = credHelpers[key] ?? credsStore ?? (config without any auth data: the platform
 *       default store if its helper is on PATH — `DetectDefaultStore`);
 *    b. with a helper (native_store `Get`): the helper's answer replaces the inline `auths` entry
 *       entirely — "credentials not found" means none, even if `auths` has a password for the
 *       host; only the entry's `registrytoken` survives (and wins, as in moby);
 *    c. without one: the file store (exact key, then ConvertToHostname scan).
 * 3. If that gave nothing: podman auth files (podman-auth.ts).
 * 4. Cloud registries (ECR, ECR Public, GCR / Artifact Registry, ACR; the registry profiles
 *    table decides): an unconfigured docker credential helper on PATH, else the cloud's CLI
 *    (cloud/index.ts). Off with `cloudAuth: false` (--no-cloud-auth). A failure is one warning.
 * 5. `{ kind: 'anonymous', source: 'anonymous (…what was looked up, and why cloud gave none…)' }`.
 *
 * Deviations from docker, on purpose: a helper binary missing from PATH is a warning plus
 * fall-through (docker fails the pull); an auto-detected default store that fails is also only a
 * warning (the user never configured it). A configured helper failing otherwise is E_BAD_CONFIG.
 */
import { homedir } from 'node:os';
import type { Credential } from './credential.js';
import {
  type AuthEntry,
  type DockerConfig,
  configuredHelper,
  containsAuth,
  dockerAuthKey,
  entryToCredential,
  fileStoreGet,
  loadDockerConfig,
  parseDockerAuthConfigEnv,
} from './docker-config.js';
import { detectDefaultStore, getFromHelper, HELPER_PREFIX } from './cred-helper.js';
import { findInPodmanFile, podmanAuthFiles } from './podman-auth.js';
import { cloudCredential, cloudOf } from './cloud/index.js';
import { isFerryError } from '../errors.js';

export interface ResolveOptions {
  /** Environment to read (DOCKER_CONFIG, PATH for helpers, …); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Home directory for ~/.docker and ~/.config; default $HOME, else os.homedir(). */
  homeDir?: string;
  /** Non-fatal problems (missing helper, bad DOCKER_AUTH_CONFIG); default: stderr. */
  warn?: (msg: string) => void;
  /** Credential-helper timeout; default 30 s. */
  helperTimeoutMs?: number;
  /** Repository path (e.g. `org/app`) for podman's namespaced auth.json keys; optional. */
  repository?: string;
  /** Step 4, credentials from cloud CLIs for cloud registry hosts; default true. */
  cloudAuth?: boolean;
  /** Per cloud CLI or helper run in step 4; default 60 s. */
  cloudTimeoutMs?: number;
  /** --debug lines (which cloud CLI ran, how long it took; never a secret). */
  debug?: (msg: string) => void;
}

const defaultWarn = (msg: string): void => {
  process.stderr.write(`ferry: warning: ${msg}\n`);
};

/** Runs credential helper `helper` for `helperKey`; a missing binary warns and gives undefined;
 * `soft`: any failure is only a warning. */
export async function credentialFromHelper(
  helper: string, helperKey: string, registry: string, opts: { env: NodeJS.ProcessEnv; warn: (m: string) => void; helperTimeoutMs?: number | undefined }, soft: boolean,
): Promise<Credential | undefined> {
  const source = `credential helper ${HELPER_PREFIX}${helper}`;
  const helperOpts = opts.helperTimeoutMs === undefined ? { env: opts.env } : { env: opts.env, timeoutMs: opts.helperTimeoutMs };
  try {
    const r = await getFromHelper(helper, helperKey, helperOpts);
    switch (r.kind) {
      case 'basic':
        return { kind: 'basic', username: r.username, password: r.secret, source };
      case 'identity-token':
        return { kind: 'identity-token', token: r.token, source };
      case 'missing':
        opts.warn(`credential helper ${HELPER_PREFIX}${helper} not found on PATH; continuing without credentials for ${registry}`);
        return undefined;
      default:
        return undefined;
    }
  } catch (e) {
    if (soft && isFerryError(e)) {
      opts.warn(`${e.message}; continuing without credentials for ${registry}`);
      return undefined;
    }
    throw e;
  }
}

export interface ConfigLookup {
  /** Auto-detect the platform's default store for a config without auth data (docker does, for its own config). */
  detectDefault: boolean;
  /** `auths` lookup; default: docker's file store (exact key, then ConvertToHostname scan). */
  lookup?: (auths: DockerConfig['auths'], key: string) => { key: string; entry: AuthEntry } | undefined;
  /** Names the file in `source` strings: "docker config /x/config.json". */
  label: string;
}

/**
 * docker's step 2 (module comment) on one config document: credHelpers[key] > credsStore >
 * auths. undefined when the config has nothing for the registry.
 */
export async function resolveInConfig(
  cfg: DockerConfig, registry: string, how: ConfigLookup, opts: { env: NodeJS.ProcessEnv; warn: (m: string) => void; helperTimeoutMs?: number | undefined },
): Promise<Credential | undefined> {
  const key = dockerAuthKey(registry);
  const lookup = how.lookup ?? fileStoreGet;
  const fileSource = `${how.label} (auths)`;
  let helper = configuredHelper(cfg, key);
  let soft = false;
  if (!helper && how.detectDefault && !containsAuth(cfg)) {
    const def = detectDefaultStore(opts.env);
    if (def) {
      helper = { helper: def, via: 'credsStore' };
      soft = true;
    }
  }
  if (helper) {
    const registryToken = lookup(cfg.auths, key)?.entry.registrytoken;
    if (registryToken) return { kind: 'registry-token', token: registryToken, source: fileSource };
    return credentialFromHelper(helper.helper, key, registry, opts, soft);
  }
  const hit = lookup(cfg.auths, key);
  return hit ? entryToCredential(hit.entry, fileSource, `${how.label}, entry ${JSON.stringify(hit.key)}`) : undefined;
}

/** Resolves the credential for `registry` (the reference's canonical domain, e.g. `docker.io`). */
export async function resolveCredential(registry: string, opts: ResolveOptions = {}): Promise<Credential> {
  const env = opts.env ?? process.env;
  const home = opts.homeDir ?? (env['HOME'] || env['USERPROFILE'] || homedir());
  const warn = opts.warn ?? defaultWarn;
  const hOpts = { env, warn, helperTimeoutMs: opts.helperTimeoutMs };
  const key = dockerAuthKey(registry);

  // 1. DOCKER_AUTH_CONFIG
  const envConfig = env['DOCKER_AUTH_CONFIG'];
  if (envConfig) {
    try {
      const hit = parseDockerAuthConfigEnv(envConfig).get(key);
      if (hit) return { kind: 'basic', ...hit, source: 'DOCKER_AUTH_CONFIG environment variable' };
    } catch (e) {
      warn(`ignoring DOCKER_AUTH_CONFIG: ${(e as Error).message}`);
    }
  }

  // 2. docker config.json
  const cfg = loadDockerConfig(env, home);
  const c = await resolveInConfig(cfg, registry, { detectDefault: true, label: `docker config ${cfg.path}` }, hOpts);
  if (c) return c;

  // 3. podman / containers auth files
  for (const path of podmanAuthFiles(env, home)) {
    const m = findInPodmanFile(path, registry, opts.repository);
    if (!m) continue;
    if (m.kind === 'helper') {
      const c = await credentialFromHelper(m.helper, registry, registry, hOpts, false);
      if (c) return c;
      continue;
    }
    const c = entryToCredential(m.entry, `podman auth ${path}`, `podman auth file ${path}, entry ${JSON.stringify(m.key)}`);
    if (c) return c;
  }

  // 4. cloud registries: the cloud's helper or CLI
  let cloudNote = '';
  if (opts.cloudAuth === false) {
    if (cloudOf(registry)) cloudNote = '; cloud credentials are off (--no-cloud-auth)';
  } else {
    const cloudOpts = { env, warn, ...(opts.debug ? { debug: opts.debug } : {}), ...(opts.cloudTimeoutMs !== undefined ? { timeoutMs: opts.cloudTimeoutMs } : {}) };
    const r = await cloudCredential(registry, cloudOpts);
    if (r?.kind === 'credential') return r.credential;
    if (r) cloudNote = `; ${r.reason}`;
  }

  // 5. nothing: say what was looked up, so a 401's hint can name the exact key (Docker Hub's is
  // https://index.docker.io/v1/, not docker.io), and why the cloud step gave nothing.
  return { kind: 'anonymous', source: `anonymous (no credentials for ${JSON.stringify(key)} in docker config ${cfg.path}${envConfig ? ' or DOCKER_AUTH_CONFIG' : ''}, nor in podman's auth files${cloudNote})` };
}
