/**
 * `ferry export SRC -o DIR`: the image's layers applied in order into one root filesystem
 * directory (export/apply-layer.ts has the rules), for runtimes that run a plain directory
 * (Charliecloud's ch-run, chroot). SRC is any location ferry reads; a registry image goes through
 * the blob cache, so its layers are fetched in parallel ahead of the in-order apply.
 *
 * Contracts:
 * - The tree is built in a temp directory beside DIR and renamed to DIR only after every layer
 *   applied and verified (each layer's digest is checked as it streams; a mismatch fails the
 *   export). An interrupted or failed export leaves no DIR; an existing non-empty DIR is refused.
 * - gzip, zstd (fzstd: node 20 has no zstd) and uncompressed layers, sniffed by their first bytes.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { PassThrough, type Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { checkImagePlatform, pickPlatform, readConfig } from '../copy/platform-select.js';
import { FerryError } from '../errors.js';
import { LayerApplier, removeTree, type ExportStats } from '../export/apply-layer.js';
import { packTree } from '../export/pack-tree.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestHex, hashAlgorithmFor } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import { hostPlatform, type Platform } from '../oci/platform.js';
import { removeDeadTemps, tempNameFor } from '../transports/fs-util.js';
import { formatLocation, type ImageSource, openSource } from '../transports/index.js';
import { mapLimit } from '../util/concurrency.js';
import { type OpContext, throughCache, withSession } from './context.js';
import { qualifyShortName } from './short-name.js';
import { resolveLocalLocation } from './sniff.js';

export interface ExportOptions {
  platform?: Platform;
  jobs?: number;
  /** Where `-o -` writes the tar (the CLI's stdout). */
  stdout?: Writable;
}

/** What `-o` names: a directory, a tar (gzip-compressed for .tar.gz/.tgz; `-` = stdout) or a
 * SquashFS image (.sqfs/.squashfs). */
export type ExportFormat = 'directory' | 'tar' | 'tar.gz' | 'squashfs';

export function exportFormat(output: string): ExportFormat {
  if (output === '-' || /\.tar$/i.test(output)) return 'tar';
  if (/\.(tar\.gz|tgz)$/i.test(output)) return 'tar.gz';
  if (/\.(sqfs|squashfs)$/i.test(output)) return 'squashfs';
  return 'directory';
}

export interface ExportResult extends ExportStats {
  source: string;
  format: ExportFormat;
  /** The image manifest whose layers were applied. */
  digest: string;
  layers: number;
  output: string;
}

export async function exportImage(source: string, output: string, opts: ExportOptions, ctx: OpContext): Promise<ExportResult> {
  const resolved = await resolveLocalLocation(source, ctx.debug ? { debug: ctx.debug } : {});
  const format = exportFormat(output);
  const toStdout = output === '-';
  const target = toStdout ? resolvePath('ferry-export.tar') : resolvePath(output);
  if (format === 'directory') {
    const existing = await readdir(target).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ENOTDIR' ? undefined : Promise.reject(e)));
    if (existing && existing.length > 0) {
      throw new FerryError('E_USAGE', `${output} exists and is not empty; refusing to export into it`, { hint: 'give a new directory (the export is renamed into place when complete)' });
    }
  } else if (!toStdout && (await stat(target).catch(() => undefined))?.isDirectory()) {
    throw new FerryError('E_USAGE', `${output} is a directory; a ${format} export writes a file`, { hint: 'give a file name, or a directory name without the extension for a directory export' });
  }
  const squash = format === 'squashfs' ? squashTool(ctx.env ?? process.env) : undefined;
  return withSession(ctx, async (session) => {
    const loc = resolved.transport === 'docker' ? { ...resolved, ref: await qualifyShortName(source, resolved.ref, session, ctx) } : resolved;
    const src = throughCache(openSource(loc, session), ctx);
    const signal = ctx.signal;
    // A killed export's staging directory and temp file carry its host and pid: the next export
    // to the same target on this machine removes those of dead processes.
    await removeDeadTemps(target);
    const stage = tempNameFor(target);
    const temps: string[] = [];
    try {
      const root = await src.resolve(signal);
      let desc: Descriptor = root;
      let m = parseManifest(await src.fetchManifest(root, signal), root.mediaType, `manifest of ${src.description}`);
      if (m.kind === 'index') {
        desc = pickPlatform(src.description, m, opts.platform ?? hostPlatform(), !src.origin);
        m = parseManifest(await src.fetchManifest(desc, signal), desc.mediaType, `manifest ${desc.digest}`);
      } else if (opts.platform) {
        checkImagePlatform(src.description, await readConfig(src, m.config, signal), [opts.platform], !src.origin);
      }
      if (m.kind !== 'image') throw new FerryError('E_UNSUPPORTED', `${src.description}: a nested index cannot be exported`);
      const layers = m.layers;
      // Fetch ahead (into the cache) while the layers are applied one after another.
      const ahead = src.blobFile ? mapLimit(layers, opts.jobs ?? 4, (l, _i, s) => src.blobFile!(l, { signal: s }), signal) : Promise.resolve([]);
      ahead.catch(() => {});
      await mkdir(stage, { mode: 0o755 });
      const applier = new LayerApplier(stage);
      // Decompress ahead: while layer i is applied, layer i+1 is already being read, verified and
      // decompressed into a bounded buffer (AHEAD_BYTES; 16 MiB measured +60 MiB RSS and no faster),
      // so the apply never waits on a cold inflate at a layer boundary.
      const open = (i: number): Promise<LayerTar> => {
        const l = layers[i]!;
        const p = layerTar(src, l, layerName(i, layers.length, l), signal).then((t) => {
          const buf = new PassThrough({ highWaterMark: AHEAD_BYTES });
          // A layer can fail (a digest mismatch) before its turn: keep the error on the stream
          // (`errored`, which apply checks) instead of an unhandled 'error' event.
          buf.on('error', () => {});
          t.stream.on('error', (e) => buf.destroy(e));
          return { stream: t.stream.pipe(buf), verdict: t.verdict };
        });
        p.catch(() => {});
        return p;
      };
      let next = layers.length > 0 ? open(0) : undefined;
      try {
        for (const [i, l] of layers.entries()) {
          const cur = await next!;
          next = i + 1 < layers.length ? open(i + 1) : undefined;
          try {
            await applier.apply(cur.stream, layerName(i, layers.length, l), signal);
          } catch (e) {
            throw (signal?.aborted ? undefined : await cur.verdict()) ?? e;
          }
        }
      } catch (e) {
        void next?.then((t) => t.stream.destroy(), () => {});
        throw e;
      }
      await ahead;
      await applier.finish();
      const devices = applier.stats.skipped['device'] ?? 0;
      if (devices > 0) ctx.warn?.(`skipped ${devices} device node${devices === 1 ? '' : 's'}: creating them needs root`);
      if (format === 'directory') {
        await rm(target, { recursive: true, force: true }).catch(() => {}); // an empty directory
        await rename(stage, target);
      } else if (toStdout) {
        if (!opts.stdout) throw new FerryError('E_INTERNAL', 'export to - without a stdout stream');
        await packTree(stage, opts.stdout, signal);
      } else {
        const tmp = tempNameFor(target);
        temps.push(tmp);
        if (format === 'squashfs') await runSquash(squash!, stage, tmp, ctx.env ?? process.env);
        else await packTree(stage, format === 'tar.gz' ? gzipTo(tmp) : createWriteStream(tmp, { mode: 0o644 }), signal);
        await syncFile(tmp);
        await rename(tmp, target);
      }
      return { source: formatLocation(loc), format, digest: desc.digest, layers: layers.length, output: toStdout ? '-' : target, ...applier.stats };
    } catch (e) {
      for (const t of temps) await rm(t, { force: true }).catch(() => {});
      throw e;
    } finally {
      await removeTree(stage).catch(() => {}); // also the image's read-only directories, as non-root
      await src.close();
    }
  });
}

/** zlib's output chunk for layers: its default, 16 KiB, costs a JS callback and a Buffer per 16 KiB
 * of tar; 256 KiB halves the inflate's CPU (545 MiB of tar: 4.4 → 1.95 s). */
const INFLATE_CHUNK = 256 * 1024;

/** How much decompressed tar of the next layer is read ahead of the apply. */
const AHEAD_BYTES = 4 * 1024 * 1024;

const layerName = (i: number, n: number, l: Descriptor): string => `layer ${i + 1}/${n} (${l.digest})`;

/** A layer's uncompressed tar, and what its compressed bytes' check says. */
interface LayerTar {
  stream: Readable;
  /** The digest or size mismatch of the layer's bytes, if any, reading the rest of them when the
   * stream stopped early: a corrupt layer usually breaks the decompressor or the tar parser
   * before its end is hashed, and the mismatch is the error to report (exit 6), not the symptom. */
  verdict(): Promise<FerryError | undefined>;
}

/** The layer's uncompressed tar stream; its compressed bytes are hashed on the way and the
 * stream fails at the end on a digest or size mismatch. */
async function layerTar(src: ImageSource, d: Descriptor, name: string, signal?: AbortSignal): Promise<LayerTar> {
  const raw = await src.fetchBlob(d, signal ? { signal } : {});
  const hash = createHash(hashAlgorithmFor(d.digest as Digest));
  let n = 0;
  const verify = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      if (n !== d.size) return cb(new FerryError('E_SIZE_MISMATCH', `${name}: ${n} bytes, the manifest says ${d.size}`));
      if (hash.digest('hex') !== digestHex(d.digest as Digest)) return cb(new FerryError('E_DIGEST_MISMATCH', `${name}: the content does not match its digest`));
      cb();
    },
  });
  raw.on('error', (e) => verify.destroy(e));
  raw.pipe(verify);
  let checked: unknown;
  let settled = false;
  verify.once('error', (e) => {
    checked = e;
    settled = true;
  }).once('end', () => (settled = true));
  const verdict = async (): Promise<FerryError | undefined> => {
    if (!settled) {
      verify.unpipe();
      await new Promise<void>((resolve) => {
        verify.once('end', () => resolve()).once('error', () => resolve()).once('close', () => resolve());
        verify.on('data', () => {});
        verify.resume();
      });
    }
    const code = checked instanceof FerryError ? checked.code : undefined;
    return code === 'E_DIGEST_MISMATCH' || code === 'E_SIZE_MISMATCH' ? (checked as FerryError) : undefined;
  };
  // Sniff the compression from the first bytes.
  const first = await new Promise<Buffer>((resolve, reject) => {
    const onReadable = (): void => {
      const b = verify.read() as Buffer | null;
      if (b === null) return;
      cleanup();
      resolve(b);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      verify.off('readable', onReadable).off('end', onEnd).off('error', onError);
    };
    verify.on('readable', onReadable).on('end', onEnd).on('error', onError);
  });
  const body = new PassThrough();
  body.write(first);
  verify.on('error', (e) => body.destroy(e));
  verify.pipe(body);
  if (first[0] === 0x28 && first[1] === 0xb5 && first[2] === 0x2f && first[3] === 0xfd) {
    const zstd = await zstdDecoder(name);
    body.on('error', (e) => zstd.destroy(e));
    body.pipe(zstd);
    return { stream: zstd, verdict };
  }
  if (first[0] === 0x1f && first[1] === 0x8b) {
    const gunzip = createGunzip({ chunkSize: INFLATE_CHUNK });
    body.on('error', (e) => gunzip.destroy(e));
    body.pipe(gunzip);
    return { stream: gunzip, verdict };
  }
  return { stream: body, verdict };
}

/** A gzip-compressing writer into `path`; it finishes once the file has every byte. */
function gzipTo(path: string): Writable {
  const gz = createGzip();
  const done = pipeline(gz, createWriteStream(path, { mode: 0o644 }));
  done.catch(() => {});
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (gz.write(chunk)) cb();
      else gz.once('drain', () => cb());
    },
    final(cb) {
      gz.end();
      done.then(() => cb(), cb);
    },
  });
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface SquashTool { kind: 'mksquashfs' | 'tar2sqfs'; path: string }

/** mksquashfs (squashfs-tools), else tar2sqfs (squashfs-tools-ng), from PATH. */
function squashTool(env: NodeJS.ProcessEnv): SquashTool {
  for (const kind of ['mksquashfs', 'tar2sqfs'] as const) {
    for (const dir of (env.PATH ?? '').split(':').filter(Boolean)) {
      const p = join(dir, kind);
      try {
        accessSync(p, fsConstants.X_OK);
        return { kind, path: p };
      } catch {
        /* next */
      }
    }
  }
  throw new FerryError('E_UNSUPPORTED', 'a SquashFS export needs mksquashfs (Debian: squashfs-tools) or tar2sqfs (squashfs-tools-ng); neither is on PATH', {
    hint: 'apt-get install squashfs-tools, or export to a directory or a .tar',
  });
}

async function runSquash(tool: SquashTool, stage: string, out: string, env: NodeJS.ProcessEnv): Promise<void> {
  const args = tool.kind === 'mksquashfs' ? [stage, out, '-noappend', '-quiet', '-no-progress'] : ['-q', '-f', out];
  const child = spawn(tool.path, args, { env, stdio: [tool.kind === 'tar2sqfs' ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  if (tool.kind === 'tar2sqfs') await packTree(stage, child.stdin!);
  const code = await exited;
  if (code !== 0) {
    const last = err.trim().split('\n').pop() ?? '';
    throw new FerryError('E_IO', `${tool.kind} failed (exit ${code})${last ? `: ${last}` : ''}`);
  }
}

/** A zstd-decompressing stream (fzstd: node 20 has no zstd in zlib). Loaded on the first zstd layer. */
async function zstdDecoder(name: string): Promise<Transform> {
  const { Decompress } = await import('fzstd');
  let push: ((c: Buffer) => void) | undefined;
  const d = new Decompress((chunk) => push?.(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  const bad = (e: unknown): FerryError => new FerryError('E_BAD_ARCHIVE', `${name}: not valid zstd: ${(e as Error).message}`);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      push = (c) => this.push(c);
      try {
        d.push(chunk);
        cb();
      } catch (e) {
        cb(bad(e));
      }
    },
    flush(cb) {
      push = (c) => this.push(c);
      try {
        d.push(new Uint8Array(0), true);
        cb();
      } catch (e) {
        cb(bad(e));
      }
    },
  });
}
