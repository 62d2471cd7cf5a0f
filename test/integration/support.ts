/**
 * Small helpers shared by the integration and interop suites (not a test file itself):
 * running ferry and parsing its JSON, reading OCI layouts it wrote, and asserting the
 * properties every failing command must have (exit status, `ferry:` message, no stack trace).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REF_NAME } from '../helpers/images.js';
import { runCli, type CliResult, type RunCliOptions } from '../helpers/run-cli.js';

export const sha256Of = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Runs ferry; on an unexpected exit status the failure shows stderr. */
export async function ferryOk(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  const r = await runCli(args, opts);
  expect(r.code, `ferry ${args.join(' ')} failed:\n${r.stderr}`).toBe(0);
  return r;
}

/** Runs ferry with --json and parses stdout, which must hold exactly one JSON document. */
export async function ferryJson<T = Record<string, unknown>>(args: string[], opts: RunCliOptions = {}): Promise<T> {
  const r = await ferryOk([...args, '--json'], opts);
  return JSON.parse(r.stdout) as T;
}

/**
 * Asserts a failed run: exit status, `ferry: ` first line, message substrings and no
 * stack-trace lines (ferry only prints those with --debug).
 */
export function expectFailure(r: CliResult, code: number, ...patterns: Array<string | RegExp>): void {
  const show = `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(r.code, show).toBe(code);
  expect(r.stderr, show).toMatch(/^ferry: /m);
  for (const p of patterns) {
    if (typeof p === 'string') expect(r.stderr.toLowerCase(), show).toContain(p.toLowerCase());
    else expect(r.stderr, show).toMatch(p);
  }
  expect(r.stderr, show).not.toMatch(/^\s+at /m);
  expect(r.stderr, show).not.toContain('this is a bug in ferry');
}

export interface LayoutEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export function readLayoutIndex(dir: string): { schemaVersion: number; manifests: LayoutEntry[] } {
  return JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: LayoutEntry[] };
}

/** The index.json entry carrying `org.opencontainers.image.ref.name` = tag. */
export function layoutEntry(dir: string, tag: string): LayoutEntry {
  const e = readLayoutIndex(dir).manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  expect(e, `no entry for tag ${tag} in ${dir}/index.json`).toBeDefined();
  return e!;
}

export function blobFile(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

export function readBlob(dir: string, digest: string): Buffer {
  return readFileSync(blobFile(dir, digest));
}

/** Asserts every digest is a blob in `dir` whose bytes hash to it. */
export function expectBlobs(dir: string, digests: string[]): void {
  for (const d of digests) {
    expect(existsSync(blobFile(dir, d)), `blob ${d} missing in ${dir}`).toBe(true);
    expect(sha256Of(readBlob(dir, d))).toBe(d);
  }
}

/** Layer sizes as makeOciLayout wrote them (the gzip blob lengths). */
export function blobSizes(dir: string, digests: string[]): number[] {
  return digests.map((d) => readBlob(dir, d).length);
}

/** What every `--json` document starts with (docs/json.md). */
export interface DocBase {
  schemaVersion: 1;
  command: 'inspect' | 'tags' | 'pull' | 'push' | 'copy' | 'tag' | 'delete' | 'ratelimit' | null;
}

/** `ferry inspect --json` document (mirrors src/cli/commands/inspect.ts inspectJson). */
export interface InspectDoc extends DocBase {
  source: string;
  digest: string;
  mediaType: string;
  size: number;
  /** A count: 1 for an image, 1 + entries for an index. */
  manifests: number;
  index?: { digest: string; mediaType: string; size: number };
  children?: Array<{ digest: string; mediaType: string; size: number; platform: string }>;
  platform?: string;
  created?: string;
  config?: { digest: string; mediaType: string; size: number };
  layers?: Array<{ digest: string; mediaType: string; size: number }>;
  totalSize?: number;
  entrypoint?: string[] | null;
  cmd?: string[] | null;
  env?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  user?: string;
  rateLimit?: { limit: number; remaining: number; windowSeconds?: number; source?: string };
}

export interface BlobsDoc { total: number; skipped: number; mounted: number; transferred: number; bytes: number; transferredBytes: number }

/** One entry of a pull/push/copy document's `images`. */
export interface ImageDoc {
  source: string;
  digest: string;
  mediaType: string;
  sourceDigest: string;
  platform?: string;
  refName?: string;
  repoTag?: string;
  tags?: string[];
  manifests: number;
  blobs: BlobsDoc;
  changes: Array<{ reason: string; from: string; to: string }>;
}

/** `ferry pull|push|copy --json` document. */
export interface TransferDoc extends DocBase {
  destination: string;
  replaced?: boolean;
  images: ImageDoc[];
  blobs: BlobsDoc;
  seconds: number;
  bytesPerSecond: number;
}

/** A one-image transfer document with its image's fields beside the run's (a test view; ferry
 * itself never repeats them at the top level). */
export type PullDoc = TransferDoc & ImageDoc;

export function oneImage(doc: TransferDoc): PullDoc {
  expect(doc.images, JSON.stringify(doc)).toHaveLength(1);
  return { ...doc, ...doc.images[0]! };
}

/** `ferry pull|push|copy … --json` of one image, as oneImage() shows it. */
export async function ferryImage(args: string[], opts: RunCliOptions = {}): Promise<PullDoc> {
  return oneImage(await ferryJson<TransferDoc>(args, opts));
}
