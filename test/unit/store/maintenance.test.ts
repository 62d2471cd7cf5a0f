import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheUsage, listCache, pruneCache, verifyCache, type BadBlob } from '../../../src/store/maintenance.js';
import { parseDuration, parseSize } from '../../../src/util/units.js';

const H = 3_600_000;
const D = 24 * H;

describe('parseDuration', () => {
  it.each([
    ['7d', 7 * D], ['12h', 12 * H], ['30m', 30 * 60_000], ['3600s', H], ['2w', 14 * D],
    ['1h30m', 90 * 60_000], ['1.5h', 90 * 60_000], [' 10M ', 10 * 60_000], ['0s', 0],
  ])('%s → %i ms', (input, ms) => expect(parseDuration(input)).toBe(ms));

  it.each([
    ['7', 'a number needs a unit'], ['', 'not a duration'], ['7y', 'unknown unit "y"'], ['d', 'not a duration'],
    ['-1h', 'not a duration'], ['1h 30m', 'not a duration'], ['7days', 'unknown unit "days"'],
  ])('%j is refused: %s', (input, why) => {
    expect(() => parseDuration(input, '--older-than')).toThrow(expect.objectContaining({ code: 'E_USAGE', message: `--older-than "${input}": ${why}` }));
  });
});

describe('parseSize', () => {
  it.each([
    ['4096', 4096], ['0', 0], ['1B', 1], ['10GiB', 10 * 1024 ** 3], ['10GB', 10 * 1024 ** 3], ['10g', 10 * 1024 ** 3],
    ['500MB', 500 * 1024 ** 2], ['500MiB', 500 * 1024 ** 2], ['500m', 500 * 1024 ** 2], ['1.5G', 1.5 * 1024 ** 3],
    ['2k', 2048], ['2 KiB', 2048], ['1T', 1024 ** 4], ['0.5kb', 512],
  ])('%s → %i bytes', (input, bytes) => expect(parseSize(input)).toBe(bytes));

  it.each(['', 'lots', '10X', '-1G', 'G', '10iB', '1.5.2G', '10 G B'])('%j is refused', (input) => {
    expect(() => parseSize(input, '--keep-size')).toThrow(expect.objectContaining({ code: 'E_USAGE', message: `--keep-size "${input}": not a size` }));
  });
});

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-maint-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

// Milliseconds that are no exact binary fraction of a second: mtimes read back as 083.999….
const NOW = Date.parse('2026-12-01T12:00:00.083Z');

/** A verified blob under blobs/sha256 last used `ageMs` before NOW. */
function blob(size: number, ageMs: number): { digest: string; path: string } {
  const bytes = randomBytes(size);
  const hex = createHash('sha256').update(bytes).digest('hex');
  const dir = join(root, 'blobs', 'sha256');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, hex);
  writeFileSync(path, bytes);
  const t = new Date(NOW - ageMs);
  utimesSync(path, t, t);
  return { digest: `sha256:${hex}`, path };
}

function partial(hex: string, size: number): string {
  const dir = join(root, 'partial', 'sha256');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, hex), randomBytes(size));
  writeFileSync(join(dir, `${hex}.state`), JSON.stringify({ size: size * 2, durable: 0, host: hostname(), boot: '' }));
  return join(dir, hex);
}

function lock(hex: string, owner: { host?: string; pid: number }, heartbeatAgeMs = 0): string {
  const dir = join(root, 'locks', 'sha256');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${hex}.lock`);
  writeFileSync(path, JSON.stringify({ host: owner.host ?? hostname(), pid: owner.pid, started: new Date().toISOString(), token: 'test' }));
  const t = new Date(Date.now() - heartbeatAgeMs);
  utimesSync(path, t, t);
  return path;
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.on('close', r));
  return child.pid!;
}

const hexes = (n: number): string[] => Array.from({ length: n }, (_, i) => String(i + 1).repeat(64).slice(0, 64));

describe('listCache / cacheUsage', () => {
  it('a missing cache directory is an empty cache', async () => {
    const l = await listCache(join(root, 'nope'));
    expect(l).toMatchObject({ blobs: [], partials: [], locks: [] });
    expect(await cacheUsage(join(root, 'nope'))).toEqual({ blobs: { count: 0, bytes: 0 }, partials: { count: 0, bytes: 0 }, total: { bytes: 0 } });
  });

  it('lists blobs least recently used first, and counts partials with their state files', async () => {
    const young = blob(100, H);
    const old = blob(300, 3 * D);
    const [p] = hexes(1);
    partial(p!, 50);
    const l = await listCache(root);
    expect(l.blobs.map((b) => [b.digest, b.size, b.lastUsed.getTime()])).toEqual([[old.digest, 300, NOW - 3 * D], [young.digest, 100, NOW - H]]);
    expect(l.partials).toHaveLength(1);
    expect(l.partials[0]).toMatchObject({ digest: `sha256:${p}`, status: 'abandoned' });
    const u = await cacheUsage(root);
    const stateBytes = readFileSync(join(root, 'partial', 'sha256', `${p}.state`)).length;
    expect(u).toEqual({ blobs: { count: 2, bytes: 400 }, partials: { count: 1, bytes: 50 + stateBytes }, total: { bytes: 450 + stateBytes } });
  });
});

describe('pruneCache', () => {
  it('--older-than removes the blobs unused for longer, and keeps the rest', async () => {
    const b = [blob(1000, 10 * D), blob(1000, 5 * D), blob(1000, 2 * D), blob(1000, H)];
    const r = await pruneCache(root, { olderThanMs: 3 * D, now: NOW });
    expect(r.removed).toEqual({ blobs: 2, bytes: 2000 });
    expect(r.kept).toEqual({ blobs: 2, bytes: 2000 });
    expect(b.map((x) => existsSync(x.path))).toEqual([false, false, true, true]);
  });

  it('--keep-size removes least recently used first until the total fits, whatever order they were written in', async () => {
    const mid = blob(1000, 5 * D);
    const newest = blob(1000, H);
    const oldest = blob(1000, 10 * D);
    const second = blob(1000, 7 * D);
    const r = await pruneCache(root, { keepBytes: 2500, now: NOW });
    expect(r.removed).toEqual({ blobs: 2, bytes: 2000 });
    expect([oldest, second, mid, newest].map((x) => existsSync(x.path))).toEqual([false, false, true, true]);
    // 2000 ≤ 2000: nothing more to do.
    expect((await pruneCache(root, { keepBytes: 2000, now: NOW })).removed.blobs).toBe(0);
    expect((await pruneCache(root, { keepBytes: 1999, now: NOW })).removed.blobs).toBe(1);
    expect(existsSync(newest.path)).toBe(true);
  });

  it('both options: older-than first, then least recently used until the size fits', async () => {
    const b = [blob(1000, 10 * D), blob(1000, 5 * D), blob(1000, 2 * D), blob(1000, H)];
    const r = await pruneCache(root, { olderThanMs: 8 * D, keepBytes: 2000, now: NOW });
    expect(r.removed.blobs).toBe(2);
    expect(b.map((x) => existsSync(x.path))).toEqual([false, false, true, true]);
  });

  it('with neither option removes every blob except those used in the grace period', async () => {
    const b = [blob(10, 10 * D), blob(20, H), blob(30, 5_000)];
    const r = await pruneCache(root, { now: NOW });
    expect(r.removed).toEqual({ blobs: 2, bytes: 30 });
    expect(r.kept).toEqual({ blobs: 1, bytes: 30 });
    expect(r.recent).toBe(1);
    expect(b.map((x) => existsSync(x.path))).toEqual([false, false, true]);
    expect((await pruneCache(root, { now: NOW, graceMs: 0 })).removed.blobs).toBe(1);
  });

  it('removes partials and locks of dead or silent owners, never a partial whose lock is live', async () => {
    const dead = await deadPid();
    const [pDead, pLive, pNoLock, lDead, lLive, pOtherHost] = hexes(6) as [string, string, string, string, string, string];
    const deadPart = partial(pDead, 100);
    const deadLock = lock(pDead, { pid: dead });
    const livePart = partial(pLive, 200);
    const liveLock = lock(pLive, { pid: process.pid });
    const orphanPart = partial(pNoLock, 300);
    const orphanDeadLock = lock(lDead, { pid: dead });
    const orphanLiveLock = lock(lLive, { pid: process.pid });
    // Another machine's download whose heartbeat stopped a minute ago: stale by age.
    const silentPart = partial(pOtherHost, 400);
    const silentLock = lock(pOtherHost, { host: 'elsewhere.example', pid: process.pid }, 60_000);
    const kept = blob(10, H);

    const l = await listCache(root);
    expect(Object.fromEntries(l.partials.map((p) => [p.digest.slice(7), p.status]))).toEqual({
      [pDead]: 'stale', [pLive]: 'downloading', [pNoLock]: 'abandoned', [pOtherHost]: 'stale',
    });
    expect(l.partials.find((p) => p.status === 'downloading')!.owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(Object.fromEntries(l.locks.map((x) => [x.digest.slice(7), x.stale]))).toEqual({ [lDead]: true, [lLive]: false });

    const liveBytes = readFileSync(livePart);
    const r = await pruneCache(root, { keepBytes: 1 << 30, now: NOW });
    expect(r.partials).toMatchObject({ removed: 3, kept: 1 });
    expect(r.locks).toBe(1);
    expect(r.removed.blobs).toBe(0);
    for (const f of [deadPart, `${deadPart}.state`, deadLock, orphanPart, `${orphanPart}.state`, orphanDeadLock, silentPart, silentLock]) {
      expect(existsSync(f), f).toBe(false);
    }
    expect(readFileSync(livePart).equals(liveBytes)).toBe(true);
    expect(existsSync(`${livePart}.state`)).toBe(true);
    expect(JSON.parse(readFileSync(liveLock, 'utf8'))).toMatchObject({ pid: process.pid, token: 'test' });
    expect(existsSync(orphanLiveLock)).toBe(true);
    expect(existsSync(kept.path)).toBe(true);
  });
});

describe('verifyCache', () => {
  it('removes a blob whose content changed and a file whose name is no digest; keeps good ones and unknown algorithms', async () => {
    const good = [blob(5000, H), blob(7000, H)];
    const bad = blob(6000, H);
    const bytes = readFileSync(bad.path);
    bytes[1234] ^= 0x01;
    writeFileSync(bad.path, bytes);
    const junk = join(root, 'blobs', 'sha256', 'not-a-digest');
    writeFileSync(junk, 'x');
    const shortHex = join(root, 'blobs', 'sha256', 'abcd');
    writeFileSync(shortHex, 'y');
    mkdirSync(join(root, 'blobs', 'blake3'));
    const future = join(root, 'blobs', 'blake3', 'f'.repeat(64));
    writeFileSync(future, 'z');

    const reported: BadBlob[] = [];
    const r = await verifyCache(root, { onBad: (b) => reported.push(b) });
    const realHex = createHash('sha256').update(bytes).digest('hex');
    expect(reported.map((b) => [b.digest, b.reason]).sort()).toEqual([
      [bad.digest, `content hashes to sha256:${realHex}`],
      ['sha256:abcd', 'the name is not a sha256 digest'],
      ['sha256:not-a-digest', 'the name is not a sha256 digest'],
    ].sort());
    expect(r.removed).toEqual({ blobs: 3, bytes: 6002 });
    expect(r.kept).toEqual({ blobs: 2, bytes: 12000 });
    expect(r.skipped).toBe(1);
    expect(r.checked).toBe(5);
    for (const f of [bad.path, junk, shortHex]) expect(existsSync(f)).toBe(false);
    for (const g of good) expect(existsSync(g.path)).toBe(true);
    expect(existsSync(future)).toBe(true);
    // A second run finds nothing.
    expect((await verifyCache(root)).removed.blobs).toBe(0);
  });

  it('an empty or missing cache verifies', async () => {
    expect(await verifyCache(join(root, 'nope'))).toMatchObject({ checked: 0, removed: { blobs: 0 }, bad: [] });
  });
});

describe('pruneCache and a manifest being stored', () => {
  it('leaves a young temporary manifest file (written without a lock) and removes an old one', async () => {
    const [young, old] = hexes(2) as [string, string];
    const dir = join(root, 'partial', 'sha256');
    mkdirSync(dir, { recursive: true });
    const y = join(dir, `${young}.${process.pid}.abc`);
    const o = join(dir, `${old}.${process.pid}.def`);
    writeFileSync(y, '{}');
    writeFileSync(o, '{}');
    const t = new Date(Date.now() - 60_000);
    utimesSync(o, t, t);
    const r = await pruneCache(root);
    expect(r.partials).toMatchObject({ removed: 1, kept: 1 });
    expect([existsSync(y), existsSync(o)]).toEqual([true, false]);
    expect(readdirSync(join(root, 'locks', 'sha256'))).toEqual([]); // prune's own locks are gone
  });
});
