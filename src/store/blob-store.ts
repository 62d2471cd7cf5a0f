/**
 * The content-addressed blob cache (`--cache-dir`, `FERRY_CACHE_DIR`, default
 * `$XDG_CACHE_HOME/ferry` or `~/.cache/ferry`), shared by every ferry process that points at it —
 * a job array on one machine or many machines over a shared filesystem.
 *
 * Layout under the root:
 *   blobs/<alg>/<hex>            verified content (blobs and manifests), published by rename
 *   partial/<alg>/<hex>          a download in progress (or left by a process that died)
 *   partial/<alg>/<hex>.state    JSON {size, durable, host, boot}: bytes known durable (fsynced)
 *   locks/<alg>/<hex>.lock       the downloader's lock (lock.ts: owner host+pid, heartbeat)
 *
 * Contracts:
 * - Nothing under blobs/ is ever partial or unverified: a blob is written to partial/, its size
 *   and digest checked, fsynced, then renamed. A cached file whose size is wrong counts as absent.
 * - `ensure(d, open)` returns the path of the verified blob, downloading it at most once across
 *   processes: the lock holder downloads, others wait (polling) and pick up the published blob,
 *   or take the lock over when its owner died (stale lock).
 * - Resume: a partial file left by a dead process is continued, not restarted. Its durable prefix
 *   is the whole file when it was written on this host since the last boot (a killed process
 *   loses nothing the kernel accepted), else the last `durable` the state file recorded (every
 *   CHECKPOINT_BYTES the partial is fdatasynced and the count saved). The prefix is re-hashed
 *   from disk, so the final digest still covers every byte; a resumed blob whose digest is wrong
 *   is downloaded once more from scratch.
 * - Used blobs get their mtime touched (prune's "older than" is time since last use).
 */
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestAlgorithm, digestHex } from '../oci/digest.js';
import { ioError } from '../util/fs-errors.js';
import { verifyBytes } from '../util/verify-stream.js';
import { writeVerifiedRegion } from '../util/verified-write.js';
import { WriteBehind } from '../util/write-behind.js';
import { lockOwner, tryLock, type LockOwner } from './lock.js';

/** A download in progress is fdatasynced and its durable count recorded this often. */
export const CHECKPOINT_BYTES = 64 * 1024 * 1024;
/** How often a waiter looks for the blob another process is downloading. */
const WAIT_POLL_MS = 200;

const HOST = hostname();
let bootId: string | undefined;
function currentBoot(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = '';
    }
  }
  return bootId;
}

interface PartialState {
  size: number;
  durable: number;
  host: string;
  boot: string;
}

export interface EnsureOptions {
  signal?: AbortSignal;
  /** New bytes (fetched, or taken from a resumed partial) as they become durable in the cache. */
  onProgress?: (delta: number) => void;
  /** Every byte arrived; only the end of the hash and the publish are left. */
  onReceived?: () => void;
  /** Another process holds the download; called once per blob when this one starts waiting. */
  onWait?: (owner: LockOwner | undefined) => void;
  /** Called when a download continues a partial file: bytes already there. */
  onResume?: (bytes: number) => void;
  /** This process starts writing the blob into `path` (the partial file); onProgress then counts
   * the bytes written there from 0 (a resumed prefix first). Lets a reader follow the download. */
  onFile?: (path: string) => void;
  isRetryable?: (e: unknown) => boolean;
}

export interface StoreStats {
  /** Bytes that came from the network into the cache. */
  fetched: number;
  /** Bytes taken from partial files of earlier runs. */
  resumed: number;
}

export class BlobStore {
  readonly stats: StoreStats = { fetched: 0, resumed: 0 };
  private readonly dirs = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  blobPath(d: Pick<Descriptor, 'digest'>): string {
    return join(this.root, 'blobs', alg(d), digestHex(d.digest as Digest));
  }

  partialPath(d: Pick<Descriptor, 'digest'>): string {
    return join(this.root, 'partial', alg(d), digestHex(d.digest as Digest));
  }

  lockPath(d: Pick<Descriptor, 'digest'>): string {
    return join(this.root, 'locks', alg(d), `${digestHex(d.digest as Digest)}.lock`);
  }

  /** True when the verified blob is in the cache (right size). A synchronous stat without an
   * exception for a missing file: the async one cost ~0.5 ms of the main thread per call. */
  async has(d: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    try {
      return statSync(this.blobPath(d), { throwIfNoEntry: false })?.size === d.size;
    } catch {
      return false;
    }
  }

  /** A cached manifest (or other small blob), verified; undefined when absent. A cached file that
   * fails verification is removed and reported absent. */
  async readSmall(d: Descriptor, max: number): Promise<Uint8Array | undefined> {
    if (d.size > max) return undefined;
    const p = this.blobPath(d);
    let bytes: Buffer;
    try {
      bytes = await readFile(p);
    } catch {
      return undefined;
    }
    try {
      verifyBytes(bytes, d, `cached ${d.digest}`);
    } catch {
      await rm(p, { force: true });
      return undefined;
    }
    this.touch(p);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Small content (a manifest) known only by its digest: read and verified when cached. */
  async readByDigest(digest: Digest, max: number): Promise<Uint8Array | undefined> {
    const size = await stat(this.blobPath({ digest })).then((st) => (st.isFile() ? st.size : undefined), () => undefined);
    return size === undefined ? undefined : this.readSmall({ mediaType: 'application/octet-stream', digest, size }, max);
  }

  /** Stores verified small content (a manifest) by digest; failures to write are not fatal. */
  async putSmall(d: Descriptor, bytes: Uint8Array): Promise<void> {
    verifyBytes(bytes, d, `manifest ${d.digest}`);
    const p = this.blobPath(d);
    if (await this.has(d)) return;
    try {
      await this.dir(join(p, '..'));
      const tmp = `${this.partialPath(d)}.${process.pid}.${Math.random().toString(36).slice(2)}`;
      await this.dir(join(tmp, '..'));
      await writeFile(tmp, bytes);
      await rename(tmp, p).catch(async (e) => {
        await rm(tmp, { force: true });
        throw e;
      });
    } catch {
      /* a read-only or full cache must not fail the command */
    }
  }

  /**
   * The path of the verified blob `d` in the cache, fetching it through `open(offset)` when it
   * is not there yet (see the contracts above: one download across processes, resume).
   */
  async ensure(d: Descriptor, fetch: (offset: number, signal?: AbortSignal) => Promise<Readable>, opts: EnsureOptions = {}): Promise<string> {
    const final = this.blobPath(d);
    let waited = false;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (await this.has(d)) {
        this.touch(final);
        if (waited) opts.onProgress?.(d.size);
        opts.onReceived?.();
        return final;
      }
      await Promise.all([this.dir(join(final, '..')), this.dir(join(this.partialPath(d), '..')), this.dir(join(this.lockPath(d), '..'))]);
      const lock = await tryLock(this.lockPath(d)).catch((e: unknown) => {
        throw ioError(e, this.lockPath(d));
      });
      if (lock) {
        let fetched = false;
        try {
          if (!(await this.has(d))) {
            await this.download(d, fetch, opts);
            fetched = true;
          }
        } finally {
          await lock.release();
        }
        // Just published by us (verified, renamed into place, told onReceived): no second stat,
        // and its mtime is already now. Found published meanwhile: the next round returns it.
        if (fetched) return final;
        continue;
      }
      if (!waited) {
        waited = true;
        opts.onWait?.(await lockOwner(this.lockPath(d)));
      }
      await sleep(WAIT_POLL_MS, opts.signal);
    }
  }

  private async download(d: Descriptor, fetch: (offset: number, signal?: AbortSignal) => Promise<Readable>, opts: EnsureOptions): Promise<void> {
    const part = this.partialPath(d);
    const statePath = `${part}.state`;
    for (let round = 1; ; round++) {
      const resumeAt = round === 1 ? await durablePrefix(part, statePath, d.size) : 0;
      let fh: FileHandle;
      try {
        fh = await open(part, resumeAt > 0 ? 'r+' : 'w');
        if (resumeAt > 0) await fh.truncate(resumeAt);
      } catch (e) {
        throw ioError(e, part);
      }
      opts.onFile?.(part);
      const state: PartialState = { size: d.size, durable: resumeAt, host: HOST, boot: currentBoot() };
      if (resumeAt > 0) {
        opts.onResume?.(resumeAt);
        this.stats.resumed += resumeAt;
      }
      const wb = new WriteBehind(fh);
      let written = resumeAt;
      let skipPrefix = resumeAt > 0;
      let checkpointAt = resumeAt;
      let checkpoint: Promise<void> = saveState(statePath, state);
      const mark = (): void => {
        const upTo = written;
        checkpointAt = upTo;
        checkpoint = checkpoint.then(async () => {
          await fh.datasync();
          state.durable = upTo;
          await saveState(statePath, state);
        }).catch(() => {});
      };
      try {
        await writeVerifiedRegion(fh, 0, d, fetch, {
          path: part, what: `blob ${d.digest}`, writeBehind: wb, resumeAt,
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.isRetryable ? { isRetryable: opts.isRetryable } : {}),
          ...(opts.onReceived ? { onReceived: opts.onReceived } : {}),
          writeError: (e) => ioError(e, part),
          onProgress: (n) => {
            // The first call of a resumed download reports the prefix already on disk.
            if (skipPrefix) skipPrefix = false;
            else {
              this.stats.fetched += n;
              written += n;
            }
            if (written - checkpointAt >= CHECKPOINT_BYTES) mark();
            opts.onProgress?.(n);
          },
        });
        await wb.finish();
        await fh.sync();
        await checkpoint;
        await fh.close();
      } catch (e) {
        await wb.finish().catch(() => {});
        await checkpoint;
        await fh.close().catch(() => {});
        const mismatch = (e as { code?: string }).code === 'E_DIGEST_MISMATCH';
        if (mismatch) {
          // A resumed prefix that was not what we thought (or a source that lies): never keep it.
          await rm(part, { force: true });
          await rm(statePath, { force: true });
          if (resumeAt > 0 && round === 1) continue;
        }
        // Otherwise the partial file stays for the next run (on this host the file itself says
        // how much is durable; elsewhere the last checkpoint does).
        throw e;
      }
      try {
        await rename(part, this.blobPath(d));
      } catch (e) {
        throw ioError(e, this.blobPath(d));
      }
      await unlink(statePath).catch(() => {}); // (rm would lstat first)
      return;
    }
  }

  private dir(p: string): Promise<void> {
    let m = this.dirs.get(p);
    if (!m) {
      m = mkdir(p, { recursive: true }).then(() => {}, (e: unknown) => {
        this.dirs.delete(p);
        throw ioError(e, p);
      });
      this.dirs.set(p, m);
    }
    return m;
  }

  private touch(p: string): void {
    const t = new Date();
    utimes(p, t, t).catch(() => {});
  }
}

function alg(d: Pick<Descriptor, 'digest'>): string {
  return digestAlgorithm(d.digest as Digest);
}

/** How many leading bytes of a partial file can be trusted (see the contracts). */
async function durablePrefix(part: string, statePath: string, size: number): Promise<number> {
  let st: PartialState;
  let fileSize: number;
  try {
    const f = statSync(part, { throwIfNoEntry: false });
    if (!f) return 0; // no partial file (the usual case): nothing to read
    fileSize = f.size;
    st = JSON.parse(readFileSync(statePath, 'utf8')) as PartialState;
  } catch {
    return 0;
  }
  if (st.size !== size || fileSize > size) return 0;
  if (st.host === HOST && st.boot === currentBoot() && st.boot !== '') return fileSize;
  return Math.max(0, Math.min(Number(st.durable) || 0, fileSize));
}

/** Synchronous (a small write and a rename): see has(). */
async function saveState(path: string, s: PartialState): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, path);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason ?? new FerryError('E_INTERRUPTED', 'interrupted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
