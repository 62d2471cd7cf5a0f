#!/usr/bin/env node
// ferry demo, fully offline: starts a local registry (the real CNCF `docker-registry` binary when
// installed, else ferry's in-process registry), seeds a generated two-platform image over the
// distribution API, then ferries it through every main job — tags, inspect, pull into each local
// format (oci, oci-archive, docker-archive), push, copy (blobs mounted within the registry), tag
// and delete — and checks every step against the registry or the files written (digests, names).
// Exit status 0 only when every check passed. test/integration/demo.test.ts runs it.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ferryBin = join(root, 'bin', 'ferry');
const work = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const say = (s) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);
const cleanups = [];
const cleanup = () => { for (const f of cleanups.splice(0).reverse()) try { f(); } catch {} };
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { cleanup(); process.exit(130); });

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer().listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => res(p)); }).on('error', rej);
  });
}

async function startRegistry() {
  // FERRY_DEMO_REGISTRY=mem forces the in-process registry even where docker-registry exists.
  const which = spawnSync('sh', ['-c', 'command -v docker-registry'], { encoding: 'utf8' });
  if (which.status === 0 && process.env.FERRY_DEMO_REGISTRY !== 'mem') {
    const port = await freePort();
    const cfg = join(work, 'registry.yml');
    writeFileSync(cfg, `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${join(work, 'storage')}}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}}\n`);
    const child = spawn(which.stdout.trim(), ['serve', cfg], { stdio: 'ignore' });
    cleanups.push(() => child.kill('SIGKILL'));
    for (let i = 0; i < 100; i++) {
      try { if ((await fetch(`http://127.0.0.1:${port}/v2/`)).status === 200) return { host: `127.0.0.1:${port}`, kind: 'CNCF distribution (docker-registry)' }; } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('docker-registry did not start');
  }
  const { startMemRegistry } = await import(join(root, 'dist', 'testing', 'mem-registry', 'index.js').replace(/^/, 'file://'));
  const reg = await startMemRegistry();
  cleanups.push(() => reg.stop());
  return { host: reg.host, kind: "ferry's in-process registry (install docker-registry for the real one)" };
}

/** A one-file layer as a gzip'd ustar archive (512-byte header + data + padding + 1 KiB end). */
function layer(name, data) {
  const h = Buffer.alloc(512);
  const put = (s, off, len) => h.write(s, off, len, 'ascii');
  put(name, 0, 100); put('0000644\0', 100, 8); put('0000000\0', 108, 8); put('0000000\0', 116, 8);
  put(data.length.toString(8).padStart(11, '0') + '\0', 124, 12); put('14707041200\0', 136, 12);
  put('        ', 148, 8); put('0', 156, 1); put('ustar\0', 257, 6); put('00', 263, 2);
  let sum = 0; for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  const tar = Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]);
  return { gz: gzipSync(tar, { level: 1 }), diffId: sha(tar) };
}

async function push(host, repo, tag) {
  const base = `http://${host}/v2/${repo}`;
  const putBlob = async (bytes) => {
    const d = sha(bytes);
    const post = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    const loc = new URL(post.headers.get('location'), base);
    loc.searchParams.set('digest', d);
    const put = await fetch(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`blob upload failed: ${put.status}`);
    return { digest: d, size: bytes.length };
  };
  const putManifest = async (ref, mediaType, bytes) => {
    const r = await fetch(`${base}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
    if (r.status !== 201) throw new Error(`manifest put failed: ${r.status} ${await r.text()}`);
    return { mediaType, digest: sha(bytes), size: bytes.length };
  };
  const children = [];
  for (const [os, architecture, variant] of [['linux', 'amd64'], ['linux', 'arm64', 'v8']]) {
    const layers = [layer('hello.txt', Buffer.from(`hello from ferry's demo (${architecture})\n`)), layer('data.bin', createHash('sha512').update(architecture).digest().subarray(0, 48))];
    const config = Buffer.from(JSON.stringify({ architecture, os, ...(variant ? { variant } : {}), created: '2026-01-01T00:00:00Z', config: { Env: ['PATH=/usr/bin', 'DEMO=1'], Cmd: ['/bin/sh'], Labels: { 'org.opencontainers.image.title': 'ferry-demo' } }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
    const cfg = await putBlob(config);
    const ls = [];
    for (const l of layers) ls.push(await putBlob(l.gz));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers: ls.map((x) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...x })) }));
    const d = await putManifest(sha(manifest), 'application/vnd.oci.image.manifest.v1+json', manifest);
    children.push({ ...d, platform: { os, architecture, ...(variant ? { variant } : {}) } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: children }));
  const top = await putManifest(tag, 'application/vnd.oci.image.index.v1+json', index);
  for (const t of ['1.0', 'stable']) await putManifest(t, 'application/vnd.oci.image.index.v1+json', index);
  return { index: top, children };
}

// Asynchronous on purpose: the in-process registry lives in this process's event loop.
function ferry(args, { show = true } = {}) {
  process.stdout.write(`\n$ ferry ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ferryBin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; if (show) process.stdout.write(d); });
    child.on('error', reject).on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ferry ${args[0]} exited ${code}`))));
  });
}

const checks = [];
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  checks.push(what);
  process.stdout.write(`  \x1b[32m✓\x1b[0m ${what}\n`);
}
const short = (d) => d.slice(0, 19);

/** Docker-Content-Digest of host/repo:ref (HEAD), or the HTTP status when there is none. */
async function registryDigest(host, repo, ref) {
  const accept = ['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', ');
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept } });
  return r.ok ? r.headers.get('docker-content-digest') : r.status;
}
async function registryTags(host, repo) {
  const r = await fetch(`http://${host}/v2/${repo}/tags/list`);
  return r.ok ? ((await r.json()).tags ?? []).sort() : [];
}

/** The files of an uncompressed tar (what ferry writes: regular files and directories). */
function tarFiles(file) {
  const buf = readFileSync(file);
  const files = new Map();
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    const prefix = h.subarray(345, 500).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const full = prefix ? `${prefix}/${name}` : name;
    if (h[156] === 0x30 || h[156] === 0) files.set(full, buf.subarray(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
const REF = 'org.opencontainers.image.ref.name';
const CTR = 'io.containerd.image.name';

try {
  const t0 = performance.now();
  const reg = await startRegistry();
  say(`registry: ${reg.kind} on ${reg.host}`);
  const repo = 'demo/hello';
  const seeded = await push(reg.host, repo, 'latest');
  const [amd64, arm64] = seeded.children;
  process.stdout.write(`seeded ${reg.host}/${repo}:latest = ${seeded.index.digest} (linux/amd64 + linux/arm64)\n`);
  const image = `${reg.host}/${repo}`;
  const opts = ['--progress', 'none'];

  say('tags and inspect');
  await ferry(['tags', image]);
  await ferry(['inspect', `${image}:latest`]);
  const j = JSON.parse(await ferry(['inspect', '--json', '--platform', 'linux/arm64', `${image}:latest`], { show: false }));
  check(j.digest === arm64.digest, `inspect --platform linux/arm64 → the arm64 manifest ${short(arm64.digest)}`);

  say('pull into each local format');
  const layout = join(work, 'layout');
  await ferry(['pull', ...opts, '--all-platforms', `${image}:latest`, `oci:${layout}`]);
  const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  check(idx.manifests.length === 1 && idx.manifests[0].digest === seeded.index.digest && idx.manifests[0].annotations[REF] === 'latest',
    'oci layout index.json: the registry\'s index digest, tagged "latest"');
  const ociTar = join(work, 'hello-oci.tar');
  await ferry(['pull', ...opts, '--all-platforms', '--format', 'oci-archive', `${image}:latest`, '-o', ociTar]);
  const ociIdx = JSON.parse(tarFiles(ociTar).get('index.json').toString('utf8')).manifests[0];
  check(ociIdx.digest === seeded.index.digest && ociIdx.annotations[REF] === 'latest' && ociIdx.annotations[CTR] === `${image}:latest`,
    'oci-archive: the index digest, tagged "latest" and named by its full reference (what podman load / ctr import call it)');
  const dockerTar = join(work, 'hello-docker.tar');
  await ferry(['pull', ...opts, '--platform', 'linux/amd64', `${image}:latest`, '-o', dockerTar]);
  const files = tarFiles(dockerTar);
  const item = JSON.parse(files.get('manifest.json').toString('utf8'))[0];
  const amdManifest = JSON.parse(files.get(`blobs/sha256/${amd64.digest.slice(7)}`).toString('utf8'));
  check(sha(files.get(`blobs/sha256/${amd64.digest.slice(7)}`)) === amd64.digest && item.Config === `blobs/sha256/${amdManifest.config.digest.slice(7)}`
    && item.RepoTags[0] === `${image}:latest` && item.Layers.every((l) => sha(files.get(l)) === `sha256:${l.slice(13)}`),
    'docker-archive: the amd64 manifest, config and every layer match their digests; RepoTags names the image');

  say('push the oci-archive back under a new name');
  await ferry(['push', ...opts, ociTar, `${reg.host}/demo/pushed:v1`]);
  check((await registryDigest(reg.host, 'demo/pushed', 'v1')) === seeded.index.digest, `demo/pushed:v1 has the same index digest ${short(seeded.index.digest)}`);

  say('copy within the registry: blobs are mounted, not uploaded');
  // The JSON contract (docs/json.md): run totals at the top, each image under images[].
  const doc = JSON.parse(await ferry(['copy', ...opts, '--json', `${image}:latest`, `${reg.host}/demo/copy:latest`], { show: false }));
  const copied = { ...doc.images[0], destination: doc.destination, blobs: doc.blobs };
  process.stdout.write(`copied ${copied.source} → ${copied.destination}\n  digest ${copied.digest}\n  ${copied.blobs.total} blobs: ${copied.blobs.mounted} mounted, ${copied.blobs.skipped} already there, ${copied.blobs.transferredBytes} bytes uploaded\n`);
  check(copied.digest === seeded.index.digest && (await registryDigest(reg.host, 'demo/copy', 'latest')) === seeded.index.digest, 'demo/copy:latest has the same index digest');
  check(copied.blobs.mounted > 0 && copied.blobs.transferredBytes === 0, `${copied.blobs.mounted} blobs mounted from ${repo}, 0 bytes uploaded`);

  say('tag, then delete');
  await ferry(['tag', `${reg.host}/demo/copy:latest`, 'v2', 'stable']);
  check((await registryDigest(reg.host, 'demo/copy', 'v2')) === seeded.index.digest && (await registryTags(reg.host, 'demo/copy')).join(',') === 'latest,stable,v2',
    'demo/copy tags: latest, stable, v2 — all the same digest');
  await ferry(['delete', `${reg.host}/demo/copy:v2`]);
  check((await registryDigest(reg.host, 'demo/copy', seeded.index.digest)) === 404, 'the manifest is gone from demo/copy (its tags with it)');
  check((await registryDigest(reg.host, repo, 'latest')) === seeded.index.digest, `${repo}:latest is untouched`);

  say(`demo OK: ${checks.length} checks passed, every manifest and blob verified, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
  if (existsSync(work)) rmSync(work, { recursive: true, force: true });
}
