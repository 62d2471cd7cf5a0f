/**
 * `--authfile FILE` (skopeo/podman's flag): credentials from one named file instead of the default
 * chain (DOCKER_AUTH_CONFIG, docker config, podman auth files).
 *
 * Accepted contents (JSON only; told apart by their fields):
 *   - a docker `config.json` or a podman/containers `auth.json`: `{"auths": {…}, "credHelpers": {…},
 *     "credsStore": "…"}` — also what a Kubernetes `.dockerconfigjson` secret value holds;
 *   - a Kubernetes Secret manifest (`kubectl get secret NAME -o json`): `data[".dockerconfigjson"]`
 *     (base64 of the above) or `data[".dockercfg"]` (base64 of the legacy format, keys at the top
 *     level), or the same under `stringData` unencoded.
 * YAML is not read (no YAML parser in ferry): a file that looks like YAML gets a hint.
 *
 * Lookup for a registry (and, for podman's namespaced keys, a repository):
 *   - helpers, with docker's semantics: `credHelpers[key]` (key = dockerAuthKey, or the registry
 *     as podman writes it) over `credsStore`; a helper's answer replaces the `auths` entry (only its
 *     `registrytoken` survives), as docker does. No platform default store is auto-detected: the
 *     file says everything;
 *   - otherwise `auths`: podman's most-specific-first keys (`host/ns/repo`, `host/ns`, `host`),
 *     docker's key (`https://index.docker.io/v1/` for Hub), then any key whose ConvertToHostname
 *     (docker) or normalised form (podman: `docker.io` ≡ `index.docker.io` ≡ `registry-1.docker.io`)
 *     names the registry.
 *   - nothing found: anonymous (an authfile need not cover every registry of a command). The
 *     cloud step of the default chain (cloud/: aws, gcloud, az) is not used either: the file says
 *     everything, as with the default store.
 *
 * A missing, unreadable or malformed file is E_BAD_CONFIG naming the file (never its contents).
 */
import { readFileSync } from 'node:fs';
import { ANONYMOUS, type Credential } from './credential.js';
import {
  type AuthEntry,
  convertToHostname,
  dockerAuthKey,
  type DockerConfig,
  isObject,
  jsonErrorText,
  parseAuthDoc,
  toEntry,
} from './docker-config.js';
import { credentialFromHelper, resolveInConfig } from './keychain.js';
import { normalizePodmanKey, normalizePodmanRegistry, podmanLookupKeys } from './podman-auth.js';
import { FerryError } from '../errors.js';

export interface AuthfileOptions {
  env?: NodeJS.ProcessEnv;
  warn?: (msg: string) => void;
  helperTimeoutMs?: number;
  /** Repository path (`org/app`) for podman's namespaced keys. */
  repository?: string;
}

const bad = (path: string, why: string, hint?: string): FerryError =>
  new FerryError('E_BAD_CONFIG', `cannot read authfile ${path}: ${why}`, hint ? { hint } : {});

function parseJson(text: string, path: string, what = ''): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    const yaml = /^\s*(apiVersion|kind|data|metadata)\s*:/m.test(text);
    throw bad(path, `${what}${jsonErrorText(e, text)}`, yaml
      ? 'ferry reads JSON authfiles; use kubectl get secret NAME -o json, or -o jsonpath=\'{.data.\\.dockerconfigjson}\' | base64 -d'
      : undefined);
  }
}

function decodeSecretValue(v: unknown, path: string, field: string, encoded: boolean): string {
  if (typeof v !== 'string') throw bad(path, `${field} is not a string`);
  if (!encoded) return v;
  const s = v.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw bad(path, `${field} is not valid base64`);
  return Buffer.from(s, 'base64').toString('utf8');
}

/** Parses authfile text (any accepted format) into the docker-config shape. */
export function parseAuthfile(text: string, path: string): Omit<DockerConfig, 'path' | 'exists'> {
  const doc = parseJson(text, path);
  const where = `authfile ${path}`;
  if (isObject(doc) && (doc['kind'] === 'Secret' || isObject(doc['data']) || isObject(doc['stringData'])) && !('auths' in doc)) {
    for (const [bag, encoded] of [['data', true], ['stringData', false]] as const) {
      const o = doc[bag];
      if (!isObject(o)) continue;
      if (o['.dockerconfigjson'] !== undefined) {
        const inner = decodeSecretValue(o['.dockerconfigjson'], path, `${bag}[".dockerconfigjson"]`, encoded);
        return parseAuthDoc(parseJson(inner, path, `${bag}[".dockerconfigjson"]: `), `${where} (${bag}[".dockerconfigjson"])`);
      }
      if (o['.dockercfg'] !== undefined) {
        const inner = parseJson(decodeSecretValue(o['.dockercfg'], path, `${bag}[".dockercfg"]`, encoded), path, `${bag}[".dockercfg"]: `);
        if (!isObject(inner)) throw bad(path, `${bag}[".dockercfg"] is not a JSON object`);
        const auths: Record<string, AuthEntry> = {};
        for (const [k, v] of Object.entries(inner)) if (isObject(v)) auths[k] = toEntry(v);
        return { auths, credHelpers: {} };
      }
    }
    throw bad(path, 'a Kubernetes Secret without data[".dockerconfigjson"] or data[".dockercfg"]', 'the Secret must be of type kubernetes.io/dockerconfigjson (kubectl create secret docker-registry)');
  }
  return parseAuthDoc(doc, where);
}

/** Reads and parses an authfile (read again on each call: it is small, and may change). */
export function loadAuthfile(path: string): Omit<DockerConfig, 'path' | 'exists'> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw bad(path, why);
  }
  return parseAuthfile(text, path);
}

/** The `auths` entry for a registry (module comment's order). */
export function authfileEntry(auths: Record<string, AuthEntry>, registry: string, repository?: string): { key: string; entry: AuthEntry } | undefined {
  const exact = [...podmanLookupKeys(registry, repository), dockerAuthKey(registry)];
  for (const k of exact) if (Object.hasOwn(auths, k)) return { key: k, entry: auths[k]! };
  const key = dockerAuthKey(registry);
  const want = normalizePodmanRegistry(registry);
  for (const [k, entry] of Object.entries(auths)) {
    if (convertToHostname(k) === key || normalizePodmanKey(k) === want) return { key: k, entry };
  }
  return undefined;
}

/** The credential `path` holds for `registry`: anonymous when the file has none. */
export async function resolveFromAuthfile(path: string, registry: string, opts: AuthfileOptions = {}): Promise<Credential> {
  const cfg = { path, exists: true, ...loadAuthfile(path) };
  const env = opts.env ?? process.env;
  const warn = opts.warn ?? ((m: string) => void process.stderr.write(`ferry: warning: ${m}\n`));
  const hOpts = { env, warn, helperTimeoutMs: opts.helperTimeoutMs };
  // podman writes credHelpers under the registry as typed (`docker.io`); docker under its key.
  const podmanHelper = cfg.credHelpers[registry];
  if (podmanHelper && !Object.hasOwn(cfg.credHelpers, dockerAuthKey(registry))) {
    return (await credentialFromHelper(podmanHelper, registry, registry, hOpts, false)) ?? { ...ANONYMOUS };
  }
  const c = await resolveInConfig(cfg, registry, {
    detectDefault: false, label: `authfile ${path}`,
    lookup: (auths) => authfileEntry(auths, registry, opts.repository),
  }, hOpts);
  return c ?? { kind: 'anonymous', source: `anonymous (authfile ${path} has no entry for ${registry})` };
}
