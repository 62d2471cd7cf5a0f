/**
 * Helpers for the push / copy / tag suites (not a test file itself): reading the real registry's
 * access log from a mark on, fetching manifests and blobs straight from an open registry, and
 * writing a classic `docker save` archive (uncompressed layers, legacy `<id>/layer.tar` symlinks).
 */
import { execFile } from 'node:child_process';
import { createWriteStream, readFileSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { expect } from 'vitest';
import { seededBytes, sha256, ustarSingleFile } from '../helpers/images.js';
import type { RealRegistry } from '../helpers/real-registry.js';

// ---------------------------------------------------------------------------
// Registry access log
// ---------------------------------------------------------------------------

/** Current length (bytes) of the registry log: pass it to logSince to see only what follows. */
export function logMark(reg: RealRegistry): number {
  return statSync(reg.logFile).size;
}

/**
 * The log text written after `mark`, once the log has stopped growing (the registry writes an
 * access-log line after the response has gone out, so the client can be a moment ahead of it).
 */
export async function logSince(reg: RealRegistry, mark: number): Promise<string> {
  let size = statSync(reg.logFile).size;
  for (let i = 0; i < 20; i++) {
    await sleep(50);
    const now = statSync(reg.logFile).size;
    if (now === size) break;
    size = now;
  }
  return readFileSync(reg.logFile).subarray(mark).toString('utf8');
}

export interface AccessLine {
  method: string;
  /** Request target: path and query. */
  target: string;
  status: number;
  line: string;
}

/**
 * Access-log entries (gorilla combined log format: `… "METHOD /target HTTP/1.1" status size …`).
 * The registry's logrus "response completed" lines are not counted, so each request appears once.
 */
export function accessLines(text: string): AccessLine[] {
  const out: AccessLine[] = [];
  for (const line of text.split('\n')) {
    const m = /"([A-Z]+) (\/\S*) HTTP\/[\d.]+" (\d{3}) /.exec(line);
    if (m) out.push({ method: m[1]!, target: m[2]!, status: Number(m[3]), line });
  }
  return out;
}

/** PUT / PATCH requests that write blob bytes into `repo` (upload sessions). */
export function blobWrites(lines: AccessLine[], repo: string): AccessLine[] {
  const prefix = `/v2/${repo}/blobs/uploads`;
  return lines.filter((l) => (l.method === 'PUT' || l.method === 'PATCH') && l.target.startsWith(prefix));
}

/** Every request naming `repo`'s upload endpoint (POST, PATCH, PUT, DELETE…). */
export function uploadRequests(lines: AccessLine[], repo: string): AccessLine[] {
  return lines.filter((l) => l.target.startsWith(`/v2/${repo}/blobs/uploads`));
}

// ---------------------------------------------------------------------------
// Direct registry reads (open registries)
// ---------------------------------------------------------------------------

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

export interface RawManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  doc: {
    schemaVersion: number;
    mediaType?: string;
    config?: { mediaType: string; digest: string; size: number };
    layers?: Array<{ mediaType: string; digest: string; size: number }>;
    manifests?: Array<{ mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }>;
  };
}

/** GET a manifest from an open registry; its bytes must hash to Docker-Content-Digest. */
export async function getManifest(reg: RealRegistry, repo: string, ref: string): Promise<RawManifest> {
  const sep = ref.startsWith('sha256:') ? '@' : ':';
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT } });
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(res.status, `GET ${repo}${sep}${ref}: ${bytes.toString('utf8')}`).toBe(200);
  const digest = sha256(bytes);
  expect(res.headers.get('docker-content-digest')).toBe(digest);
  return { bytes, digest, mediaType: res.headers.get('content-type') ?? '', doc: JSON.parse(bytes.toString('utf8')) as RawManifest['doc'] };
}

/** GET a blob from an open registry (whole body). */
export async function getBlob(reg: RealRegistry, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(res.status, `GET blob ${repo}@${digest}`).toBe(200);
  return bytes;
}

// ---------------------------------------------------------------------------
// Classic `docker save` archives
// ---------------------------------------------------------------------------

export interface DockerSaveImageSpec {
  repoTags: string[];
  layers: number;
  layerSize: number;
  seed: string;
}

export interface DockerSaveImage {
  spec: DockerSaveImageSpec;
  configDigest: string;
  configBytes: Buffer;
  /** sha256 of each uncompressed layer tar (= the config's rootfs.diff_ids). */
  diffIds: string[];
  /** The file each layer holds (name in the rootfs) and its bytes. */
  files: Array<{ name: string; data: Buffer }>;
}

const hex = (d: string): string => d.replace(/^sha256:/, '');

/** Builds one image's blobs (deterministic from the spec). */
export function dockerSaveImage(spec: DockerSaveImageSpec): DockerSaveImage & { layerTars: Buffer[] } {
  const files: Array<{ name: string; data: Buffer }> = [];
  const layerTars: Buffer[] = [];
  for (let i = 0; i < spec.layers; i++) {
    const name = `${spec.seed}-layer-${i}.bin`;
    const data = seededBytes(`${spec.seed}/docker-save/${i}`, spec.layerSize);
    files.push({ name, data });
    layerTars.push(ustarSingleFile(name, data));
  }
  const diffIds = layerTars.map((t) => sha256(t));
  const created = '2024-02-02T00:00:00Z';
  const config = {
    architecture: 'amd64',
    os: 'linux',
    created,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `FERRY_TEST_SEED=${spec.seed}`],
      Cmd: ['/bin/sh'],
      Labels: { 'ferry.test.seed': spec.seed },
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created, created_by: `docker save test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  return { spec, configDigest: sha256(configBytes), configBytes, diffIds, files, layerTars };
}

/**
 * Writes what `docker save` (before Docker 25) produced: `<config hex>.json`, per layer a
 * directory `<id>/` with `VERSION`, `json` and `layer.tar` — here a SYMLINK to `../<diffid hex>.tar`
 * at the archive root, which holds the UNCOMPRESSED layer tar — then `manifest.json` and
 * `repositories`. gzip: compress the whole archive (`docker save | gzip`).
 */
export async function writeDockerSave(file: string, specs: DockerSaveImageSpec[], opts: { gzip?: boolean } = {}): Promise<DockerSaveImage[]> {
  const images = specs.map(dockerSaveImage);
  const p = tarPack();
  const mtime = new Date('2024-02-02T00:00:00Z');
  const add = (name: string, data: Buffer | string): void => {
    p.entry({ name, mtime, mode: 0o644, uid: 0, gid: 0 }, typeof data === 'string' ? Buffer.from(data) : data);
  };
  const written = new Set<string>();
  const manifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
  const repositories: Record<string, Record<string, string>> = {};
  const done = opts.gzip ? pipeline(p, createGzip(), createWriteStream(file)) : pipeline(p, createWriteStream(file));
  for (const img of images) {
    const layerPaths: string[] = [];
    let parent: string | undefined;
    img.layerTars.forEach((tar, i) => {
      const diff = hex(img.diffIds[i]!);
      const id = hex(sha256(`${parent ?? ''}/${img.diffIds[i]}`));
      if (!written.has(diff)) {
        add(`${diff}.tar`, tar);
        written.add(diff);
      }
      p.entry({ name: `${id}/`, type: 'directory', mtime, mode: 0o755, uid: 0, gid: 0 });
      add(`${id}/VERSION`, '1.0');
      add(`${id}/json`, JSON.stringify({ id, ...(parent ? { parent } : {}), created: '2024-02-02T00:00:00Z', container_config: { Cmd: null } }));
      p.entry({ name: `${id}/layer.tar`, type: 'symlink', linkname: `../${diff}.tar`, mtime, mode: 0o777, uid: 0, gid: 0 });
      layerPaths.push(`${id}/layer.tar`);
      parent = id;
    });
    add(`${hex(img.configDigest)}.json`, img.configBytes);
    manifest.push({ Config: `${hex(img.configDigest)}.json`, RepoTags: img.spec.repoTags, Layers: layerPaths });
    for (const t of img.spec.repoTags) {
      const colon = t.lastIndexOf(':');
      (repositories[t.slice(0, colon)] ??= {})[t.slice(colon + 1)] = parent!;
    }
  }
  add('manifest.json', JSON.stringify(manifest));
  add('repositories', JSON.stringify(repositories));
  p.finalize();
  await done;
  return images;
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: err && code === -1 ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

/** Runs a command that must succeed; resolves its stdout. */
export async function runOk(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  expect(r.code, `${cmd} ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** `ferry copy/push --json` of one image, as oneImage() (support.ts) shows it. */
export type { PullDoc as CopyDoc } from './support.js';
