/**
 * Thin wrappers around the `skopeo` CLI (Debian skopeo 1.9.x) used to seed and
 * read back images in the real registry.
 *
 * Contracts:
 * - skopeo(args, {env, timeoutMs}) runs `skopeo --insecure-policy <args>`
 *   hermetically: REGISTRY_AUTH_FILE points at an empty per-process auth file
 *   and CONTAINERS_REGISTRIES_CONF at an empty registries.conf, so the
 *   developer's stored credentials/mirrors never leak in. Never rejects on a
 *   non-zero exit: resolves { stdout, stderr, code }.
 * - registryArgs(reg, prefix, user): TLS + credential flags for one side of a
 *   command; prefix '' (inspect/delete), 'src-' or 'dest-' (copy). http
 *   registries get --tls-verify=false; https ones --cert-dir <dir with ca.crt>.
 *   user: a name in reg.users → --creds user:pass; null/undefined →
 *   --no-creds (anonymous); any other string is passed as 'user:pass' verbatim
 *   (to test wrong passwords).
 * - pushWithSkopeo(layoutDir, tag, reg, repo, {user, all}): `skopeo copy
 *   --preserve-digests [--all] oci:<dir>:<tag> docker://<host>/<repo>:<tag>`
 *   as `user` (default: 'alice' when the registry has users). Afterwards
 *   `skopeo inspect --raw` must yield the layout's digest for that tag (for an
 *   index pushed without --all: one of its child manifests); otherwise it
 *   throws with both digests and skopeo's output. Resolves the pushed digest.
 *   Pushes into one registry run one at a time, whatever the caller does (a
 *   Promise.all of pushes is safe): distribution answered 500 when two skopeo
 *   processes uploaded the same blob into it at once (a flaky suite setup on a
 *   fresh machine). Different registries still push in parallel.
 * - inspectRaw / inspectDigest read a manifest back (rejecting on failure).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from './binaries.js';
import type { RealRegistry } from './real-registry.js';

export interface SkopeoResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface SkopeoOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number; // default 60 s
}

let sandbox: { dir: string; authFile: string; registriesConf: string } | undefined;

function skopeoSandbox(): NonNullable<typeof sandbox> {
  if (!sandbox) {
    const dir = makeTempDir('skopeo').path; // removed on process exit
    const authFile = join(dir, 'auth.json');
    const registriesConf = join(dir, 'registries.conf');
    writeFileSync(authFile, '{"auths":{}}\n');
    writeFileSync(registriesConf, 'unqualified-search-registries = []\n');
    sandbox = { dir, authFile, registriesConf };
  }
  return sandbox;
}

export function skopeo(args: string[], opts: SkopeoOptions = {}): Promise<SkopeoResult> {
  const sb = skopeoSandbox();
  const env = {
    ...process.env,
    REGISTRY_AUTH_FILE: sb.authFile,
    CONTAINERS_REGISTRIES_CONF: sb.registriesConf,
    ...opts.env,
  };
  return new Promise((resolve) => {
    execFile(
      'skopeo', ['--insecure-policy', '--tmpdir', sb.dir, ...args],
      { env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ stdout, stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr, code });
      },
    );
  });
}

/** TLS + credential flags for one side of a skopeo command. */
export function registryArgs(reg: RealRegistry, prefix: '' | 'src-' | 'dest-', user?: string | null): string[] {
  const args = reg.certDir ? [`--${prefix}cert-dir`, reg.certDir] : [`--${prefix}tls-verify=false`];
  if (user === null || user === undefined) args.push(`--${prefix}no-creds`);
  else if (reg.users[user] !== undefined) args.push(`--${prefix}creds`, `${user}:${reg.users[user]}`);
  else args.push(`--${prefix}creds`, user);
  return args;
}

const sha256 = (s: string): string => `sha256:${createHash('sha256').update(s, 'utf8').digest('hex')}`;

function failure(what: string, r: SkopeoResult): Error {
  return new Error(`${what} failed (exit ${r.code}):\n${r.stderr.trim()}\n${r.stdout.trim()}`);
}

/** Raw manifest bytes (as utf8 text) of docker://host/repo:ref. */
export async function inspectRaw(reg: RealRegistry, repo: string, ref: string, user?: string | null): Promise<string> {
  const sep = ref.startsWith('sha256:') ? '@' : ':';
  const r = await skopeo(['inspect', '--raw', ...registryArgs(reg, '', user), `docker://${reg.host}/${repo}${sep}${ref}`]);
  if (r.code !== 0) throw failure(`skopeo inspect --raw ${reg.host}/${repo}${sep}${ref}`, r);
  return r.stdout;
}

/** sha256 digest of the raw manifest skopeo reads back. */
export async function inspectDigest(reg: RealRegistry, repo: string, ref: string, user?: string | null): Promise<string> {
  return sha256(await inspectRaw(reg, repo, ref, user));
}

interface LayoutIndex {
  manifests: Array<{ mediaType: string; digest: string; annotations?: Record<string, string> }>;
}

/** The tail of each registry's push queue (by host). */
const pushQueues = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier push into `host` has settled. */
export function serialisedPush<T>(host: string, fn: () => Promise<T>): Promise<T> {
  const run = (pushQueues.get(host) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => undefined);
  pushQueues.set(host, tail);
  void tail.then(() => { if (pushQueues.get(host) === tail) pushQueues.delete(host); });
  return run;
}

export function pushWithSkopeo(
  layoutDir: string,
  tag: string,
  reg: RealRegistry,
  repo: string,
  opts: { user?: string | null; all?: boolean } = {},
): Promise<string> {
  return serialisedPush(reg.host, () => pushNow(layoutDir, tag, reg, repo, opts));
}

async function pushNow(
  layoutDir: string,
  tag: string,
  reg: RealRegistry,
  repo: string,
  opts: { user?: string | null; all?: boolean },
): Promise<string> {
  const user = opts.user === undefined ? (Object.keys(reg.users).length ? 'alice' : null) : opts.user;
  const layout = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as LayoutIndex;
  const entry = layout.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`tag ${tag} not found in ${layoutDir}/index.json`);

  const dest = `docker://${reg.host}/${repo}:${tag}`;
  const r = await skopeo([
    'copy', '--quiet', '--preserve-digests', ...(opts.all ? ['--all'] : []),
    ...registryArgs(reg, 'dest-', user), `oci:${layoutDir}:${tag}`, dest,
  ]);
  if (r.code !== 0) throw failure(`skopeo copy oci:${layoutDir}:${tag} → ${dest} as ${user ?? 'anonymous'}`, r);

  // Read back with the pusher's identity and compare digests.
  const pushed = await inspectDigest(reg, repo, tag, user);
  let expected = [entry.digest];
  if (entry.mediaType.includes('index') && !opts.all) {
    const idx = JSON.parse(
      await readFile(join(layoutDir, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'),
    ) as LayoutIndex;
    expected = idx.manifests.map((m) => m.digest); // skopeo picked one platform
  }
  if (!expected.includes(pushed)) {
    throw new Error(
      `pushWithSkopeo: ${dest} has manifest digest ${pushed} but the OCI layout's ${tag} is ${expected.join(' | ')}` +
        ` — skopeo rewrote the manifest.\nskopeo stderr:\n${r.stderr}`,
    );
  }
  return pushed;
}
