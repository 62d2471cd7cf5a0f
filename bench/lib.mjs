// Shared pieces of ferry's benchmark: a real registry, generated images, timed commands.
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';

export const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => res(p)); }).on('error', rej);
  });
}

/** Starts the real CNCF registry on 127.0.0.1 with storage under `dir`. `count`: log every
 * response to `dir/registry.log` so `blobBytes()` can say how many blob bytes it has served. */
export async function startRegistry(dir, { proxy, count = false } = {}) {
  // Logs off unless counting: they would cost the registry CPU on every request (one line per
  // response when counting: a few dozen lines per pull, nothing next to the blobs). `proxy`: an
  // upstream URL (distribution's pull-through cache mode).
  const port = await freePort();
  const cfg = join(dir, 'registry.yml');
  const logFile = join(dir, 'registry.log');
  writeFileSync(cfg, `version: 0.1\nlog: {level: ${count ? 'info' : 'error'}, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: ${join(dir, 'storage')}}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}}\n${proxy ? `proxy: {remoteurl: ${proxy}}\n` : ''}`);
  const child = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', count ? openSync(logFile, 'a') : 'ignore'] });
  const stop = () => {
    process.removeListener('exit', stop);
    child.kill('SIGKILL');
  };
  process.on('exit', stop);
  /** Blob bytes the registry has written to clients so far: the sum of `http.response.written` of
   * its "response completed" lines for GETs of /v2/…/blobs/… (distribution 2.8 logs one per
   * response, also for a response cut short by a client that went away — then the bytes it got
   * into the socket, so an upper bound of what the client received). */
  const blobBytes = () => {
    if (!count) throw new Error('startRegistry: blobBytes() needs { count: true }');
    let sum = 0;
    for (const line of readFileSync(logFile, 'utf8').split('\n')) {
      if (!line.includes('http.request.method=GET') || !/http\.request\.uri="?\/v2\/\S*\/blobs\/sha256:/.test(line)) continue;
      const m = /http\.response\.written=(\d+)/.exec(line);
      if (m) sum += Number(m[1]);
    }
    return sum;
  };
  /** Resolves once the log has stopped growing for 300 ms (a killed client's last response is
   * logged when the registry notices the closed socket, a moment after the kill). */
  const quiet = async () => {
    let last = -1;
    for (let i = 0; i < 50; i++) {
      const size = statSync(logFile).size;
      if (size === last) return;
      last = size;
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/v2/`)).status === 200) return { host: `127.0.0.1:${port}`, port, stop, blobBytes, quiet }; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error('docker-registry did not start');
}

/** A counting TCP relay on 127.0.0.1 in front of `port`: `served()` is every byte the upstream
 * sent through it (headers included); `when(bytes, fn)` calls fn (once) in the same tick the
 * count has grown by `bytes` from now — the resume scenario kills ferry from there, so the kill
 * lands at a byte count, not after a guessed sleep. It runs on this process's event loop: while a
 * client talks through it, nothing here may block (no spawnSync — use timedAsync). */
export async function startRelay(port) {
  let served = 0;
  let trap;
  const socks = new Set();
  const srv = createServer((c) => {
    const u = connect(port, '127.0.0.1');
    socks.add(c); socks.add(u);
    const end = () => { c.destroy(); u.destroy(); socks.delete(c); socks.delete(u); };
    c.on('error', end).on('close', end);
    u.on('error', end).on('close', end);
    u.on('data', (b) => {
      served += b.length;
      if (trap && served >= trap.at) { const t = trap; trap = undefined; t.fn(); }
      if (!c.write(b)) { u.pause(); c.once('drain', () => u.resume()); }
    });
    u.on('end', () => c.end());
    c.pipe(u);
  });
  await new Promise((r, j) => srv.listen(0, '127.0.0.1', r).on('error', j));
  const relayPort = srv.address().port;
  return {
    host: `127.0.0.1:${relayPort}`,
    served: () => served,
    when: (bytes, fn) => { trap = { at: served + bytes, fn }; },
    stop: () => { for (const s of socks) s.destroy(); srv.close(); },
  };
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

const HAS_TIME = has('/usr/bin/time');
const parseRss = (stderr) => { const m = /@@RSS (\d+)/.exec(stderr ?? ''); return m ? Number(m[1]) / 1024 : NaN; };

/** Runs a command under GNU time; returns wall seconds and peak RSS (MiB). */
export function timed(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = HAS_TIME
    ? spawnSync('/usr/bin/time', ['-f', '@@RSS %M', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
    : spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`);
  return { secs, rssMiB: parseRss(r.stderr), stdout: r.stdout };
}

/** As timed(), without blocking this process (for runs through startRelay and for commands run
 * side by side). */
export function timedAsync(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = HAS_TIME
      ? spawn('/usr/bin/time', ['-f', '@@RSS %M', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
      : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr = (stderr + d).slice(-64 << 10); });
    child.on('error', reject).on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.slice(-2000)}`));
      else resolve({ secs, rssMiB: parseRss(stderr), stdout });
    });
  });
}

/** sha256:<hex> of a file, streamed. */
export function hashFile(path) {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 }).on('data', (d) => h.update(d)).on('error', rej).on('end', () => res(`sha256:${h.digest('hex')}`));
  });
}

const hashedInodes = new Map();
/** Checks an OCI layout as a reader would: index.json names `tag`, and its manifest, config and
 * every layer are present with the size and the digest the descriptors give. A file shared by
 * hardlink (the cache feeding several layouts) is hashed once per inode and mtime. */
export async function verifyLayout(dir, tag) {
  const blob = async (d) => {
    const p = join(dir, 'blobs', ...d.digest.split(':'));
    const st = statSync(p);
    if (st.size !== d.size) throw new Error(`${p}: ${st.size} bytes, the descriptor says ${d.size}`);
    const key = `${st.dev}:${st.ino}:${st.mtimeMs}`;
    if (hashedInodes.get(key) !== d.digest) {
      const got = await hashFile(p);
      if (got !== d.digest) throw new Error(`${p}: content hashes to ${got}`);
      hashedInodes.set(key, d.digest);
    }
    return p;
  };
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const m = index.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!m) throw new Error(`${dir}: index.json has no manifest tagged ${tag}`);
  const manifest = JSON.parse(readFileSync(await blob(m), 'utf8'));
  for (const d of [manifest.config, ...manifest.layers]) await blob(d);
}

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
