import type { Command } from 'commander';
import { FerryError } from '../../errors.js';
import { cacheDu, cacheList, cachePrune, cacheVerify } from '../../ops/cache.js';
import type { CacheListing, CacheUsage, PartialDownload, PruneResult, VerifyResult } from '../../store/maintenance.js';
import { formatBytes, formatDuration } from '../../util/format.js';
import { parseDuration, parseSize } from '../../util/units.js';
import type { CliIO } from '../io.js';
import { document } from '../output/json.js';
import { runtimeFor, type Runtime } from '../runtime.js';

const WHERE = `
The cache is --cache-dir DIR, else FERRY_CACHE_DIR, else $XDG_CACHE_HOME/ferry, else
~/.cache/ferry; a directory that does not exist is an empty cache. --no-cache is a usage error
here (exit 2). Safe to run while pulls use the cache: a download in progress (its lock live)
is never touched, and a blob a pull has open or has linked keeps its bytes.`;

export function cacheCommands(program: Command, io: CliIO, signal: AbortSignal): void {
  const cache = program.command('cache').description('look after the blob cache: list, size, prune, verify');
  const runtime = async (cmd: Command): Promise<Runtime> => {
    const rt = await runtimeFor(cmd, io, signal);
    if (rt.g.cache === false) {
      throw new FerryError('E_USAGE', `--no-cache: ferry cache ${cmd.name()} needs a cache`, { hint: 'name one with --cache-dir DIR, or leave --no-cache out' });
    }
    return rt;
  };

  cache
    .command('ls')
    .description('list cached blobs (least recently used first) and partial downloads')
    .addHelpText('after', `${WHERE}

A partial download is "downloading" (its owner's lock is live), "stale" (the owner died or has
not beaten its heartbeat for 30 s: prune removes it, a pull resumes it) or "abandoned" (no lock).

Examples:
  ferry cache ls
  ferry cache ls --json | jq -r '.entries[] | select(.size > 1e9) | .digest'`)
    .action(async (_opts: unknown, cmd: Command) => {
      const rt = await runtime(cmd);
      const l = await cacheList(rt.ctx);
      if (rt.g.json) return rt.outJson(cacheLsJson(l));
      rt.out(renderCacheLs(l));
    });

  cache
    .command('du')
    .description('show how much the cache holds: blobs, partial downloads, total')
    .addHelpText('after', `${WHERE}

Examples:
  ferry cache du
  ferry cache du --json | jq .totalBytes`)
    .action(async (_opts: unknown, cmd: Command) => {
      const rt = await runtime(cmd);
      const r = await cacheDu(rt.ctx);
      if (rt.g.json) return rt.outJson(cacheDuJson(r.root, r.usage));
      rt.out(renderCacheDu(r.root, r.usage));
    });

  cache
    .command('prune')
    .description('remove least recently used blobs (all of them without options), and downloads and locks left by dead processes')
    .option('--older-than <duration>', 'remove blobs unused for longer than this: 30m, 12h, 7d, 2w, 3600s, 1h30m')
    .option('--keep-size <size>', 'then remove least recently used blobs until the cache holds at most this: 500MB, 10GiB, 1.5G, bytes; K, M, G, T are powers of 1024 whether written KB or KiB, as docker reads --keep-storage')
    .addHelpText('after', `${WHERE}

"Used" is the blob's mtime: every pull, copy or inspect that takes a blob from the cache touches
it. Blobs used in the last 30 s are kept whatever the options (a pull may be about to link
them). Downloads whose owner died, and their locks, are always removed; a live one never.
Prints "removed N blobs (size), kept M (size)".

Examples:
  ferry cache prune                          # empty the cache
  ferry cache prune --older-than 7d
  ferry cache prune --keep-size 20GiB        # least recently used first
  ferry cache prune --older-than 30d --keep-size 50G`)
    .action(async (opts: { olderThan?: string; keepSize?: string }, cmd: Command) => {
      const olderThanMs = opts.olderThan !== undefined ? parseDuration(opts.olderThan, '--older-than') : undefined;
      const keepBytes = opts.keepSize !== undefined ? parseSize(opts.keepSize, '--keep-size') : undefined;
      const rt = await runtime(cmd);
      const r = await cachePrune(rt.ctx, { ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(keepBytes !== undefined ? { keepBytes } : {}) });
      if (rt.g.json) return rt.outJson(cachePruneJson(r));
      rt.out(renderCachePrune(r));
    });

  cache
    .command('verify')
    .description('re-hash every cached blob and remove the ones that do not match their digest')
    .addHelpText('after', `${WHERE}

Every file under blobs/<algorithm>/ is hashed with that algorithm; one whose content does not
hash to its name, or whose name is not a digest, is removed (the next pull fetches it again) and
named in a warning on stderr. Exit status: 0 when the check ran, also when it removed bad blobs
(the cache is sound afterwards, as npm cache verify); the count is in the summary line and in
--json "removed". Exit 8 when the cache cannot be read, 130 when interrupted.

Examples:
  ferry cache verify
  ferry cache verify --json | jq '.removed.count'`)
    .action(async (_opts: unknown, cmd: Command) => {
      const rt = await runtime(cmd);
      const r = await cacheVerify(rt.ctx, (b) => rt.warn(`cache: removed ${b.digest} (${formatBytes(b.size)}): ${b.reason}`));
      if (rt.g.json) return rt.outJson(cacheVerifyJson(r));
      rt.out(renderCacheVerify(r));
    });
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function partialJson(p: PartialDownload) {
  return {
    digest: p.digest,
    size: p.size,
    modified: p.modified.toISOString(),
    status: p.status,
    ...(p.owner ? { owner: { host: p.owner.host, pid: p.owner.pid, heartbeat: p.owner.heartbeat.toISOString() } } : {}),
  };
}

export function cacheLsJson(l: CacheListing & { usage: CacheUsage }) {
  return document('cache ls', {
    cacheDir: l.root,
    entries: l.blobs.map((b) => ({ digest: b.digest, size: b.size, lastUsed: b.lastUsed.toISOString() })),
    partials: l.partials.map(partialJson),
    totalBytes: l.usage.total.bytes,
  });
}

function when(d: Date, now = Date.now()): string {
  return `${d.toISOString().replace(/\.\d+Z$/, 'Z')} (${formatDuration(Math.max(0, now - d.getTime()))} ago)`;
}

export function renderCacheLs(l: CacheListing): string {
  const rows: string[][] = [['DIGEST', 'SIZE', 'LAST USED']];
  for (const b of l.blobs) rows.push([b.digest, formatBytes(b.size), when(b.lastUsed)]);
  if (l.partials.length) {
    rows.push(['', '', ''], ['PARTIAL DOWNLOAD', 'SIZE', 'STATUS']);
    for (const p of l.partials) {
      const who = p.owner ? ` (${p.owner.host} pid ${p.owner.pid}, heartbeat ${formatDuration(Math.max(0, Date.now() - p.owner.heartbeat.getTime()))} ago)` : '';
      rows.push([p.digest, formatBytes(p.size), `${p.status}${who}`]);
    }
  }
  const w = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => (r[0] ? `${r[0].padEnd(w[0]!)}  ${r[1]!.padStart(w[1]!)}  ${r[2]}` : '').trimEnd()).join('\n');
}

export function cacheDuJson(root: string, u: CacheUsage) {
  return document('cache du', {
    cacheDir: root,
    blobCount: u.blobs.count, blobBytes: u.blobs.bytes,
    partialCount: u.partials.count, partialBytes: u.partials.bytes,
    totalBytes: u.total.bytes,
  });
}

export function renderCacheDu(root: string, u: CacheUsage): string {
  return `${root}: ${plural(u.blobs.count, 'blob')} (${formatBytes(u.blobs.bytes)}), ${plural(u.partials.count, 'partial download')} (${formatBytes(u.partials.bytes)}), total ${formatBytes(u.total.bytes)}`;
}

export function cachePruneJson(r: PruneResult & { root: string }) {
  return document('cache prune', {
    cacheDir: r.root,
    removed: { count: r.removed.blobs, bytes: r.removed.bytes },
    kept: { count: r.kept.blobs, bytes: r.kept.bytes },
    recentlyUsed: r.recent,
    partialsRemoved: r.partials.removed, partialBytesRemoved: r.partials.bytes,
    partialsKept: r.partials.kept,
    locksRemoved: r.locks,
  });
}

export function renderCachePrune(r: PruneResult): string {
  const extra: string[] = [];
  if (r.recent) extra.push(`${r.recent} of them used in the last 30 s`);
  if (r.partials.removed) extra.push(`${plural(r.partials.removed, 'partial download')} of dead processes removed (${formatBytes(r.partials.bytes)})`);
  if (r.partials.kept) extra.push(`${plural(r.partials.kept, 'download')} in progress left alone`);
  if (r.locks) extra.push(`${plural(r.locks, 'stale lock')} removed`);
  return `removed ${plural(r.removed.blobs, 'blob')} (${formatBytes(r.removed.bytes)}), kept ${r.kept.blobs} (${formatBytes(r.kept.bytes)})${extra.length ? `; ${extra.join('; ')}` : ''}`;
}

export function cacheVerifyJson(r: VerifyResult & { root: string }) {
  return document('cache verify', {
    cacheDir: r.root,
    checked: r.checked,
    checkedBytes: r.bytes,
    removed: { count: r.removed.blobs, bytes: r.removed.bytes },
    kept: { count: r.kept.blobs, bytes: r.kept.bytes },
    skipped: r.skipped,
    bad: r.bad.map((b) => ({ digest: b.digest, size: b.size, reason: b.reason })),
  });
}

export function renderCacheVerify(r: VerifyResult): string {
  const skipped = r.skipped ? `; ${plural(r.skipped, 'file')} under unknown digest algorithms left alone` : '';
  return `removed ${plural(r.removed.blobs, 'blob')} (${formatBytes(r.removed.bytes)}), kept ${r.kept.blobs} (${formatBytes(r.kept.bytes)})${skipped}`;
}
