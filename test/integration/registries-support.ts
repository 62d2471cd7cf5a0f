/**
 * The registry × credential-source matrix shared by test/integration/registries-*.test.ts (split
 * so vitest runs them in parallel). Not a test file itself.
 *
 * Every emulation (test/helpers/emulated-registry.ts: the real distribution registry behind a TLS
 * front answering for the real host name, reached only through ferry's --resolve to 127.0.0.1) is
 * started once per file. Each cell = one registry × one credential source, and runs through the
 * built CLI: push (from an OCI layout) → inspect (digest) → tags (the tag) → pull to an OCI layout
 * (manifest digest, a layer's bytes) → copy to another repository on the same registry (digest).
 * Anonymous cells (registries with public pulls) pull a repository seeded with the registry's own
 * credentials, and their push must fail with exit 3.
 *
 * CREDENTIAL_SOURCES is a table of functions `(emulation, dir) => { env, files, args?, check? }`:
 * docker config auths, credHelpers, credsStore, podman auth.json, the cloud's own CLI only (aws,
 * az, gcloud — fakes that print what the real ones print — on a PATH with nothing else), the
 * cloud's credential helper only (found on PATH, not configured), the OS keychain (a real
 * gnome-keyring, filled by `ferry login --keychain` against the emulation, read with
 * `--keychain`), and anonymous where the registry has public pulls. `entryFor` picks which of a registry's
 * credentials a source holds (ACR and GCR/Artifact Registry have several kinds; each source gets
 * a different one, so all of them are exercised).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import {
  ACR_NULL_GUID, ACR_REFRESH_TOKEN, ECR_PASSWORD, GCP_ACCESS_TOKEN, EMULATED_PROFILES, hasPublicPulls, startEmulatedRegistry, type EmulatedProfile, type EmulatedRegistry,
} from '../helpers/emulated-registry.js';
import { installFakeHelper } from '../helpers/fake-cred-helper.js';
import { writeFakeCloudClis, type FakeCloudCli } from '../helpers/fake-cloud-clis.js';
import { startSecretService, type SecretService } from '../helpers/secret-service.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';
import { expectFailure, ferryImage, ferryJson, layoutEntry, readBlob, sha256Of } from './support.js';

export const HAS_BINARIES = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl')
  && ['dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'].every((b) => requireBinary(b));

/** A credential as a source stores it: Basic, or an identity token (with the user it came with). */
export interface Entry {
  username: string;
  password?: string;
  identityToken?: string;
}

export interface SourceFiles {
  env: Record<string, string>;
  /** Absolute path → content, written before ferry runs. */
  files: Record<string, string>;
  /** Global flags every ferry run of the cell gets (`--keychain`). */
  args?: string[];
  /** Run before the cell's commands (e.g. `ferry login --keychain`). */
  prepare?: (s: MatrixState, env: Record<string, string>) => Promise<void>;
  /** Asserted after the cell's commands (e.g. how often a cloud CLI ran). */
  check?: () => void;
}

export interface CredentialSource {
  name: string;
  /** No credentials: only for registries with public pulls (EmulatedRegistry.publicRepo). */
  anonymous?: boolean;
  /** Only for these registries (the cloud sources). */
  only?: readonly EmulatedProfile[];
  setup(em: EmulatedRegistry, dir: string): SourceFiles;
}

/** Cells per source: a push, inspect, tags, pull and copy — five ferry processes. */
const FERRY_RUNS_PER_CELL = 5;

const CLOUD_CLI: Partial<Record<EmulatedProfile, FakeCloudCli>> = { ecr: 'aws', acr: 'az', gcr: 'gcloud', 'artifact-registry': 'gcloud' };
const CLOUD_HELPER: Partial<Record<EmulatedProfile, FakeCloudCli>> = { ecr: 'docker-credential-ecr-login', acr: 'docker-credential-acr-env', gcr: 'docker-credential-gcloud', 'artifact-registry': 'docker-credential-gcloud' };
const CLOUD_TOKENS = { aws: ECR_PASSWORD, az: ACR_REFRESH_TOKEN, gcloud: GCP_ACCESS_TOKEN, 'docker-credential-ecr-login': ECR_PASSWORD, 'docker-credential-acr-env': ACR_REFRESH_TOKEN, 'docker-credential-gcloud': GCP_ACCESS_TOKEN };

/**
 * Only the cloud's CLI (or helper) on PATH, no config at all: ferry's cloud step must find the
 * credentials, and run the program exactly once per ferry process (a copy within one registry
 * included).
 */
function cloudSource(table: Partial<Record<EmulatedProfile, FakeCloudCli>>) {
  return (em: EmulatedRegistry, dir: string): SourceFiles => {
    const cli = table[em.profile]!;
    const fake = writeFakeCloudClis(join(dir, 'bin'), { clis: [cli], tokens: CLOUD_TOKENS });
    return {
      env: { PATH: fake.path() }, files: {},
      check: () => expect(fake.count(cli), `${cli} runs`).toBe(FERRY_RUNS_PER_CELL),
    };
  };
}

let secretService: Promise<SecretService> | undefined;
/** One real Secret Service (gnome-keyring on its own D-Bus session) per test file, on demand. */
function keychainService(): Promise<SecretService> {
  secretService ??= startSecretService();
  return secretService;
}
afterAll(async () => {
  if (secretService) await (await secretService).stop();
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** docker's config key for a registry (Hub: https://index.docker.io/v1/). */
export const dockerKey = (em: EmulatedRegistry): string => (em.registry === 'docker.io' ? 'https://index.docker.io/v1/' : em.registry);

/** Which credential each source holds, per registry. */
export function entryFor(em: EmulatedRegistry, source: string): Entry {
  if (em.profile === 'acr') {
    // Each ACR way in: docker's identitytoken (OAuth2 refresh POST), a helper's `<token>` user
    // (the same), the admin user (Basic at GET /oauth2/token), the null GUID + refresh token.
    if (source === 'auths') return { username: ACR_NULL_GUID, identityToken: ACR_REFRESH_TOKEN };
    if (source === 'credHelpers') return { username: '<token>', identityToken: ACR_REFRESH_TOKEN };
    if (source === 'credsStore') return em.logins['admin']!;
    return em.logins['nullGuid']!;
  }
  if (em.profile === 'gcr' || em.profile === 'artifact-registry') {
    if (source === 'credHelpers') return em.logins['dcgcloud']!; // what docker-credential-gcloud returns
    if (source === 'credsStore') return em.logins['jsonKey']!;
    return em.logins['oauth2accesstoken']!;
  }
  return em.login;
}

function dockerEntry(e: Entry): Record<string, string> {
  if (e.identityToken !== undefined) return { auth: b64(`${e.username}:`), identitytoken: e.identityToken };
  return { auth: b64(`${e.username}:${e.password ?? ''}`) };
}

function helperSource(em: EmulatedRegistry, dir: string, source: string, config: (name: string) => unknown): SourceFiles {
  const helper = installFakeHelper(dir, 'emu');
  const e = entryFor(em, source);
  const secret = e.identityToken ?? e.password ?? '';
  return {
    env: { ...helper.env, DOCKER_CONFIG: join(dir, 'docker') },
    files: {
      [helper.db]: JSON.stringify({ [dockerKey(em)]: { Username: e.identityToken !== undefined ? '<token>' : e.username, Secret: secret } }),
      [join(dir, 'docker', 'config.json')]: JSON.stringify(config('emu')),
    },
  };
}

export const CREDENTIAL_SOURCES: CredentialSource[] = [
  {
    name: 'auths',
    setup: (em, dir) => ({
      env: { DOCKER_CONFIG: join(dir, 'docker') },
      files: { [join(dir, 'docker', 'config.json')]: JSON.stringify({ auths: { [dockerKey(em)]: dockerEntry(entryFor(em, 'auths')) } }) },
    }),
  },
  { name: 'credHelpers', setup: (em, dir) => helperSource(em, dir, 'credHelpers', (name) => ({ credHelpers: { [dockerKey(em)]: name } })) },
  { name: 'credsStore', setup: (em, dir) => helperSource(em, dir, 'credsStore', (name) => ({ credsStore: name })) },
  {
    name: 'podman',
    setup: (em, dir): SourceFiles => {
      const e = entryFor(em, 'podman');
      const doc = JSON.stringify({ auths: { [em.registry]: { auth: b64(`${e.username}:${e.password ?? ''}`) } } });
      // Half the registries by $REGISTRY_AUTH_FILE, half by $XDG_RUNTIME_DIR/containers/auth.json.
      if (EMULATED_PROFILES.indexOf(em.profile) % 2 === 0) return { env: { REGISTRY_AUTH_FILE: join(dir, 'auth.json') }, files: { [join(dir, 'auth.json')]: doc } };
      return { env: { XDG_RUNTIME_DIR: join(dir, 'xdg') }, files: { [join(dir, 'xdg', 'containers', 'auth.json')]: doc } };
    },
  },
  { name: 'cloud-cli', only: ['ecr', 'acr', 'gcr', 'artifact-registry'], setup: cloudSource(CLOUD_CLI) },
  { name: 'cloud-helper', only: ['ecr', 'acr', 'gcr', 'artifact-registry'], setup: cloudSource(CLOUD_HELPER) },
  {
    name: 'keychain',
    setup: (em, dir) => ({
      env: { DOCKER_CONFIG: join(dir, 'docker') }, files: {}, args: ['--keychain'],
      prepare: async (s, env) => {
        const ss = await keychainService();
        Object.assign(env, ss.env, { DOCKER_CONFIG: join(dir, 'docker') });
        const e = entryFor(em, 'keychain');
        const r = await s.ferry(em, ['login', '--keychain', '-u', e.username, '--password-stdin', em.registry], env, e.password ?? '');
        expect(r.code, `ferry login --keychain ${em.registry}: ${r.stderr}`).toBe(0);
        expect(r.stderr).toContain('stored in OS keychain (@napi-rs/keyring)');
      },
    }),
  },
  { name: 'anonymous', anonymous: true, setup: () => ({ env: {}, files: {} }) },
];

/** Per file: the emulations, the image and a scratch dir. */
export interface MatrixState {
  ems: Map<EmulatedProfile, EmulatedRegistry>;
  image: OciLayoutResult;
  imageDir: string;
  work: TempDir;
  /** Runs ferry against `em` with `--resolve` and the CA (plus `extra` env, and `stdin`). */
  ferry(em: EmulatedRegistry, args: string[], extra?: Record<string, string>, stdin?: string): Promise<CliResult>;
  /** env for `em` from a source, its files written under a fresh dir. */
  sourceEnv(em: EmulatedRegistry, source: CredentialSource): Record<string, string>;
  /** The same, with the source's extra flags, preparation and final check. */
  source(em: EmulatedRegistry, source: CredentialSource): { env: Record<string, string>; args: string[]; prepare: () => Promise<void>; check: () => void };
  /** A fresh dir under the work dir. */
  dir(name: string): string;
}

/**
 * Starts `profiles` (all at once) before the file's tests and stops them after; returns the state
 * the tests read once beforeAll has run.
 */
export function useEmulations(profiles: readonly EmulatedProfile[]): MatrixState {
  let n = 0;
  const state = {
    ems: new Map(),
    dir(name: string) {
      const d = join(state.work.path, `${name}-${++n}`);
      mkdirSync(d, { recursive: true });
      return d;
    },
    ferry(em: EmulatedRegistry, args: string[], extra: Record<string, string> = {}, stdin?: string) {
      return runCli([...em.resolveArgs, ...args], { env: { ...em.env, ...extra }, ...(stdin !== undefined ? { stdin } : {}) });
    },
    sourceEnv(em: EmulatedRegistry, source: CredentialSource) {
      return state.source(em, source).env;
    },
    source(em: EmulatedRegistry, source: CredentialSource) {
      const f = source.setup(em, state.dir(`${em.profile}-${source.name}`));
      for (const [path, content] of Object.entries(f.files)) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, content, { mode: 0o600 });
      }
      const env = f.env;
      return { env, args: f.args ?? [], prepare: async () => f.prepare?.(state, env), check: () => f.check?.() };
    },
  } as MatrixState;
  beforeAll(async () => {
    state.work = makeTempDir('registries');
    state.imageDir = join(state.work.path, 'image');
    const [image, ...ems] = await Promise.all([
      makeOciLayout(state.imageDir, { tag: 'v1', layers: 2, layerSize: 8 * 1024, seed: 'registries' }),
      ...profiles.map((p) => startEmulatedRegistry(p)),
    ]);
    state.image = image as OciLayoutResult;
    for (const em of ems as EmulatedRegistry[]) state.ems.set(em.profile, em);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...state.ems.values()].map((em) => em.stop()));
    state.work?.remove();
  });
  return state;
}

interface TagsDoc { tags: string[] }
interface DigestDoc { digest: string }

/** Pushes the test image to `ref` with `env`; asserts the digest. */
export async function pushImage(s: MatrixState, em: EmulatedRegistry, ref: string, env: Record<string, string>, args: string[] = []): Promise<void> {
  const doc = await ferryImage([...em.resolveArgs, ...args, 'push', '-q', `oci:${s.imageDir}:v1`, ref], { env: { ...em.env, ...env } });
  expect(doc.digest).toBe(s.image.digest);
}

/** inspect, tags, pull (manifest digest and a layer's bytes) of `repo:v1`, as `env` allows. */
export async function readBack(s: MatrixState, em: EmulatedRegistry, repo: string, env: Record<string, string>, args: string[] = []): Promise<void> {
  const e = { env: { ...em.env, ...env } };
  const out = s.dir('pull');
  const [insp, tags, pull] = await Promise.all([
    ferryJson<DigestDoc>([...em.resolveArgs, ...args, 'inspect', `${repo}:v1`], e),
    ferryJson<TagsDoc>([...em.resolveArgs, ...args, 'tags', repo], e),
    ferryImage([...em.resolveArgs, ...args, 'pull', '-q', `${repo}:v1`, `oci:${out}:v1`], e),
  ]);
  expect(insp.digest).toBe(s.image.digest);
  expect(tags.tags).toContain('v1');
  expect(pull.digest).toBe(s.image.digest);
  expect(layoutEntry(out, 'v1').digest).toBe(s.image.digest);
  const layer = s.image.manifests[0]!.layerDigests[1]!;
  const bytes = readBlob(out, layer);
  expect(sha256Of(bytes)).toBe(layer);
  expect(bytes.equals(readBlob(s.imageDir, layer))).toBe(true);
}

/** The cells of `profile`: one `it` per credential source it supports. */
export function matrixCells(s: MatrixState, profile: EmulatedProfile, sources: readonly CredentialSource[] = CREDENTIAL_SOURCES): void {
  // Cells of one registry run concurrently (distinct repositories): most of a cell is waiting.
  describe.concurrent(`${profile}: every credential source`, () => {
    beforeAll(async () => seedPublic(s, s.ems.get(profile)!));
    for (const source of sources) {
      if (source.anonymous && !hasPublicPulls(profile)) continue; // no public pulls there
      if (source.only && !source.only.includes(profile)) continue;
      it(`${source.name}: ${source.anonymous ? 'inspect, tags, pull; push refused' : 'push, inspect, tags, pull, copy'}`, async () => {
        const em = s.ems.get(profile)!;
        const { env, args, prepare, check } = s.source(em, source);
        await prepare();
        if (source.anonymous) {
          const repo = `${em.registry}/${em.publicRepo!}`;
          await readBack(s, em, repo, env);
          const push = await s.ferry(em, ['push', '-q', `oci:${s.imageDir}:v1`, `${em.registry}/${em.namespace}/anon:v1`], env);
          expectFailure(push, 3);
          return;
        }
        const repo = `${em.registry}/${em.namespace}/${source.name.toLowerCase()}`;
        await pushImage(s, em, `${repo}:v1`, env, args);
        const [, copy] = await Promise.all([
          readBack(s, em, repo, env, args),
          ferryImage([...em.resolveArgs, ...args, 'copy', '-q', `${repo}:v1`, `${repo}-copy:v1`], { env: { ...em.env, ...env } }),
        ]);
        expect(copy.digest).toBe(s.image.digest);
        expect(copy.destination).toBe(`${repo}-copy:v1`);
        check();
      });
    }
  });
}

/** Seeds `em.publicRepo:v1` with the registry's own credentials (auths), for the anonymous cells. */
export async function seedPublic(s: MatrixState, em: EmulatedRegistry): Promise<void> {
  if (!em.publicRepo) return;
  await pushImage(s, em, `${em.registry}/${em.publicRepo}:v1`, s.sourceEnv(em, CREDENTIAL_SOURCES[0]!));
}

/** One request straight to an emulation's front (as --resolve would route it), for checking
 * what the emulated registry itself sends. */
export function frontGet(em: EmulatedRegistry, host: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: em.port, servername: host, path, method, headers: { host, ...headers }, ca: readFileSync(em.caFile) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
