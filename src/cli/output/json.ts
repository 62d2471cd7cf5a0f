import type { CopyResult } from '../../copy/engine.js';
import type { CopyEvent } from '../../copy/events.js';
import type { FerryError } from '../../errors.js';
import { formatPlatform } from '../../oci/platform.js';
import { parseReference } from '../../ref/index.js';
import type { RateLimit } from '../../registry/rate-limit.js';
import { redactText } from '../../util/redact.js';

/**
 * The one JSON contract of `--json` (docs/json.md). Every document is an object with
 * `schemaVersion` and `command`; the same thing has the same name in every command: `source`
 * (the location read), `destination` (the location written), `digest`, `mediaType`,
 * `sourceDigest`, `platform`, `manifests` (always a count), `blobs`, `seconds`, `bytesPerSecond`.
 * Adding a field is compatible; renaming or removing one bumps `schemaVersion`.
 */
export const SCHEMA_VERSION = 1;

/** Canonical command names (aliases report their command: `cp` → `copy`). */
export type CommandName = 'inspect' | 'tags' | 'pull' | 'push' | 'copy' | 'tag' | 'delete' | 'login' | 'logout' | 'auth explain' | 'config explain' | 'ratelimit' | 'cache ls' | 'cache du' | 'cache prune' | 'cache verify' | 'export';

export function document<T extends object>(command: CommandName | null, body: T): { schemaVersion: number; command: CommandName | null } & T {
  return { schemaVersion: SCHEMA_VERSION, command, ...body };
}

export interface BlobCounts {
  total: number;
  skipped: number;
  mounted: number;
  transferred: number;
  bytes: number;
  transferredBytes: number;
}

/** One image a pull, push or copy moved (an entry of `images`). */
export function imageJson(r: CopyResult & { source: string; servedBy?: Record<string, string> }, changes: Array<{ reason: string; from: { digest: string }; to: { digest: string } }> = []) {
  return {
    source: r.source,
    digest: r.root.digest,
    mediaType: r.root.mediaType,
    sourceDigest: r.sourceRoot.digest,
    ...(r.platform ? { platform: formatPlatform(r.platform) } : {}),
    ...(r.names.refName ? { refName: r.names.refName } : {}),
    // As docker load will name it (RepoTags hold the familiar form).
    ...(r.names.repoTag ? { repoTag: parseReference(r.names.repoTag).familiar() } : {}),
    ...(r.names.tags?.length ? { tags: r.names.tags } : {}),
    manifests: r.manifests,
    blobs: r.blobs,
    changes: changes.map((c) => ({ reason: c.reason, from: c.from.digest, to: c.to.digest })),
    ...(r.servedBy ? { servedBy: r.servedBy } : {}),
  };
}

/** The document of pull, push and copy: always an `images` array, run totals at the top level. */
export function transferJson(command: 'pull' | 'push' | 'copy', t: { destination: string; images: ReturnType<typeof imageJson>[]; blobs: BlobCounts; ms: number; replaced?: boolean }) {
  const seconds = t.ms / 1000;
  return document(command, {
    destination: t.destination,
    ...(t.replaced !== undefined ? { replaced: t.replaced } : {}),
    images: t.images,
    blobs: t.blobs,
    seconds: Number(seconds.toFixed(3)),
    bytesPerSecond: Math.round(t.blobs.transferredBytes / Math.max(seconds, 0.001)),
  });
}

/**
 * Counts blobs from the engine's events, each distinct blob once (an image's own `blobs` count a
 * layer it shares with another image of the same pull again).
 */
export class BlobTally {
  readonly counts: BlobCounts = { total: 0, skipped: 0, mounted: 0, transferred: 0, bytes: 0, transferredBytes: 0 };

  readonly onEvent = (e: CopyEvent): void => {
    const c = this.counts;
    if (e.type === 'plan') {
      c.total += e.blobs;
      c.bytes += e.bytes;
    } else if (e.type === 'blob-skip') c.skipped++;
    else if (e.type === 'blob-mounted') c.mounted++;
    else if (e.type === 'blob-done') {
      c.transferred++;
      c.transferredBytes += e.descriptor.size;
    }
  };
}

/** A registry's announced rate limit (inspect's `rateLimit`, ratelimit's `rateLimit`). */
export function rateLimitJson(rl: RateLimit) {
  return {
    limit: rl.limit,
    remaining: rl.remaining,
    ...(rl.windowSeconds !== undefined ? { windowSeconds: rl.windowSeconds } : {}),
    ...(rl.source !== undefined ? { source: rl.source } : {}),
  };
}

/** `{"error": {...}}`: what a failed command prints on stdout with --json (secrets redacted). */
export function errorJson(command: CommandName | null, err: FerryError, exitCode: number = err.exitCode) {
  return document(command, {
    error: { code: err.code, message: redactText(err.message), hint: err.hint === undefined ? null : redactText(err.hint), exitCode },
  });
}
