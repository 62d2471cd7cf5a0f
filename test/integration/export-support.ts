/**
 * Helpers for the `ferry export` suites (export, export-debian, export-special): building OCI
 * layouts from layer tars, describing a root filesystem entry by entry, and the trees the
 * references give for the same image — `umoci unpack` and `podman export` of a container created
 * from it.
 *
 * Contracts:
 * - tree(root): one line per entry (never following symlinks): type; mode, uid, gid; for files
 *   size and content hash; for symlinks the target; for devices major:minor; and for any
 *   non-directory with more than one link the first path of its hard-link group. Devices and
 *   FIFOs are never opened.
 * - layout(dir, layers): an OCI layout with one image tagged v1 whose layers are these (a list of
 *   entries, written with tar-stream, or a tar as it is), gzip- or zstd-compressed.
 * - podmanTree(work, image, ferryTree): podman's container root filesystem as tree() lines, with
 *   the entries podman adds to every container (mount points and files it manages) removed and
 *   checked to be only those.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { runCli } from '../helpers/run-cli.js';

export interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  mode?: number;
  data?: string | Buffer;
  linkname?: string;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
}

export const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const { pack } = (await import('tar-stream')) as unknown as { pack: () => NodeJS.ReadableStream & { entry: (h: object, d?: Buffer | string) => void; finalize: () => void } };
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    const dev = e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {};
    p.entry({ name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date(946684800000), ...(e.linkname ? { linkname: e.linkname } : {}), ...dev }, type === 'file' ? (e.data ?? '') : undefined);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** An OCI layout with one image (tag v1) whose layers are these: entry lists or tars as they are. */
export async function layout(dir: string, layers: (Entry[] | Buffer)[], compression: 'gzip' | 'zstd' | 'none' = 'gzip'): Promise<void> {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const d = sha(b);
    writeFileSync(join(dir, 'blobs', 'sha256', d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const tars = await Promise.all(layers.map((l) => (Buffer.isBuffer(l) ? l : tarOf(l))));
  const compress = (t: Buffer): Buffer => (compression === 'none' ? t : compression === 'gzip' ? gzipSync(t, { level: 1 }) : execFileSync('zstd', ['-q', '-c', '-'], { input: t, maxBuffer: 2 ** 31 }));
  const ls = tars.map((t) => ({ mediaType: `application/vnd.oci.image.layer.v1.tar${compression === 'none' ? '' : `+${compression}`}`, ...put(compress(t)) }));
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: tars.map((t) => `sha256:${sha(t)}`) }, config: {} })));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: ls })));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

/** glibc's major/minor of a dev_t. */
export const devMajor = (rdev: number): number => Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
export const devMinor = (rdev: number): number => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));

/** Every entry under `root`: type, mode, owner, size, content hash, link target, device numbers,
 * hard-link group. */
export function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      const base = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
      if (st.isDirectory()) {
        out[r] = `dir ${base}`;
        walk(r);
        continue;
      }
      if (st.isSymbolicLink()) {
        out[r] = `symlink -> ${readlinkSync(p)} uid=${st.uid} gid=${st.gid}`;
        continue;
      }
      const group = st.nlink > 1 ? (inodes.get(st.ino) ?? (inodes.set(st.ino, r), r)) : '';
      const linked = group ? ` linked=${group}` : '';
      if (st.isFile()) out[r] = `file ${base} size=${st.size} sha=${sha(readFileSync(p)).slice(0, 16)}${linked}`;
      else if (st.isCharacterDevice() || st.isBlockDevice()) out[r] = `${st.isCharacterDevice() ? 'chardev' : 'blockdev'} ${devMajor(st.rdev)}:${devMinor(st.rdev)} ${base}${linked}`;
      else if (st.isFIFO()) out[r] = `fifo ${base}${linked}`;
      else out[r] = `other ${base}`;
    }
  };
  walk('');
  return out;
}

/** `umoci unpack` of `image` (an oci layout, tag v1) into `bundle`: its rootfs tree. */
export function umociTree(image: string, bundle: string): Record<string, string> {
  requireBinary('umoci');
  execFileSync('umoci', ['unpack', '--image', `${image}:v1`, bundle], { stdio: 'pipe', maxBuffer: 2 ** 26 });
  return tree(join(bundle, 'rootfs'));
}

/** What podman adds to every container it creates (mount points and files it manages). */
const PODMAN_RUNTIME = /^(dev|proc|sys|run|etc\/(hosts|hostname|resolv\.conf)|\.containerenv)(\/|$)/;

/**
 * podman (vfs storage, cgroupfs) loads `image` (an oci layout, tag v1, through ferry copy to a
 * docker-archive), creates a container from it and exports it; the container's tree, less what
 * podman adds to every container (checked to be only runtime paths, and logged), is returned.
 */
export async function podmanTree(work: string, image: string, ferryTree: Record<string, string>): Promise<Record<string, string>> {
  requireBinary('podman');
  const store = mkdtempSync(join(work, 'podman-'));
  const conf = join(store, 'registries.conf');
  writeFileSync(conf, 'unqualified-search-registries = []\n');
  const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: conf, XDG_RUNTIME_DIR: join(store, 'xdg') };
  mkdirSync(join(store, 'xdg'));
  const podman = (...args: string[]): string => execFileSync('podman', ['--storage-driver', 'vfs', '--root', join(store, 'root'), '--runroot', join(store, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const archive = join(store, 'img.tar');
  const cp = await runCli(['copy', `oci:${image}:v1`, `docker-archive:${archive}:localhost/exported:v1`]);
  expect(cp.code, cp.stderr).toBe(0);
  podman('load', '-q', '-i', archive);
  const id = podman('create', 'localhost/exported:v1', '/bin/true').trim();
  try {
    podman('export', '-o', join(store, 'c.tar'), id);
  } finally {
    podman('rm', '-f', id);
  }
  const into = join(store, 'rootfs');
  mkdirSync(into);
  execFileSync('tar', ['-xf', join(store, 'c.tar'), '-C', into, '--same-owner', '--numeric-owner', '-p']);
  const theirs = tree(into);
  const runtime = Object.keys(theirs).filter((k) => !(k in ferryTree));
  console.info(`export vs podman: podman adds ${JSON.stringify(runtime)}`);
  for (const k of runtime) expect(k, 'only runtime mount points and files').toMatch(PODMAN_RUNTIME);
  for (const k of runtime) delete theirs[k];
  return theirs;
}
