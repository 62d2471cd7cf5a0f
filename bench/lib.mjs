// Shared pieces of ferry's benchmark: a real registry, generated images, timed commands.
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

export const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => res(p)); }).on('error', rej);
  });
}

/** Starts the real CNCF registry on 127.0.0.1 with storage under `dir`. */
export async function startRegistry(dir, { proxy } = {}) {
  // Access logs off: they would cost the registry CPU on every request. `proxy`: an upstream URL
  // (distribution's pull-through cache mode).
  const port = await freePort();
  const cfg = join(dir, 'registry.yml');
  writeFileSync(cfg, `version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: ${join(dir, 'storage')}}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}}\n${proxy ? `proxy: {remoteurl: ${proxy}}\n` : ''}`);
  const child = spawn('docker-registry', ['serve', cfg], { stdio: 'ignore' });
  const stop = () => {
    process.removeListener('exit', stop);
    child.kill('SIGKILL');
  };
  process.on('exit', stop);
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/v2/`)).status === 200) return { host: `127.0.0.1:${port}`, stop }; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error('docker-registry did not start');
}

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes one gzip'd single-file tar layer of `size` random bytes (gzip level 0: random data
 * does not compress, and generating must not dominate the run). Returns digests. */
async function writeLayer(blobsDir, size, i) {
  const tmp = join(blobsDir, `.layer-${i}.tmp`);
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  let gzSize = 0;
  const gz = createGzip({ level: 0 });
  const out = createWriteStream(tmp);
  gz.on('data', (c) => { gzHash.update(c); gzSize += c.length; });
  gz.pipe(out);
  const done = new Promise((r, j) => out.on('finish', r).on('error', j));
  const write = (b) => { tarHash.update(b); return gz.write(b) ? null : new Promise((r) => gz.once('drain', r)); };
  const h = Buffer.alloc(512);
  const put = (s, off, len) => h.write(s, off, len, 'ascii');
  put(`layer-${i}.bin`, 0, 100); put('0000644\0', 100, 8); put('0000000\0', 108, 8); put('0000000\0', 116, 8);
  put(size.toString(8).padStart(11, '0') + '\0', 124, 12); put('14707041200\0', 136, 12); put('        ', 148, 8); put('0', 156, 1); put('ustar\0', 257, 6); put('00', 263, 2);
  let sum = 0; for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  await write(h);
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zero = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= zero.length) await write(cipher.update(left >= zero.length ? zero : zero.subarray(0, left)));
  await write(Buffer.alloc((512 - (size % 512)) % 512 + 1024));
  gz.end();
  await done;
  const digest = `sha256:${gzHash.digest('hex')}`;
  renameSync(tmp, join(blobsDir, digest.slice(7)));
  return { digest, size: gzSize, diffId: `sha256:${tarHash.digest('hex')}` };
}

/** An OCI layout at `dir` holding `layers` random layers totalling `totalMiB`, tagged `tag`. */
export async function makeImage(dir, { totalMiB, layers, tag }) {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const per = Math.floor((totalMiB * 1024 * 1024) / layers);
  const ls = [];
  for (let i = 0; i < layers; i++) ls.push(await writeLayer(blobs, per, i));
  const blob = (bytes, mediaType) => { const d = sha256(bytes); writeFileSync(join(blobs, d.slice(7)), bytes); return { mediaType, digest: d, size: bytes.length }; };
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) }, config: {} })), 'application/vnd.oci.image.config.v1+json');
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })) })), 'application/vnd.oci.image.manifest.v1+json');
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  return { manifest, layers: ls, config };
}

/** Runs a command under GNU time; returns wall seconds and peak RSS (MiB). */
export function timed(cmd, args, opts = {}) {
  const useTime = has('/usr/bin/time');
  const t0 = process.hrtime.bigint();
  const r = useTime
    ? spawnSync('/usr/bin/time', ['-f', '@@RSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
    : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  const m = /@@RSS (\d+)/.exec(r.stderr ?? '');
  return { secs, rssMiB: m ? Number(m[1]) / 1024 : NaN, stdout: r.stdout };
}

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
