/**
 * containers/image (podman, skopeo, buildah) auth files, consulted by resolveCredential only when
 * docker's config produced nothing — go-containerregistry's `pkg/authn/keychain.go` order.
 *
 * Files, in order (each read only if it exists):
 *   1. `$REGISTRY_AUTH_FILE`
 *   2. `$XDG_RUNTIME_DIR/containers/auth.json` (skipped when XDG_RUNTIME_DIR is unset)
 *   3. `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`
 * Unlike podman, a set REGISTRY_AUTH_FILE does not hide files 2–3: we search all and the first
 * match wins (the more forgiving reading; podman only searches the explicit file).
 *
 * Matching in one file (containers/image `pkg/docker/config/config.go` `findCredentialsInFile`):
 *   - `credHelpers[registry]` first (registry as written in references, e.g. `docker.io`);
 *   - then exact keys, most specific first: `registry/ns/repo`, `registry/ns`, `registry`
 *     (`authKeyLookupOrder`; namespaced keys need ResolveOptions.repository);
 *   - then any key whose normalised form equals the normalised registry (`normalizeAuthFileKey`:
 *     `http(s)://host/…` → `host`; `docker.io`, `registry-1.docker.io` → `index.docker.io`).
 */
import { join } from 'node:path';
import { readAuthFile } from './docker-config.js';
import type { AuthEntry } from './docker-config.js';

/** The auth.json paths to try, in order (see module comment). */
export function podmanAuthFiles(env: NodeJS.ProcessEnv, homeDir: string): string[] {
  const files: string[] = [];
  if (env['REGISTRY_AUTH_FILE']) files.push(env['REGISTRY_AUTH_FILE']);
  if (env['XDG_RUNTIME_DIR']) files.push(join(env['XDG_RUNTIME_DIR'], 'containers', 'auth.json'));
  files.push(join(env['XDG_CONFIG_HOME'] || join(homeDir, '.config'), 'containers', 'auth.json'));
  return [...new Set(files)];
}

/** containers/image `normalizeRegistry`. */
export function normalizePodmanRegistry(registry: string): string {
  return registry === 'docker.io' || registry === 'registry-1.docker.io' ? 'index.docker.io' : registry;
}

/** containers/image `normalizeAuthFileKey` (non-legacy format). */
export function normalizePodmanKey(key: string): string {
  const stripped = key.replace(/^https?:\/\//, '');
  return normalizePodmanRegistry(stripped !== key ? (stripped.split('/', 1)[0] ?? '') : stripped);
}

/** `registry/a/b` → [`registry/a/b`, `registry/a`, `registry`] (containers/image `authKeysForKey`). */
export function podmanLookupKeys(registry: string, repository?: string): string[] {
  const keys: string[] = [];
  let k = repository ? `${registry}/${repository.replace(/^\/+|\/+$/g, '')}` : registry;
  for (;;) {
    keys.push(k);
    if (k.length <= registry.length) break;
    const i = k.lastIndexOf('/');
    if (i < registry.length) break;
    k = k.slice(0, i);
  }
  if (keys[keys.length - 1] !== registry) keys.push(registry);
  return keys;
}

export type PodmanMatch =
  | { kind: 'helper'; path: string; helper: string }
  | { kind: 'entry'; path: string; key: string; entry: AuthEntry };

/** Looks `registry` up in one auth file; undefined when the file is missing or has no match. */
export function findInPodmanFile(path: string, registry: string, repository?: string): PodmanMatch | undefined {
  const f = readAuthFile(path, 'podman auth file');
  if (!f) return undefined;
  const helper = f.credHelpers[registry];
  if (helper) return { kind: 'helper', path, helper };
  for (const key of podmanLookupKeys(registry, repository)) {
    if (Object.hasOwn(f.auths, key)) return { kind: 'entry', path, key, entry: f.auths[key]! };
  }
  const want = normalizePodmanRegistry(registry);
  for (const [key, entry] of Object.entries(f.auths)) {
    if (normalizePodmanKey(key) === want) return { kind: 'entry', path, key, entry };
  }
  return undefined;
}
