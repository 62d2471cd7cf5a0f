#!/usr/bin/env node
// ferry demo, fully offline: starts a local registry (the real CNCF `docker-registry` binary when
// installed, else ferry's in-process registry), seeds a generated two-platform image over the
// distribution API, then runs ferry's tags, inspect and pull against it and checks the result.
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
function ferry(args) {
  process.stdout.write(`\n$ ferry ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ferryBin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; process.stdout.write(d); });
    child.on('error', reject).on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ferry ${args[0]} exited ${code}`))));
  });
}

try {
  const reg = await startRegistry();
  say(`registry: ${reg.kind} on ${reg.host}`);
  const repo = 'demo/hello';
  const seeded = await push(reg.host, repo, 'latest');
  process.stdout.write(`seeded ${reg.host}/${repo}:latest = ${seeded.index.digest} (linux/amd64 + linux/arm64)\n`);
  const image = `${reg.host}/${repo}`;

  say('tag listing');
  await ferry(['tags', image]);

  say('inspect: the index, then one platform');
  await ferry(['inspect', `${image}:latest`]);
  const j = JSON.parse(await ferry(['inspect', '--json', '--platform', 'linux/arm64', `${image}:latest`]));
  if (j.digest !== seeded.children[1].digest) throw new Error('inspect --platform picked the wrong manifest');

  say('pull into an OCI layout (host platform), then all platforms');
  const layout = join(work, 'layout');
  const pulled = JSON.parse(await ferry(['pull', '--json', '--progress', 'none', `${image}:latest`, `oci:${layout}:latest`]));
  await ferry(['pull', '--all-platforms', '--progress', 'none', `${image}:1.0`, `oci:${layout}:all`]);
  const idx = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const byName = Object.fromEntries(idx.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]));
  if (byName.all !== seeded.index.digest || byName.latest !== pulled.digest) throw new Error('index.json does not hold the pulled digests');

  say('inspect and list what landed on disk');
  await ferry(['tags', `oci:${layout}`]);
  await ferry(['inspect', `oci:${layout}:latest`]);
  if (spawnSync('sh', ['-c', 'command -v umoci'], { stdio: 'ignore' }).status === 0) {
    process.stdout.write(`\n$ umoci stat --image ${layout}:latest\n${execFileSync('umoci', ['stat', '--image', `${layout}:latest`], { encoding: 'utf8' })}`);
  }
  say(`demo OK: every manifest and blob verified (index ${seeded.index.digest})`);
} catch (e) {
  process.stderr.write(`demo failed: ${e.message}\n`);
  process.exitCode = 1;
} finally {
  cleanup();
  if (existsSync(work)) rmSync(work, { recursive: true, force: true });
}
