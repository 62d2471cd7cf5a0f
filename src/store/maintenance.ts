/**
 * Looking after the blob cache (`ferry cache ls|du|prune|verify`): the layout is blob-store.ts's,
 * the lock protocol lock.ts's; this file only reads the directories and removes what is safe.
 *
 * Contracts:
 * - A missing cache directory (or a missing `blobs/`, `partial/`, `locks/`) is an empty cache,
 *   never an error. Directories are never removed, only files.
 * - Safe while pulls use the cache:
 *   - A partial download is removed only while prune holds its lock itself (`tryLock`, which
 *     takes over a lock whose owner is dead or silent): a partial whose lock is live is never
 *     touched, and a pull that starts on it meanwhile waits for prune's lock like for any other.
 *   - A blob is unlinked, never rewritten. A pull that has the file open or has already linked it
 *     into a layout keeps its bytes (POSIX: an unlinked file lives while it is open or linked).
 *     The window left is a pull that found the blob in the cache and has not yet opened or linked
 *     it: prune therefore never removes a blob used (mtime: every use touches it) within the last
 *     `graceMs` (default 30 s, the lock staleness window), and re-reads the mtime just before the
 *     unlink, keeping a blob used since the listing.
 *   - verify removes a blob only if the file it hashed is still the one at the path (same inode).
 * - prune order: with `olderThanMs`, every blob unused for longer than that; then, with
 *   `keepBytes`, least recently used first until blobs plus remaining partials total at most
 *   `keepBytes`; with neither, every blob. Always: partials and locks whose owner is gone.
 * - verify re-hashes every blob with the algorithm of its directory (`blobs/sha256/…`); a file
 *   whose name is not a digest of that algorithm, or whose content does not hash to its name, is
 *   removed and reported through `onBad`. Directories of algorithms ferry does not know are left
 *   alone (counted as `skipped`): a newer ferry sharing the cache may have written them.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, isDigest } from '../oci/digest.js';
import { ioError } from '../util/fs-errors.js';
import { isStale, lockOwner, STALE_MS, tryLock, type LockOwner } from './lock.js';

/** Blobs used this recently are never pruned (a pull may be about to link them). */
export const PRUNE_GRACE_MS = STALE_MS;

const KNOWN_ALGORITHMS = new Set(['sha256', 'sha512']);

export interface CachedBlob {
  /** `<alg>:<hex>` from the path (may be invalid: see `validName`). */
  digest: string;
  path: string;
  size: number;
  /** The file's mtime: every use touches it. */
  lastUsed: Date;
  /** The name is a well-formed digest of its directory's algorithm. */
  validName: boolean;
}

export type PartialStatus = 'downloading' | 'stale' | 'abandoned';

export interface PartialDownload {
  digest: string;
  /** Every file of the download under partial/ (the data, its .state, temporary files). */
  files: string[];
  /** Bytes on disk (all its files). */
  size: number;
  modified: Date;
  /** downloading: its lock is live; stale: its lock's owner is dead or silent; abandoned: no lock. */
  status: PartialStatus;
  owner?: LockOwner & { heartbeat: Date };
}

export interface CacheListing {
  root: string;
  /** Least recently used first. */
  blobs: CachedBlob[];
  partials: PartialDownload[];
  /** Lock files with no partial download (a download starting, or left by a dead process). */
  locks: Array<{ digest: string; path: string; stale: boolean }>;
}

export interface CacheUsage {
  blobs: { count: number; bytes: number };
  partials: { count: number; bytes: number };
  total: { bytes: number };
}

interface Entry {
  name: string;
  path: string;
  st: Stats;
}

async function entries(dir: string): Promise<Entry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw ioError(e, dir);
  }
  const out: Entry[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      out.push({ name, path, st: await stat(path) });
    } catch {
      /* removed meanwhile (a publish, another prune) */
    }
  }
  return out;
}

/** Subdirectories of `dir` (the digest algorithms). */
async function algorithms(dir: string): Promise<string[]> {
  return (await entries(dir)).filter((e) => e.st.isDirectory()).map((e) => e.name).sort();
}

async function listBlobs(root: string): Promise<CachedBlob[]> {
  const out: CachedBlob[] = [];
  const base = join(root, 'blobs');
  for (const alg of await algorithms(base)) {
    for (const e of await entries(join(base, alg))) {
      if (!e.st.isFile()) continue;
      const digest = `${alg}:${e.name}`;
      out.push({ digest, path: e.path, size: e.st.size, lastUsed: e.st.mtime, validName: KNOWN_ALGORITHMS.has(alg) && isDigest(digest) });
    }
  }
  return out.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || a.digest.localeCompare(b.digest));
}

const lockPathOf = (root: string, alg: string, hex: string): string => join(root, 'locks', alg, `${hex}.lock`);

export async function listCache(root: string): Promise<CacheListing> {
  const blobs = await listBlobs(root);
  const partials: PartialDownload[] = [];
  const withPartial = new Set<string>();
  const pbase = join(root, 'partial');
  for (const alg of await algorithms(pbase)) {
    const groups = new Map<string, Entry[]>();
    for (const e of await entries(join(pbase, alg))) {
      if (!e.st.isFile()) continue;
      const hex = e.name.split('.')[0]!;
      groups.set(hex, [...(groups.get(hex) ?? []), e]);
    }
    for (const [hex, files] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
      const lock = lockPathOf(root, alg, hex);
      withPartial.add(lock);
      const owner = await lockOwner(lock);
      const status: PartialStatus = owner ? ((await isStale(lock)) ? 'stale' : 'downloading') : 'abandoned';
      partials.push({
        digest: `${alg}:${hex}`,
        files: files.map((f) => f.path).sort(),
        size: files.reduce((n, f) => n + f.st.size, 0),
        modified: new Date(Math.max(...files.map((f) => f.st.mtimeMs))),
        status,
        ...(owner ? { owner } : {}),
      });
    }
  }
  const locks: CacheListing['locks'] = [];
  const lbase = join(root, 'locks');
  for (const alg of await algorithms(lbase)) {
    for (const e of await entries(join(lbase, alg))) {
      if (!e.st.isFile() || withPartial.has(e.path)) continue;
      const m = /^([^.]+)\.lock/.exec(e.name);
      // `<hex>.lock.stale-…`: a taken-over lock whose removal failed; always stale.
      const stale = !e.name.endsWith('.lock') || (await isStale(e.path));
      locks.push({ digest: `${alg}:${m?.[1] ?? e.name}`, path: e.path, stale });
    }
  }
  return { root, blobs, partials, locks };
}

export function usageOf(l: CacheListing): CacheUsage {
  const blobBytes = l.blobs.reduce((n, b) => n + b.size, 0);
  const partialBytes = l.partials.reduce((n, p) => n + p.size, 0);
  return {
    blobs: { count: l.blobs.length, bytes: blobBytes },
    partials: { count: l.partials.length, bytes: partialBytes },
    total: { bytes: blobBytes + partialBytes },
  };
}

export async function cacheUsage(root: string): Promise<CacheUsage> {
  return usageOf(await listCache(root));
}

export interface PruneOptions {
  /** Remove blobs unused for longer than this. */
  olderThanMs?: number;
  /** Then remove least recently used blobs until the cache holds at most this many bytes. */
  keepBytes?: number;
  now?: number;
  /** Blobs used this recently are kept whatever the options (default PRUNE_GRACE_MS). */
  graceMs?: number;
}

export interface PruneResult {
  removed: { blobs: number; bytes: number };
  kept: { blobs: number; bytes: number };
  /** Of the kept blobs, those used within the grace period (a pull may be linking them). */
  recent: number;
  partials: { removed: number; bytes: number; kept: number; keptBytes: number };
  /** Orphaned lock files removed (owner dead or silent). */
  locks: number;
}

export async function pruneCache(root: string, opts: PruneOptions = {}): Promise<PruneResult> {
  const now = opts.now ?? Date.now();
  const grace = opts.graceMs ?? PRUNE_GRACE_MS;
  const listing = await listCache(root);
  const result: PruneResult = { removed: { blobs: 0, bytes: 0 }, kept: { blobs: 0, bytes: 0 }, recent: 0, partials: { removed: 0, bytes: 0, kept: 0, keptBytes: 0 }, locks: 0 };

  // Partial downloads and locks first: what they free counts towards --keep-size.
  for (const p of listing.partials) {
    if (p.status === 'downloading' || !(await removePartial(root, p, now))) {
      result.partials.kept++;
      result.partials.keptBytes += p.size;
      continue;
    }
    result.partials.removed++;
    result.partials.bytes += p.size;
  }
  for (const l of listing.locks) {
    if (!l.stale) continue;
    if (l.path.endsWith('.lock')) {
      // Take it over (only if it is still stale when we try), then let it go: removed.
      const held = await tryLock(l.path).catch(() => undefined);
      if (!held) continue;
      await held.release();
    } else {
      await rm(l.path, { force: true });
    }
    result.locks++;
  }

  const blobs = listing.blobs; // least recently used first
  let total = blobs.reduce((n, b) => n + b.size, 0) + result.partials.keptBytes;
  const neither = opts.olderThanMs === undefined && opts.keepBytes === undefined;
  for (const b of blobs) {
    const age = now - b.lastUsed.getTime();
    const wanted = neither ||
      (opts.olderThanMs !== undefined && age > opts.olderThanMs) ||
      (opts.keepBytes !== undefined && total > opts.keepBytes);
    let removed = false;
    if (wanted && age >= grace) removed = await removeBlob(b);
    if (removed) {
      result.removed.blobs++;
      result.removed.bytes += b.size;
      total -= b.size;
    } else {
      result.kept.blobs++;
      result.kept.bytes += b.size;
      if (wanted) result.recent++;
    }
  }
  return result;
}

/** Unlinks a blob unless it was used since it was listed. */
async function removeBlob(b: CachedBlob): Promise<boolean> {
  let st: Stats;
  try {
    st = await stat(b.path);
  } catch {
    return false; // gone already (another prune, a verify)
  }
  if (st.mtime.getTime() !== b.lastUsed.getTime()) return false; // ms, as listed (mtimeMs has float noise)
  try {
    await rm(b.path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(e, b.path);
  }
}

/** Removes a partial download while holding its lock; false when a live owner has it (or all
 * that is left is a manifest being stored right now). */
async function removePartial(root: string, p: PartialDownload, now: number): Promise<boolean> {
  const [alg, hex] = p.digest.split(':') as [string, string];
  const lockPath = lockPathOf(root, alg, hex);
  await mkdir(join(root, 'locks', alg), { recursive: true }).catch((e: unknown) => {
    throw ioError(e, join(root, 'locks', alg));
  });
  const held = await tryLock(lockPath).catch((e: unknown) => {
    throw ioError(e, lockPath);
  });
  if (!held) return false;
  let removed = 0;
  try {
    for (const f of p.files) {
      // A manifest being stored (`<hex>.<pid>.<random>`, written and renamed without a lock)
      // is left alone while it is young.
      const rest = f.slice(f.lastIndexOf('/') + 1 + hex.length);
      if (rest !== '' && !rest.startsWith('.state')) {
        const st = await stat(f).catch(() => undefined);
        if (st && now - st.mtimeMs < PRUNE_GRACE_MS) continue;
      }
      await rm(f, { force: true }).catch((e: unknown) => {
        throw ioError(e, f);
      });
      removed++;
    }
  } finally {
    await held.release();
  }
  return removed > 0;
}

export interface BadBlob {
  digest: string;
  path: string;
  size: number;
  reason: string;
}

export interface VerifyResult {
  checked: number;
  bytes: number;
  removed: { blobs: number; bytes: number };
  kept: { blobs: number; bytes: number };
  /** Files under algorithms ferry does not know, left alone. */
  skipped: number;
  bad: BadBlob[];
}

export async function verifyCache(root: string, opts: { onBad?: (b: BadBlob) => void; signal?: AbortSignal } = {}): Promise<VerifyResult> {
  const r: VerifyResult = { checked: 0, bytes: 0, removed: { blobs: 0, bytes: 0 }, kept: { blobs: 0, bytes: 0 }, skipped: 0, bad: [] };
  for (const b of await listBlobs(root)) {
    opts.signal?.throwIfAborted();
    const alg = b.digest.slice(0, b.digest.indexOf(':'));
    if (!KNOWN_ALGORITHMS.has(alg)) {
      r.skipped++;
      continue;
    }
    let reason: string | undefined;
    let ino: number;
    try {
      ino = (await stat(b.path)).ino;
      if (!b.validName) reason = `the name is not a ${alg} digest`;
      else {
        const got = await hashFile(b.path, alg, opts.signal);
        if (got !== b.digest) reason = `content hashes to ${got}`;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // pruned meanwhile
      throw ioError(e, b.path);
    }
    r.checked++;
    r.bytes += b.size;
    if (!reason) {
      r.kept.blobs++;
      r.kept.bytes += b.size;
      continue;
    }
    // Remove it only if it is still the file we hashed.
    const now = await stat(b.path).catch(() => undefined);
    if (now?.ino === ino) await rm(b.path, { force: true }).catch((e: unknown) => {
      throw ioError(e, b.path);
    });
    const bad = { digest: b.digest, path: b.path, size: b.size, reason };
    r.bad.push(bad);
    r.removed.blobs++;
    r.removed.bytes += b.size;
    opts.onBad?.(bad);
  }
  return r;
}

async function hashFile(path: string, alg: string, signal?: AbortSignal): Promise<Digest> {
  const h = createHash(alg);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) })) h.update(chunk as Buffer);
  return `${alg}:${h.digest('hex')}`;
}
