/**
 * Helpers for the archive suites (pull-archives, interop/archive-cli): reading the tars ferry and
 * skopeo write with tar-stream, the JSON files inside them, and the structural properties every
 * archive ferry writes must have (only directories and regular files, no `./` prefixes, explicit
 * `blobs/` directories first, blob files whose bytes hash to their names).
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';

export const CONTAINERD_NAME = 'io.containerd.image.name';

import type { TarEntry } from '../helpers/tar.js';
export { readTar, type TarEntry } from '../helpers/tar.js';

export function entry(entries: TarEntry[], name: string): TarEntry {
  const e = entries.find((x) => x.name === name);
  expect(e, `no ${name} in the archive (it holds ${entries.map((x) => x.name).join(', ')})`).toBeDefined();
  return e!;
}

export function entryJson<T>(entries: TarEntry[], name: string): T {
  return JSON.parse(entry(entries, name).data.toString('utf8')) as T;
}

export const blobName = (digest: string): string => `blobs/sha256/${digest.replace(/^sha256:/, '')}`;

export function blobData(entries: TarEntry[], digest: string): Buffer {
  return entry(entries, blobName(digest)).data;
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export const uncompressed = (b: Buffer): Buffer => (b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b);

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface OciIndexDoc {
  schemaVersion: number;
  mediaType?: string;
  manifests: Desc[];
}

export interface ImageManifestDoc {
  mediaType?: string;
  config: Desc;
  layers: Desc[];
}

export interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

export interface ConfigDoc {
  architecture: string;
  os: string;
  rootfs: { type: string; diff_ids: string[] };
}

/**
 * Structural properties of every archive ferry writes: only regular files and directories; no
 * `./` or `/` prefixes and no `..`; `blobs/` and `blobs/sha256/` are directory entries before any
 * file; each name once; `oci-layout` and `index.json` present; every blob file hashes to its name.
 */
export function expectArchiveStructure(entries: TarEntry[], format: 'docker-archive' | 'oci-archive'): void {
  const names = entries.map((e) => e.name);
  const show = names.join('\n');
  expect(new Set(entries.map((e) => e.type)), show).toEqual(new Set(['directory', 'file']));
  expect(names.filter((n) => n.startsWith('./') || n.startsWith('/') || n.split('/').includes('..')), show).toEqual([]);
  expect(new Set(names).size, `duplicate entries:\n${show}`).toBe(names.length);
  const dirs = entries.filter((e) => e.type === 'directory').map((e) => e.name.replace(/\/$/, ''));
  expect(dirs.sort()).toEqual(['blobs', 'blobs/sha256']);
  const firstFile = entries.findIndex((e) => e.type === 'file');
  const dirIdx = (n: string): number => entries.findIndex((e) => e.type === 'directory' && e.name.replace(/\/$/, '') === n);
  expect(dirIdx('blobs'), show).toBeGreaterThanOrEqual(0);
  expect(dirIdx('blobs'), show).toBeLessThan(dirIdx('blobs/sha256'));
  expect(dirIdx('blobs/sha256'), show).toBeLessThan(firstFile);
  const top = ['oci-layout', 'index.json', ...(format === 'docker-archive' ? ['manifest.json'] : [])];
  expect(names).toEqual(expect.arrayContaining(top));
  if (format === 'oci-archive') expect(names.filter((n) => !n.startsWith('blobs/') && !top.includes(n)), show).toEqual([]);
  expect(JSON.parse(entry(entries, 'oci-layout').data.toString('utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
  for (const e of entries.filter((x) => x.type === 'file' && x.name.startsWith('blobs/'))) {
    expect(e.name).toMatch(/^blobs\/sha256\/[0-9a-f]{64}$/);
    expect(sha256(e.data), e.name).toBe(`sha256:${e.name.slice('blobs/sha256/'.length)}`);
  }
}

/** Names of blob files in the archive (`blobs/sha256/<hex>` → `sha256:<hex>`). */
export function blobDigests(entries: TarEntry[]): string[] {
  return entries.filter((e) => e.type === 'file' && e.name.startsWith('blobs/sha256/')).map((e) => `sha256:${e.name.slice('blobs/sha256/'.length)}`);
}

/** Leftover temp files (`.NAME.PID.RANDOM.partial`) in a directory. */
export function partials(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.endsWith('.partial'));
}

/** `docker.io/library/x:t` for `x:t`: how docker and containerd normalise a name:tag. */
export function normalizeName(s: string): string {
  const slash = s.indexOf('/');
  const first = slash < 0 ? '' : s.slice(0, slash);
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) return s;
  return slash < 0 ? `docker.io/library/${s}` : `docker.io/${s}`;
}
