// Shared pieces of ferry's benchmark: a real registry, generated images, timed commands.
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
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

/** One ustar header block: `type` '0' (file) or '5' (directory), owner root, a fixed mtime. */
function tarHeader(name, size, type = '0', mode = 0o644) {
  const h = Buffer.alloc(512);
  const put = (s, off, len) => h.write(s, off, len, 'ascii');
  put(name, 0, 100); put(`${mode.toString(8).padStart(7, '0')}\0`, 100, 8); put('0000000\0', 108, 8); put('0000000\0', 116, 8);
  put(size.toString(8).padStart(11, '0') + '\0', 124, 12); put('14707041200\0', 136, 12); put('        ', 148, 8); put(type, 156, 1); put('ustar\0', 257, 6); put('00', 263, 2);
  let sum = 0; for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A gzip stream to `blobsDir` that hashes the tar going in and the gzip coming out; `write`
 * resolves on backpressure, `end` renames the blob to its digest. */
function layerWriter(blobsDir, i, level) {
  const tmp = join(blobsDir, `.layer-${i}.tmp`);
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  let gzSize = 0;
  let tarSize = 0;
  const gz = createGzip({ level });
  const out = createWriteStream(tmp);
  gz.on('data', (c) => { gzHash.update(c); gzSize += c.length; });
  gz.pipe(out);
  const done = new Promise((r, j) => out.on('finish', r).on('error', j));
  return {
    write: (b) => { tarHash.update(b); tarSize += b.length; return gz.write(b) ? null : new Promise((r) => gz.once('drain', r)); },
    end: async () => {
      gz.end();
      await done;
      const digest = `sha256:${gzHash.digest('hex')}`;
      renameSync(tmp, join(blobsDir, digest.slice(7)));
      return { digest, size: gzSize, diffId: `sha256:${tarHash.digest('hex')}`, tarSize };
    },
  };
}

/** Writes one gzip'd single-file tar layer of `size` random bytes (gzip level 0: random data
 * does not compress, and generating must not dominate the run). Returns digests. */
async function writeLayer(blobsDir, size, i) {
  const w = layerWriter(blobsDir, i, 0);
  await w.write(tarHeader(`layer-${i}.bin`, size));
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zero = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= zero.length) await w.write(cipher.update(left >= zero.length ? zero : zero.subarray(0, left)));
  await w.write(Buffer.alloc((512 - (size % 512)) % 512 + 1024));
  return { ...(await w.end()), files: 1, bytes: size };
}

/** xorshift32: a small deterministic PRNG (the text4 data is the same on every run and machine). */
const prng = (seed) => { let s = (seed >>> 0) || 1; return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; }; };
const TEXT_MAX_FILE = 4 << 20;
const TEXT_MIN_FILE = 4 << 10;
let textPool;
/** 12 MiB of text-like bytes: words of 2–10 letters from a 128-word vocabulary drawn with a skew
 * (some words far more common), 12 to a line. gzip -1 takes it to ~1/3.5 of its size (the ratio
 * is the pool's own: deflate sees 32 KiB back, so files cut from it compress alike). */
function textPoolBytes() {
  if (textPool) return textPool;
  const r = prng(0x7e47);
  const words = Array.from({ length: 128 }, () => Buffer.from(Array.from({ length: 2 + Math.floor(r() * 9) }, () => String.fromCharCode(97 + Math.floor(r() * 26))).join('')));
  const pool = Buffer.alloc(TEXT_MAX_FILE + (8 << 20));
  let at = 0;
  for (let n = 1; at < pool.length; n++) {
    at += words[Math.floor(128 * r() ** 1.5)].copy(pool, at);
    if (at < pool.length) pool[at++] = n % 12 === 0 ? 10 : 32;
  }
  return (textPool = pool);
}

/** Writes one gzip'd (level 1) tar layer of text-like files totalling `size` content bytes:
 * files of 4 KiB–4 MiB (4 KiB × 1024^(u⁴): most small, most bytes in the big ones; ~6000 files
 * per GiB, median ~6 KiB), 32 to a directory, under data/l<i>/, each a slice of the text pool at
 * a drawn offset. Deterministic: the same bytes for the same (size, i). */
async function writeTextLayer(blobsDir, size, i) {
  const pool = textPoolBytes();
  const r = prng(0x1000 + i);
  const w = layerWriter(blobsDir, i, 1);
  const base = `data/l${i}`;
  await w.write(tarHeader('data/', 0, '5', 0o755));
  await w.write(tarHeader(`${base}/`, 0, '5', 0o755));
  let files = 0;
  let bytes = 0;
  while (bytes < size) {
    const len = Math.min(size - bytes, Math.round(TEXT_MIN_FILE * 1024 ** (r() ** 4)));
    if (files % 32 === 0) await w.write(tarHeader(`${base}/d${files / 32}/`, 0, '5', 0o755));
    await w.write(tarHeader(`${base}/d${Math.floor(files / 32)}/f${files}.txt`, len));
    const off = Math.floor(r() * (pool.length - TEXT_MAX_FILE));
    await w.write(pool.subarray(off, off + len));
    const padLen = (512 - (len % 512)) % 512;
    if (padLen) await w.write(Buffer.alloc(padLen));
    files++;
    bytes += len;
  }
  await w.write(Buffer.alloc(1024));
  return { ...(await w.end()), files, bytes };
}

/** An OCI layout at `dir` holding `layers` layers totalling `totalMiB` of content, tagged `tag`.
 * `data`: 'random' (one incompressible file per layer, gzip level 0) or 'text4' (many
 * compressible text files per layer, gzip ~3.5×; writeTextLayer). Returns the descriptors and,
 * for text4, `content`: the regular files and their bytes under data/ the image's tree holds. */
export async function makeImage(dir, { totalMiB, layers, tag, data = 'random' }) {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const per = Math.floor((totalMiB * 1024 * 1024) / layers);
  const write = data === 'text4' ? writeTextLayer : writeLayer;
  // Two layers at a time: gzip runs on libuv's threads, so text4 generation uses both cores.
  const ls = new Array(layers);
  let next = 0;
  await Promise.all([0, 1].map(async () => { while (next < layers) { const i = next++; ls[i] = await write(blobs, per, i); } }));
  const blob = (bytes, mediaType) => { const d = sha256(bytes); writeFileSync(join(blobs, d.slice(7)), bytes); return { mediaType, digest: d, size: bytes.length }; };
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ls.map((l) => l.diffId) }, config: {} })), 'application/vnd.oci.image.config.v1+json');
  const manifest = blob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: ls.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })) })), 'application/vnd.oci.image.manifest.v1+json');
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  const sum = (k) => ls.reduce((a, l) => a + l[k], 0);
  return { manifest, layers: ls, config, content: { files: sum('files'), bytes: sum('bytes') }, tarBytes: sum('tarSize'), gzBytes: sum('size') };
}

/** Regular files (count, bytes) under `dir`, walked with lstat (symlinks not followed). */
export function treeStats(dir) {
  let files = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) { files++; bytes += lstatSync(p).size; }
    }
  };
  walk(dir);
  return { files, bytes };
}

/** Regular files (count, bytes) in an uncompressed tar whose names start with `prefix` (a leading
 * "./" or "/" ignored); reads only the headers (pax `path` and GNU long names honoured). */
export function tarStats(file, prefix) {
  const fd = openSync(file, 'r');
  const h = Buffer.alloc(512);
  let pos = 0;
  let files = 0;
  let bytes = 0;
  let longName;
  try {
    const total = fstatSync(fd).size;
    while (pos + 512 <= total && readSync(fd, h, 0, 512, pos) === 512 && h[0] !== 0) {
      const size = parseInt(h.toString('ascii', 124, 136).replace(/\0.*$/, '').trim() || '0', 8);
      const type = String.fromCharCode(h[156] || 48);
      const body = pos + 512;
      pos = body + Math.ceil(size / 512) * 512;
      if (type === 'x' || type === 'L') {
        const b = Buffer.alloc(size);
        readSync(fd, b, 0, size, body);
        longName = type === 'L' ? b.toString('utf8').replace(/\0.*$/s, '') : /(?:^|\n)\d+ path=([^\n]*)\n/.exec(b.toString('utf8'))?.[1] ?? longName;
        continue;
      }
      const ustarPrefix = h.toString('ascii', 257, 262) === 'ustar' ? h.toString('utf8', 345, 500).replace(/\0.*$/s, '') : '';
      const name = (longName ?? (ustarPrefix ? `${ustarPrefix}/` : '') + h.toString('utf8', 0, 100).replace(/\0.*$/s, '')).replace(/^(\.\/|\/)+/, '');
      longName = undefined;
      if ((type === '0' || type === '7') && name.startsWith(prefix)) { files++; bytes += size; }
    }
  } finally {
    closeSync(fd);
  }
  return { files, bytes };
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
