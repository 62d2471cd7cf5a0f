import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { BlobStore, isStale, tryLock } from '../../../src/store/index.js';
import { removeDeadTemps, tempNameFor } from '../../../src/transports/fs-util.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-store-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const bytes = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
};
const desc = (b: Buffer): Descriptor => ({ mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(b).digest('hex')}`, size: b.length });
const boot = (): string => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
/** A pid that has just exited (not reused this soon). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

/** A fetch that serves `content` from the offset asked and records the offsets. */
function source(content: Buffer) {
  const offsets: number[] = [];
  return { offsets, fetch: async (offset: number) => (offsets.push(offset), Readable.from([content.subarray(offset)])) };
}

describe('BlobStore.ensure', () => {
  it('downloads once, verified, and then serves from the cache without fetching', async () => {
    const content = bytes(300_000);
    const d = desc(content);
    const store = new BlobStore(root);
    const src = source(content);
    const p = await store.ensure(d, src.fetch);
    expect(readFileSync(p).equals(content)).toBe(true);
    expect(p).toBe(join(root, 'blobs', 'sha256', d.digest.slice(7)));
    await store.ensure(d, src.fetch);
    expect(src.offsets).toEqual([0]);
    expect(existsSync(join(root, 'partial', 'sha256', d.digest.slice(7)))).toBe(false);
    expect(existsSync(join(root, 'locks', 'sha256', `${d.digest.slice(7)}.lock`))).toBe(false);
  });

  it.each([
    ['small (hashed inline)', 300_000],
    ['large (hashed on a worker)', 6 * 1024 * 1024],
  ])('%s: a partial file of this boot is continued where it ends; the prefix is re-hashed from disk', async (_n, size) => {
    const content = bytes(size, 2);
    const d = desc(content);
    const store = new BlobStore(root);
    const part = store.partialPath(d);
    mkdirSync(join(part, '..'), { recursive: true });
    const have = Math.floor(size * 0.6);
    writeFileSync(part, content.subarray(0, have));
    writeFileSync(`${part}.state`, JSON.stringify({ size, durable: 1000, host: hostname(), boot: boot() }));
    const src = source(content);
    const p = await store.ensure(d, src.fetch);
    expect(src.offsets).toEqual([have]);
    expect(store.stats).toEqual({ resumed: have, fetched: size - have });
    expect(readFileSync(p).equals(content)).toBe(true);
    expect(existsSync(`${part}.state`)).toBe(false);
  });

  it('a partial file written on another machine (or before a reboot) is trusted only up to its recorded checkpoint', async () => {
    const content = bytes(200_000, 3);
    const d = desc(content);
    const store = new BlobStore(root);
    const part = store.partialPath(d);
    mkdirSync(join(part, '..'), { recursive: true });
    writeFileSync(part, content.subarray(0, 150_000));
    writeFileSync(`${part}.state`, JSON.stringify({ size: content.length, durable: 65_536, host: 'other-node', boot: 'x' }));
    const src = source(content);
    await store.ensure(d, src.fetch);
    expect(src.offsets).toEqual([65_536]);
  });

  it('a resumed prefix that is wrong (digest mismatch at the end) is thrown away and the blob fetched once more from 0', async () => {
    const content = bytes(100_000, 4);
    const d = desc(content);
    const store = new BlobStore(root);
    const part = store.partialPath(d);
    mkdirSync(join(part, '..'), { recursive: true });
    const bad = Buffer.from(content.subarray(0, 50_000));
    bad[10] ^= 0xff;
    writeFileSync(part, bad);
    writeFileSync(`${part}.state`, JSON.stringify({ size: content.length, durable: 50_000, host: hostname(), boot: boot() }));
    const src = source(content);
    const p = await store.ensure(d, src.fetch);
    expect(src.offsets).toEqual([50_000, 0]);
    expect(readFileSync(p).equals(content)).toBe(true);
  });

  it('a source with other bytes: E_DIGEST_MISMATCH, nothing published, no partial kept', async () => {
    const content = bytes(10_000, 5);
    const d = desc(content);
    const store = new BlobStore(root);
    const e = (await store.ensure(d, async () => Readable.from([bytes(10_000, 6)])).catch((x: unknown) => x)) as { code?: string };
    expect(e.code).toBe('E_DIGEST_MISMATCH');
    expect(await store.has(d)).toBe(false);
    expect(existsSync(store.partialPath(d))).toBe(false);
  });

  it('a broken download keeps its partial file for the next run', async () => {
    const content = bytes(100_000, 7);
    const d = desc(content);
    const store = new BlobStore(root);
    const broken = async (offset: number) => {
      const r = new Readable({ read() {} });
      r.push(content.subarray(offset, 40_000));
      setImmediate(() => r.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' })));
      return r;
    };
    await expect(store.ensure(d, broken)).rejects.toThrow('reset');
    expect(readFileSync(store.partialPath(d)).length).toBe(40_000);
    const src = source(content);
    await new BlobStore(root).ensure(d, src.fetch);
    expect(src.offsets).toEqual([40_000]);
  });

  it('while another live process holds the lock, waits and picks up the blob it publishes (no fetch)', async () => {
    const content = bytes(5_000, 8);
    const d = desc(content);
    const store = new BlobStore(root);
    const lockPath = store.lockPath(d);
    mkdirSync(join(lockPath, '..'), { recursive: true });
    // A live owner: this very process (pid alive), as another ferry would be.
    writeFileSync(lockPath, JSON.stringify({ host: hostname(), pid: process.pid, started: new Date().toISOString(), token: 'someone-else' }));
    const src = source(content);
    let waited = false;
    const pending = store.ensure(d, src.fetch, { onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 400));
    mkdirSync(join(store.blobPath(d), '..'), { recursive: true });
    writeFileSync(store.blobPath(d), content);
    rmSync(lockPath);
    expect(readFileSync(await pending).equals(content)).toBe(true);
    expect(waited).toBe(true);
    expect(src.offsets).toEqual([]);
  });

  it('a lock left by a dead process is taken over and the blob downloaded', async () => {
    const content = bytes(5_000, 9);
    const d = desc(content);
    const store = new BlobStore(root);
    const lockPath = store.lockPath(d);
    mkdirSync(join(lockPath, '..'), { recursive: true });
    writeFileSync(lockPath, JSON.stringify({ host: hostname(), pid: deadPid(), started: new Date().toISOString() }));
    const src = source(content);
    await store.ensure(d, src.fetch);
    expect(src.offsets).toEqual([0]);
    expect(existsSync(lockPath)).toBe(false);
  });
});

describe('locks', () => {
  it('one holder at a time; another host\'s lock is live while its heartbeat is fresh and stale after 30 s', async () => {
    const p = join(root, 'x.lock');
    const a = await tryLock(p);
    expect(a).toBeDefined();
    expect(await tryLock(p)).toBeUndefined();
    await a!.release();
    writeFileSync(p, JSON.stringify({ host: 'elsewhere', pid: 1, started: '' }));
    expect(await isStale(p)).toBe(false);
    expect(await tryLock(p)).toBeUndefined();
    const old = new Date(Date.now() - 60_000);
    utimesSync(p, old, old);
    expect(await isStale(p)).toBe(true);
    const b = await tryLock(p);
    expect(b).toBeDefined();
    await b!.release();
    expect(existsSync(p)).toBe(false);
  });

  it('release() leaves a lock that is no longer ours', async () => {
    const p = join(root, 'y.lock');
    const a = await tryLock(p);
    writeFileSync(p, JSON.stringify({ host: 'elsewhere', pid: 1, started: '', token: 'theirs' }));
    await a!.release();
    expect(existsSync(p)).toBe(true);
  });
});

describe('removeDeadTemps', () => {
  it('removes temps of dead processes of this machine, keeps live ones, other names and other machines\'', async () => {
    const target = join(root, 'app.tar');
    const mine = tempNameFor(target); // this (live) process
    const dead = mine.replace(`-${process.pid}.`, `-${deadPid()}.`);
    const other = join(root, `.app.tar.00000000-${deadPid()}.abcdef01.partial`); // another host tag
    const otherName = tempNameFor(join(root, 'b.tar')).replace(`-${process.pid}.`, `-${deadPid()}.`);
    for (const f of [mine, dead, other, otherName]) writeFileSync(f, 'x');
    expect(await removeDeadTemps(target)).toBe(1);
    expect([mine, dead, other, otherName].map((f) => existsSync(f))).toEqual([true, false, true, true]);
    expect(await removeDeadTemps(root, true)).toBe(1); // the directory form: any name
    expect(existsSync(otherName)).toBe(false);
  });
});
