/**
 * Applies image layers, in order, to a root directory: the OCI image-spec layer rules
 * (layer.md "Applying Changesets"), with every path resolved inside the root.
 *
 * Contracts:
 * - Whiteouts: `.wh.NAME` removes NAME (a whole tree) from lower layers; `.wh..wh..opq` removes
 *   every lower-layer child of its directory (entries of the same layer stay). Neither appears in
 *   the result.
 * - A later entry replaces an earlier one at the same path, except that a directory over a
 *   directory merges (its mode/owner/mtime are the later ones).
 * - Paths: an entry name that is absolute or has a `..` component is refused (E_BAD_ARCHIVE naming
 *   the layer and the entry). Parents are resolved component by component, following symlinks
 *   planted by earlier entries as if the root were `/` (an absolute target starts again at the
 *   root); a relative symlink target that climbs above the root is refused. The last component is
 *   never followed (a symlink there is replaced, not written through). Hard-link targets are
 *   resolved the same way and must already exist.
 * - Ownership and modes: as root, uid/gid and every mode bit are kept; otherwise files belong to
 *   the caller and setuid/setgid bits are dropped (the rest of the mode is kept). Directory modes
 *   and times are applied at the end (finish()); until then every directory is the caller's to
 *   write (0700), so a read-only directory does not stop later entries, as root or not.
 * - Special files: FIFOs are created (`mknod NAME p`, coreutils: node has no mknod), as anyone.
 *   Character and block devices are created as root (`mknod NAME c|b MAJOR MINOR`) and skipped
 *   otherwise — counted in `stats.skipped.device` (only root may make them; the caller reports
 *   the count once), as is a hard link to a skipped device. They are owned and moded like
 *   files, at a path resolved like a file's.
 */
import {
  chmodSync, closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, mkdirSync,
  openSync, readlinkSync, symlinkSync, unlinkSync, utimesSync, writeSync,
} from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import { ioError } from '../util/fs-errors.js';
import { bestEffortTimes, mknod, readdirOr } from './fs-ops.js';
export { removeTree } from './fs-ops.js';

export interface ExportStats {
  files: number;
  directories: number;
  symlinks: number;
  hardlinks: number;
  /** Device nodes and FIFOs created. */
  special: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  whiteouts: number;
  /** Entries not created, by kind: `device` (character and block devices, when not root). */
  skipped: Record<string, number>;
}

interface TarHeader {
  name: string;
  type: string | null | undefined;
  mode?: number | null;
  uid?: number | null;
  gid?: number | null;
  mtime?: Date | null;
  linkname?: string | null;
  size?: number | null;
  devmajor?: number | null;
  devminor?: number | null;
}

interface TarExtract extends NodeJS.WritableStream {
  on(ev: 'entry', fn: (h: TarHeader, stream: Readable, next: (e?: unknown) => void) => void): this;
  on(ev: 'finish' | 'close', fn: () => void): this;
  on(ev: 'error', fn: (e: Error) => void): this;
  destroy(e?: Error): void;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_LINKS = 40;

export class LayerApplier {
  readonly stats: ExportStats = { files: 0, directories: 0, symlinks: 0, hardlinks: 0, special: 0, bytes: 0, whiteouts: 0, skipped: {} };
  private readonly dirMeta = new Map<string, { mode: number; mtime: Date | undefined }>();
  /** Resolved paths of entries skipped (devices when not root): a hard link to one is skipped too. */
  private readonly skippedPaths = new Set<string>();
  /** Resolved paths known to be real directories (made or checked here; forgotten by remove()):
   * resolving a path under them needs no lstat. */
  private readonly dirs = new Set<string>();
  private readonly asRoot: boolean;

  constructor(readonly root: string, opts: { asRoot?: boolean } = {}) {
    this.asRoot = opts.asRoot ?? process.getuid?.() === 0;
  }

  /** Applies one uncompressed layer tar. `layer` names it in errors. */
  async apply(tar: Readable, layer: string, signal?: AbortSignal): Promise<void> {
    const { extract } = (await import('tar-stream')) as unknown as { extract: () => TarExtract };
    const ex = extract();
    const created = new Set<string>(); // resolved paths this layer made (an opaque marker keeps them)
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, stream, next) => {
        signal?.throwIfAborted();
        this.entry(h, stream, layer, created).then(() => next(), (e: unknown) => {
          stream.resume();
          next(e);
        });
      });
      ex.on('finish', () => resolve());
      ex.on('error', (e) => reject(e instanceof FerryError ? e : new FerryError('E_BAD_ARCHIVE', `${layer}: not a valid tar: ${e.message}`)));
    });
    tar.on('error', (e) => ex.destroy(e));
    if (tar.errored) ex.destroy(tar.errored); // it failed before its turn (read ahead)
    else tar.pipe(ex as unknown as NodeJS.WritableStream);
    await done;
  }

  /** Directory modes and times, deepest first, after every layer. */
  async finish(): Promise<void> {
    const dirs = [...this.dirMeta].sort((a, b) => b[0].length - a[0].length);
    for (const [p, m] of dirs) {
      if (!lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) continue; // never through a symlink
      try {
        chmodSync(p, m.mode);
        if (m.mtime) utimesSync(p, m.mtime, m.mtime);
      } catch {
        /* best effort, as tar does */
      }
    }
  }

  private async entry(h: TarHeader, stream: Readable, layer: string, created: Set<string>): Promise<void> {
    const name = cleanName(h.name, layer);
    if (name === '') {
      stream.resume(); // the root itself ("./")
      if (h.type === 'directory') this.dirMeta.set(this.root, { mode: this.mode(h.mode ?? 0o755), mtime: h.mtime ?? undefined });
      return;
    }
    const slash = name.lastIndexOf('/');
    const dirPart = slash >= 0 ? name.slice(0, slash) : '';
    const base = slash >= 0 ? name.slice(slash + 1) : name;
    const parent = await this.resolve(dirPart, layer, name, true);
    if (base === OPAQUE) {
      stream.resume();
      this.stats.whiteouts++;
      await this.ensureDir(parent);
      for (const child of readdirOr(parent)) {
        const p = join(parent, child);
        if (!created.has(p)) await this.remove(p);
      }
      for (const p of this.skippedPaths) if (p.startsWith(`${parent}/`) && !created.has(p)) this.skippedPaths.delete(p);
      return;
    }
    if (base.startsWith(WH)) {
      stream.resume();
      const target = base.slice(WH.length);
      if (target === '' || target === '.' || target === '..') throw new FerryError('E_BAD_ARCHIVE', `${layer}: refused entry ${JSON.stringify(h.name)}: a whiteout of ${JSON.stringify(target)}`);
      this.stats.whiteouts++;
      await this.remove(join(parent, target));
      return;
    }
    await this.ensureDir(parent);
    const path = join(parent, base);
    created.add(path);
    this.skippedPaths.delete(path);
    const type = h.type ?? 'file';
    if (type === 'directory') {
      stream.resume();
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) await this.remove(path);
      if (!st || !st.isDirectory()) mkdirSync(path, { mode: 0o700 });
      this.dirs.add(path);
      this.own(path, h);
      this.dirMeta.set(path, { mode: this.mode(h.mode ?? 0o755), mtime: h.mtime ?? undefined });
      this.stats.directories++;
      return;
    }
    await this.remove(path);
    if (type === 'file' || type === 'contiguous-file') {
      await this.writeFile(path, stream, h);
      this.stats.files++;
      this.stats.bytes += h.size ?? 0;
      return;
    }
    stream.resume();
    if (type === 'symlink') {
      symlinkSync(h.linkname ?? '', path);
      this.own(path, h);
      bestEffortTimes(path, h.mtime, true);
      this.stats.symlinks++;
      return;
    }
    if (type === 'link') {
      const lname = h.linkname ?? '';
      if (lname.startsWith('/') || lname.split('/').includes('..')) {
        throw new FerryError('E_BAD_ARCHIVE', `${layer}: refused hard link ${JSON.stringify(h.name)} → ${JSON.stringify(lname)}: the target is outside the image`);
      }
      const target = await this.resolve(cleanName(lname, layer), layer, name, false);
      if (this.skippedPaths.has(target)) return this.skip(path, 'device');
      try {
        linkSync(target, path);
      } catch (e) {
        throw new FerryError('E_BAD_ARCHIVE', `${layer}: hard link ${JSON.stringify(h.name)} → ${JSON.stringify(lname)}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such entry in this or a lower layer' : (e as Error).message}`);
      }
      this.stats.hardlinks++;
      return;
    }
    const device = type === 'character-device' || type === 'block-device';
    if (type === 'fifo' || (device && this.asRoot)) {
      await mknod(path, type === 'fifo' ? ['p'] : [type === 'character-device' ? 'c' : 'b', String(h.devmajor ?? 0), String(h.devminor ?? 0)], layer, h.name);
      this.own(path, h);
      chmodSync(path, this.mode(h.mode ?? 0o644));
      bestEffortTimes(path, h.mtime, false);
      this.stats.special++;
      return;
    }
    this.skip(path, device ? 'device' : type);
  }

  private skip(path: string, kind: string): void {
    this.stats.skipped[kind] = (this.stats.skipped[kind] ?? 0) + 1;
    this.skippedPaths.add(path);
  }

  private mode(m: number): number {
    return this.asRoot ? m & 0o7777 : m & 0o1777;
  }

  private own(path: string, h: TarHeader): void {
    if (this.asRoot) lchownSync(path, h.uid ?? 0, h.gid ?? 0);
  }

  /**
   * A regular file's content and metadata, with synchronous calls on its descriptor: the apply
   * is sequential anyway, and the async versions cost a threadpool round trip each (open, every
   * write, chown, chmod, utimes, close: measured 2-3× the whole export's time on 6,000 files).
   * O_EXCL|O_NOFOLLOW: the path was just cleared; nothing planted there is followed.
   */
  private writeFile(path: string, stream: Readable, h: TarHeader): Promise<void> {
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    return new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (e: unknown): void => {
        if (failed) return;
        failed = true;
        stream.resume();
        try {
          closeSync(fd);
        } catch {
          /* already failing */
        }
        reject(e);
      };
      stream.on('data', (c: Buffer) => {
        if (failed) return;
        try {
          for (let off = 0; off < c.length;) off += writeSync(fd, c, off, c.length - off);
        } catch (e) {
          fail(ioError(e, path));
        }
      });
      stream.on('error', fail);
      stream.on('end', () => {
        if (failed) return;
        try {
          if (this.asRoot) fchownSync(fd, h.uid ?? 0, h.gid ?? 0);
          fchmodSync(fd, this.mode(h.mode ?? 0o644));
          if (h.mtime) futimesSync(fd, h.mtime, h.mtime);
          closeSync(fd);
          resolve();
        } catch (e) {
          fail(ioError(e, path));
        }
      });
    });
  }

  private async ensureDir(p: string): Promise<void> {
    if (p === this.root || this.dirs.has(p)) return;
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) await this.remove(p);
    if (!st?.isDirectory()) mkdirSync(p, { recursive: true, mode: 0o755 });
    this.dirs.add(p);
  }

  private async remove(p: string): Promise<void> {
    for (const s of this.skippedPaths) if (s === p || s.startsWith(`${p}/`)) this.skippedPaths.delete(s);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (!st.isDirectory()) return unlinkSync(p);
    await chmod(p, 0o700).catch(() => {}); // a read-only lower dir
    // Forget the tree: a later entry at one of its paths is new (and maybe not a directory).
    const under = `${p}/`;
    for (const d of this.dirs) if (d === p || d.startsWith(under)) this.dirs.delete(d);
    for (const d of this.dirMeta.keys()) if (d === p || d.startsWith(under)) this.dirMeta.delete(d);
    await rm(p, { recursive: true, force: true });
  }

  /**
   * `rel` (a clean relative path) resolved inside the root: symlinks among its components are
   * followed as if the root were `/`; with `followLast` false the last component is not.
   */
  private async resolve(rel: string, layer: string, entry: string, followLast: boolean): Promise<string> {
    let stack: string[] = [];
    const queue = rel.split('/').filter((p) => p !== '' && p !== '.');
    let links = 0;
    while (queue.length > 0) {
      const p = queue.shift()!;
      if (p === '..') {
        if (stack.length === 0) throw escape(layer, entry);
        stack.pop();
        continue;
      }
      const cur = join(this.root, ...stack, p);
      if ((queue.length === 0 && !followLast) || this.dirs.has(cur)) {
        stack.push(p);
        continue;
      }
      const st = lstatSync(cur, { throwIfNoEntry: false });
      if (st?.isDirectory()) this.dirs.add(cur);
      if (st?.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new FerryError('E_BAD_ARCHIVE', `${layer}: refused entry ${JSON.stringify(entry)}: too many symbolic links on its path`);
        const target = readlinkSync(cur);
        if (target.startsWith('/')) stack = [];
        queue.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
        continue;
      }
      stack.push(p);
    }
    return join(this.root, ...stack);
  }
}

function escape(layer: string, entry: string): FerryError {
  return new FerryError('E_BAD_ARCHIVE', `${layer}: refused entry ${JSON.stringify(entry)}: a symbolic link on its path leads outside the image`);
}

/** A tar member name made relative and clean; absolute names and `..` components are refused. */
function cleanName(raw: string, layer: string): string {
  let n = raw;
  while (n.startsWith('./')) n = n.slice(2);
  if (n === '.') return '';
  if (n.startsWith('/')) throw new FerryError('E_BAD_ARCHIVE', `${layer}: refused entry ${JSON.stringify(raw)}: an absolute path`);
  const parts = n.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new FerryError('E_BAD_ARCHIVE', `${layer}: refused entry ${JSON.stringify(raw)}: a ".." component`);
  return parts.join('/');
}
