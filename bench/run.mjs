#!/usr/bin/env node
// npm run bench — ferry against skopeo (and a parallel-curl ceiling for pulls; pull-oci also
// times that curl made durable and a node floor, bench/node-floor.mjs) on local
// docker-registry instances on loopback, all in one run: per scenario and tool the median, min and
// max wall time of --runs runs, peak RSS, ratios to skopeo, to the ceiling and to a base (the cold
// pull, the single puller), and the blob bytes the registry served. Printed, and written to
// bench/results.md (with the machine, the date and the commit) at the end of every run.
// Options: --runs N (5) · --mib N (1024) · --layers N (8) · --small (also 200 MiB / 40 layers)
//          --only a,b (scenario names: pull-oci, pull-docker-archive, pull-oci-archive, push,
//          copy-cross, copy-same, pull-mirror, warm-oci, warm-archive, resume, concurrent8, export)
//          --pullers N (8, for concurrent8) · --cold fresh|off (how every cold ferry run avoids
//          a warm cache: a new empty --cache-dir per run, the default and what a first pull gets,
//          or --no-cache) · --results FILE (bench/results.md) · --json (machine-readable rows)
//          · --keep (leave temp dir) · --data random|text4 (the pulled image's layers: random,
//          the default, or text4: compressible text files, the export scenario's data)
// The export scenario (issue 13) needs no registry: a text4 image in an OCI layout flattened by
// ferry export (→ directory, → tar), umoci unpack and podman export of a container created from it.
// A quick smoke test of it: --only export --mib 64 --layers 4 --runs 1 (about 20 s).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { has, hashFile, makeImage, median, startRegistry, startRelay, tarStats, timed, timedAsync, treeStats, verifyLayout } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : def; };
const runs = Number(opt('runs', 5));
const scenarios = ['pull-oci', 'pull-docker-archive', 'pull-oci-archive', 'push', 'copy-cross', 'copy-same', 'pull-mirror', 'warm-oci', 'warm-archive', 'resume', 'concurrent8', 'export'];
const only = opt('only', '') ? new Set(opt('only', '').split(',')) : undefined;
for (const s of only ?? []) if (!scenarios.includes(s)) { console.error(`bench: unknown scenario ${s} (${scenarios.join(', ')})`); process.exit(2); }
const want = (s) => !only || only.has(s);
/** Every scenario but export pulls from (or pushes to) a local registry. */
const needRegistry = scenarios.some((s) => s !== 'export' && want(s));
const data = opt('data', 'random');
if (!['random', 'text4'].includes(data)) { console.error('bench: --data is random or text4'); process.exit(2); }
const pullers = Number(opt('pullers', 8));
const coldMode = opt('cold', 'fresh');
if (!['fresh', 'off'].includes(coldMode)) { console.error('bench: --cold is fresh or off'); process.exit(2); }
const resultsFile = resolve(opt('results', join(root, 'bench', 'results.md')));
const startedAt = new Date();
const loadBefore = loadavg();
const images = [
  { name: `${opt('mib', 1024)}MiB/${opt('layers', 8)}`, mib: Number(opt('mib', 1024)), layers: Number(opt('layers', 8)) },
  ...(argv.includes('--small') ? [{ name: '200MiB/40', mib: 200, layers: 40 }] : []),
];
for (const bin of needRegistry ? ['docker-registry', 'skopeo', 'curl'] : []) {
  if (!has(bin)) { console.error(`bench: ${bin} is required (apt-get install -y ${bin})`); process.exit(2); }
}

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
const stops = [];
process.on('exit', () => { for (const s of stops) s(); if (!argv.includes('--keep')) { unmountUnder(work); rmSync(work, { recursive: true, force: true }); } });
process.on('SIGINT', () => process.exit(130));
const fresh = async (name, o = {}) => {
  const dir = mkdtempSync(join(work, `${name}-`));
  const r = await startRegistry(dir, o);
  const stop = () => { r.stop(); rmSync(dir, { recursive: true, force: true }); };
  stops.push(stop);
  return { ...r, stop };
};

// Caches. Every ferry run takes its cache from withCache(), the one place that decides it:
// withCache() is a cold run (a new empty --cache-dir, removed afterwards, or --no-cache with
// --cold off), withCache(dir) shares `dir` (the warm and concurrent scenarios). So no run
// ever reads the user's cache or a cache an earlier run filled, unless a scenario asks for it.
// A ferry without the cache flags (before the cache landed) gets none: it has no cache to warm.
const ferryBin = join(root, 'bin', 'ferry');
const hasCache = /--no-cache\b/.test(spawnSync(process.execPath, [ferryBin, '--help'], { encoding: 'utf8' }).stdout ?? '');
function withCache(dir) {
  if (!hasCache) return { args: [], done: () => {} };
  if (dir) return { args: ['--cache-dir', dir], done: () => {} };
  if (coldMode === 'off') return { args: ['--no-cache'], done: () => {} };
  const d = mkdtempSync(join(work, 'cache-cold-'));
  return { args: ['--cache-dir', d], done: () => rmSync(d, { recursive: true, force: true }) };
}
const ferryArgv = (cache, a) => [ferryBin, ...cache.args, '--quiet', '--progress', 'none', ...a];
/** A cold ferry run, timed. */
const ferry = (...a) => { const c = withCache(); try { return timed(process.execPath, ferryArgv(c, a)); } finally { c.done(); } };
/** A ferry run on the cache `dir`, timed, not blocking (for the relay and side-by-side runs). */
const ferryOn = (dir, a, opts) => timedAsync(process.execPath, ferryArgv(withCache(dir), a), opts);
const sk = (...a) => timed('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ...a]);
let n = 0;
const out = (tag) => join(work, `out-${tag}-${n++}`);

const rows = [];
const f2 = (x) => (typeof x !== 'number' || Number.isNaN(x) ? '' : x.toFixed(2));
/** `results`: tool → runs ({ secs, rssMiB, served? }); `ceiling` and `base` name the tools the
 * "× ceiling" and "× base" columns divide by. `served` is a fraction of the image's blob bytes:
 * the row shows the largest any run had the registry serve. */
function record(image, scenario, results, { ceiling, base, note } = {}) {
  const med = Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, median(rs.map((r) => r.secs))]));
  const skName = Object.keys(results).find((k) => k.startsWith('skopeo'));
  for (const [tool, rs] of Object.entries(results)) {
    const served = rs.map((r) => r.served).filter((x) => x !== undefined);
    rows.push({
      image, scenario, tool, runs: rs.length, median: med[tool], min: Math.min(...rs.map((r) => r.secs)), max: Math.max(...rs.map((r) => r.secs)),
      rss: Math.max(...rs.map((r) => r.rssMiB)),
      vsSkopeo: skName && tool !== skName ? med[tool] / med[skName] : NaN,
      vsCeiling: ceiling && tool !== ceiling && !tool.startsWith('skopeo') ? med[tool] / med[ceiling] : NaN,
      vsBase: base && tool !== base && !tool.startsWith('skopeo') ? med[tool] / med[base] : NaN,
      served: served.length ? Math.max(...served) : NaN,
      base, note,
    });
  }
}
/** Flushes dirty pages (the generated image, the seeding push, earlier runs) so every timed run
 * starts with the same disk state: otherwise background writeback from setup lands in whichever
 * run comes first, and every tool here fsyncs what it writes (measured: first-round pulls up to
 * 1.4 s slower). Not timed. */
const settle = () => spawnSync('sync', { stdio: 'ignore' });
/** Runs each tool once per round, interleaved, so drift hits all tools alike; the order rotates
 * every round, so no tool always runs right after the same other one (and its deleted output). */
async function rounds(tools, { before } = {}) {
  const results = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
  const entries = Object.entries(tools);
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of [...entries.slice(i % entries.length), ...entries.slice(0, i % entries.length)]) {
      const ctx = before ? await before(name) : {};
      settle();
      const r = await fn(ctx);
      results[name].push(r);
      process.stderr.write(`bench: run ${i + 1}/${runs} ${name}: ${r.secs.toFixed(2)}s, ${r.rssMiB.toFixed(0)} MiB\n`);
      ctx.cleanup?.();
    }
  }
  return results;
}

/** Unmounts whatever is mounted under `dir` (deepest first): podman's storage lives in the temp
 * dir, and a mount left there would make the rm fail or reach outside. */
function unmountUnder(dir) {
  let mounts = [];
  try { mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ')).filter((m) => m && (m === dir || m.startsWith(`${dir}/`))); } catch {}
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

const exportTools = new Set();
/** Issue 13's export bench: a text4 image (many compressible files per layer, bench/lib.mjs) in
 * an OCI layout, flattened by ferry export into a new directory and a new tar, by umoci unpack
 * (and umoci raw unpack: the rootfs alone) into a new bundle, and by podman export of a container
 * created once from it (vfs storage, cgroupfs, an isolated store in the temp dir). Interleaved,
 * `sync` before each run; every output checked untimed against the image's file count and bytes
 * under data/, so a broken export cannot look fast. `have`: the loop's layout, if already text4. */
async function exportScenario(img, have) {
  const tl = have?.layout ?? join(work, `src-text4-${img.layers}`);
  let built = have?.built;
  if (!built) {
    process.stderr.write(`bench: generating ${img.name} (text4) for export…\n`);
    built = await makeImage(tl, { totalMiB: img.mib, layers: img.layers, tag: 'bench', data: 'text4' });
  }
  const expect = built.content;
  const check = (what, got) => {
    if (got.files !== expect.files || got.bytes !== expect.bytes) throw new Error(`export: ${what} holds ${got.files} files, ${got.bytes} bytes under data/; the image has ${expect.files}, ${expect.bytes}`);
  };
  const src = `oci:${tl}:bench`;
  const rm = (p) => rmSync(p, { recursive: true, force: true });
  const tools = {
    'ferry → dir': () => { const o = out('xd'); try { const r = ferry('export', src, '-o', o); check('ferry → dir', treeStats(join(o, 'data'))); return r; } finally { rm(o); } },
    'ferry → tar': () => { const o = `${out('xt')}.tar`; try { const r = ferry('export', src, '-o', o); check('ferry → tar', tarStats(o, 'data/')); return r; } finally { rm(o); } },
  };
  exportTools.add('ferry');
  if (has('umoci')) {
    exportTools.add('umoci');
    tools['umoci unpack'] = () => { const b = out('ub'); try { const r = timed('umoci', ['unpack', '--image', `${tl}:bench`, b]); check('umoci unpack', treeStats(join(b, 'rootfs', 'data'))); return r; } finally { rm(b); } };
    tools['umoci raw unpack'] = () => { const b = out('ur'); try { const r = timed('umoci', ['raw', 'unpack', '--image', `${tl}:bench`, b]); check('umoci raw unpack', treeStats(join(b, 'data'))); return r; } finally { rm(b); } };
  } else process.stderr.write('bench: umoci is not installed (apt-get install -y umoci): no umoci rows, no × umoci target\n');
  let podmanDone = () => {};
  if (has('podman')) {
    exportTools.add('podman');
    const store = mkdtempSync(join(work, 'podman-'));
    mkdirSync(join(store, 'xdg'));
    writeFileSync(join(store, 'registries.conf'), 'unqualified-search-registries = []\n');
    const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: join(store, 'registries.conf'), XDG_RUNTIME_DIR: join(store, 'xdg') };
    const flags = ['--storage-driver', 'vfs', '--root', join(store, 'root'), '--runroot', join(store, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
    const podman = (...a) => { const r = spawnSync('podman', [...flags, ...a], { env, encoding: 'utf8', cwd: work }); if (r.status !== 0) throw new Error(`podman ${a.join(' ')} failed (${r.status}): ${r.stderr?.slice(-2000)}`); return r.stdout.trim(); };
    process.stderr.write('bench: podman pull + create (once, untimed)…\n');
    // A relative path: podman names the image after it, and the temp dir's name has capitals.
    const image = podman('pull', '-q', `oci:${relative(work, tl)}:bench`).split('\n').pop();
    const cid = podman('create', image, '/bin/true');
    tools['podman export'] = () => { const o = `${out('pe')}.tar`; try { const r = timed('podman', [...flags, 'export', '-o', o, cid], { env }); check('podman export', tarStats(o, 'data/')); return r; } finally { rm(o); } };
    podmanDone = () => { try { podman('rm', '-f', cid); podman('system', 'reset', '-f'); } catch (e) { process.stderr.write(`bench: podman cleanup: ${e.message}\n`); } unmountUnder(store); rm(store); };
  } else process.stderr.write('bench: podman is not installed (apt-get install -y podman): no podman row\n');
  let results;
  try { results = await rounds(tools); } finally { podmanDone(); }
  const pick = (...names) => Object.fromEntries(names.filter((k) => results[k]).map((k) => [k, results[k]]));
  const med = (k) => (results[k] ? median(results[k].map((r) => r.secs)) : NaN);
  const what = `${img.layers} gzip layers, ${expect.files} text files of 4 KiB–4 MiB (${(expect.bytes / 2 ** 20).toFixed(0)} MiB, gzip ${(built.tarBytes / built.gzBytes).toFixed(2)}×)`;
  const cross = `ferry → dir ÷ podman export ${f2(med('ferry → dir') / med('podman export'))}, ferry → tar ÷ umoci unpack ${f2(med('ferry → tar') / med('umoci unpack'))}`;
  record(img.name, 'export text4 → directory', pick('ferry → dir', 'umoci unpack', 'umoci raw unpack'), { base: results['umoci unpack'] ? 'umoci unpack' : undefined, note: `${what}; base: umoci unpack (as root; also writes config.json and an mtree manifest of the rootfs, which hashes every file); umoci raw unpack: the rootfs alone; every output's files and bytes under data/ checked after the run, untimed` });
  record(img.name, 'export text4 → tar', pick('ferry → tar', 'podman export'), { base: results['podman export'] ? 'podman export' : undefined, note: `base: podman export -o FILE of a container created once from the image (vfs storage: the container's rootfs is a full copy made at create, untimed, so this row is a tar of an existing tree: no decompression, no apply); ${cross}` });
  if (!have) rm(tl);
}

const regA = needRegistry ? await fresh('a', { count: true }) : undefined;
for (const img of images) {
  const layout = join(work, `src-${img.layers}`);
  const repo = `bench/img${img.layers}`;
  let built;
  if (needRegistry) {
    process.stderr.write(`bench: generating ${img.name} (${data})…\n`);
    built = await makeImage(layout, { totalMiB: img.mib, layers: img.layers, tag: 'bench', data });
    sk(`oci:${layout}:bench`, `docker://${regA.host}/${repo}:bench`);
  }
  if (want('export')) await exportScenario(img, needRegistry && data === 'text4' ? { layout, built } : undefined);
  if (!needRegistry) continue;
  const ref = `${regA.host}/${repo}:bench`;
  const blobs = [built.config, ...built.layers];
  const imageBytes = blobs.reduce((a, b) => a + b.size, 0);
  const rmOut = (p) => () => rmSync(p, { recursive: true, force: true });
  /** The ceiling: every blob with parallel curl (no hashing, no fsync), into `o`. */
  const curlArgs = (o) => ['-sSf', '--create-dirs', '-Z', '--parallel-max', String(Math.min(8, blobs.length)), ...blobs.flatMap((b) => [`http://${regA.host}/v2/${repo}/blobs/${b.digest}`, '-o', join(o, b.digest.slice(7))])];
  /** Runs fn and adds the fraction of the image's blob bytes regA served meanwhile. */
  const counted = async (fn) => {
    await regA.quiet();
    const before = regA.blobBytes();
    const r = await fn();
    await regA.quiet();
    return { ...r, served: (regA.blobBytes() - before) / imageBytes };
  };

  if (want('pull-oci')) {
    record(img.name, 'pull → oci layout', await rounds({
      'ferry': () => counted(() => { const o = out('f'); const r = ferry('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; }),
      'skopeo': () => counted(() => { const o = out('s'); const r = sk(`docker://${ref}`, `oci:${o}:bench`); rmOut(o)(); return r; }),
      'curl ceiling': () => counted(() => { const o = out('c'); const r = timed('curl', curlArgs(o)); rmOut(o)(); return r; }),
      // What durability costs on this disk: the same curl, then every file fdatasynced (ferry and
      // skopeo sync what they write before it becomes visible; the ceiling does not).
      'curl + fdatasync': () => counted(() => { const o = out('cs'); const q = (x) => `'${x}'`; const r = timed('sh', ['-c', `curl ${curlArgs(o).map(q).join(' ')} && exec sync --data ${blobs.map((b) => q(join(o, b.digest.slice(7)))).join(' ')}`]); rmOut(o)(); return r; }),
      // The leanest verifying, durable puller written in node (bench/node-floor.mjs).
      'node floor': () => counted(() => { const o = out('nf'); const r = timed(process.execPath, [join(root, 'bench', 'node-floor.mjs'), regA.host, repo, o, ...blobs.map((b) => b.digest)]); rmOut(o)(); return r; }),
    }), { ceiling: 'curl ceiling', note: 'curl + fdatasync: the ceiling\'s curl, then `sync --data` on every file it wrote; node floor: bench/node-floor.mjs — raw socket read into one reused buffer, synchronous writes, fdatasync every 32 MiB and at the end, SHA-256 on ferry\'s hash worker, no HTTP library (plain HTTP, no auth, no retries: a measuring tool)' });
  }
  for (const fmt of ['docker-archive', 'oci-archive']) {
    if (!want(`pull-${fmt}`)) continue;
    record(img.name, `pull → ${fmt}`, await rounds({
      'ferry': () => counted(() => { const o = `${out('f')}.tar`; const r = ferry('pull', ref, '-o', o, '--format', fmt); rmOut(o)(); return r; }),
      'skopeo': () => counted(() => { const o = `${out('s')}.tar`; const r = sk(`docker://${ref}`, `${fmt}:${o}:${fmt === 'docker-archive' ? 'bench/img:bench' : 'bench'}`); rmOut(o)(); return r; }),
    }));
  }
  if (want('push')) {
    record(img.name, 'push (empty registry)', await rounds({
      'ferry': async () => { const r0 = await fresh('p'); const r = ferry('push', `oci:${layout}:bench`, `${r0.host}/pushed/img:bench`); r0.stop(); return r; },
      'skopeo': async () => { const r0 = await fresh('p'); const r = sk(`oci:${layout}:bench`, `docker://${r0.host}/pushed/img:bench`); r0.stop(); return r; },
    }));
  }
  if (want('copy-cross')) {
    record(img.name, 'copy registry → other registry', await rounds({
      'ferry': async () => { const r0 = await fresh('c'); const r = ferry('copy', ref, `${r0.host}/copied/img:bench`); r0.stop(); return r; },
      'skopeo': async () => { const r0 = await fresh('c'); const r = sk(`docker://${ref}`, `docker://${r0.host}/copied/img:bench`); r0.stop(); return r; },
    }));
  }
  if (want('copy-same')) {
    record(img.name, 'copy within one registry', await rounds({
      'ferry': () => ferry('copy', ref, `${regA.host}/same-f${n++}/img:bench`),
      'skopeo': () => sk(`docker://${ref}`, `docker://${regA.host}/same-s${n++}/img:bench`),
    }));
  }
  if (want('pull-mirror')) {
    // A warm pull-through cache (distribution in proxy mode) in front of regA, used as the
    // mirror of regA's name through registries.conf; the direct pull beside it for scale.
    const cache = await fresh('m', { proxy: `http://${regA.host}` });
    const conf = join(work, 'registries.conf');
    writeFileSync(conf, `[[registry]]\nprefix = "${regA.host}"\nlocation = "${regA.host}"\n[[registry.mirror]]\nlocation = "${cache.host}"\ninsecure = true\n`);
    const warm = out('w');
    sk('--registries-conf', conf, `docker://${ref}`, `oci:${warm}:bench`); // fills the cache
    rmOut(warm)();
    const viaMirror = (...a) => { const c = withCache(); try { return timed(process.execPath, ferryArgv(c, a), { env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf } }); } finally { c.done(); } };
    record(img.name, 'pull → oci via warm mirror', await rounds({
      'ferry': () => { const o = out('f'); const r = viaMirror('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; },
      'ferry direct': () => { const o = out('d'); const r = ferry('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; },
      'skopeo': () => { const o = out('s'); const r = timed('skopeo', ['--insecure-policy', '--registries-conf', conf, 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${o}:bench`]); rmOut(o)(); return r; },
    }));
    cache.stop();
  }
  if (want('warm-oci') || want('warm-archive')) {
    // One cold pull fills a cache dir; then every timed warm pull writes a NEW destination from
    // it. The tag is re-resolved each time (a manifest GET), the blobs should come from the cache.
    const ociRef = join(work, 'warm-ref-oci');
    ferry('pull', ref, `oci:${ociRef}:bench`);
    const tarRef = join(work, 'warm-ref.tar');
    ferry('pull', ref, '-o', tarRef, '--format', 'docker-archive');
    const tarDigest = await hashFile(tarRef); // ferry's archives are byte-for-byte reproducible
    rmSync(tarRef, { force: true });
    for (const kind of ['oci', 'archive']) {
      if (!want(`warm-${kind}`)) continue;
      const cacheDir = mkdtempSync(join(work, `cache-warm-${kind}-`));
      const dest = (o) => (kind === 'oci' ? [`oci:${o}:bench`] : ['-o', o, '--format', 'docker-archive']);
      const check = async (o) => {
        if (kind === 'oci') await verifyLayout(o, 'bench');
        else if ((await hashFile(o)) !== tarDigest) throw new Error(`warm-archive: ${o} differs from a cold pull's archive`);
      };
      await ferryOn(cacheDir, ['pull', ref, ...dest(join(work, `warm-fill-${kind}`))]);
      rmOut(join(work, `warm-fill-${kind}`))();
      record(img.name, `warm re-pull → new ${kind === 'oci' ? 'oci layout' : 'docker-archive'}`, await rounds({
        'ferry warm': () => counted(async () => { const o = out('w') + (kind === 'oci' ? '' : '.tar'); const r = await ferryOn(cacheDir, ['pull', ref, ...dest(o)]); await check(o); rmOut(o)(); return r; }),
        'ferry cold': () => counted(async () => { const o = out('f') + (kind === 'oci' ? '' : '.tar'); const r = ferry('pull', ref, ...dest(o)); await check(o); rmOut(o)(); return r; }),
        'skopeo': () => counted(() => { const o = out('s') + (kind === 'oci' ? '' : '.tar'); const r = sk(`docker://${ref}`, kind === 'oci' ? `oci:${o}:bench` : `docker-archive:${o}:bench/img:bench`); rmOut(o)(); return r; }),
      }), { base: 'ferry cold', note: 'base: the cold pull (empty cache)' });
      rmSync(cacheDir, { recursive: true, force: true });
    }
    rmOut(ociRef)();
  }
  if (want('resume')) {
    // Each run: a pull through the counting relay, SIGKILLed from the relay the moment half the
    // image's bytes have gone through; then the same pull again (same cache, same destination),
    // timed, and the blob bytes the registry served to it. A cold pull through the relay beside
    // it is the base.
    const relay = await startRelay(regA.port);
    stops.push(relay.stop);
    const relayRef = `${relay.host}/${repo}:bench`;
    const dest = (kind, o) => (kind === 'oci' ? [`oci:${o}:bench`] : ['-o', o, '--format', 'docker-archive']);
    const killedAt = [];
    const resumeRun = (kind) => async () => {
      const cacheDir = mkdtempSync(join(work, 'cache-resume-'));
      const o = out('r') + (kind === 'oci' ? '' : '.tar');
      const c = withCache(cacheDir);
      const child = spawn(process.execPath, ferryArgv(c, ['pull', relayRef, ...dest(kind, o)]), { stdio: 'ignore' });
      const start = relay.served();
      relay.when(Math.round(imageBytes / 2), () => { child.kill('SIGKILL'); killedAt.push((relay.served() - start) / imageBytes); });
      const [code, signal] = await new Promise((r) => child.on('exit', (...a) => r(a)));
      if (signal !== 'SIGKILL') throw new Error(`resume: the pull to be killed ended by itself (exit ${code}) before half the image was served`);
      const r = await counted(() => ferryOn(cacheDir, ['pull', relayRef, ...dest(kind, o)]));
      if (kind === 'oci') await verifyLayout(o, 'bench');
      rmOut(o)();
      rmSync(cacheDir, { recursive: true, force: true });
      return r;
    };
    record(img.name, 'resume after SIGKILL at 50% (rerun)', await rounds({
      'ferry → oci': resumeRun('oci'),
      'ferry → docker-archive': resumeRun('archive'),
      'ferry cold → oci': () => counted(async () => { const o = out('f'); const c = withCache(); try { return await timedAsync(process.execPath, ferryArgv(c, ['pull', relayRef, `oci:${o}:bench`])); } finally { c.done(); rmOut(o)(); } }),
    }), { base: 'ferry cold → oci', note: `through a counting relay; the kills landed at ${Math.min(...killedAt).toFixed(2)}–${Math.max(...killedAt).toFixed(2)} of the image bytes; served = what the rerun fetched; base: a cold pull through the relay` });
    relay.stop();
  }
  if (want('concurrent8')) {
    // `pullers` pulls started at once into as many new layouts, all on one new cache dir; the
    // wall time until the last one ends, the largest peak RSS among them, the blob bytes the
    // registry served in all; every layout verified. One pull on its own new cache is the base.
    const label = `ferry ×${pullers}`;
    record(img.name, `${pullers} concurrent pulls, one cache`, await rounds({
      [label]: () => counted(async () => {
        const cacheDir = mkdtempSync(join(work, 'cache-conc-'));
        const outs = Array.from({ length: pullers }, () => out('p'));
        const t0 = process.hrtime.bigint();
        const rs = await Promise.all(outs.map((o) => ferryOn(cacheDir, ['pull', ref, `oci:${o}:bench`])));
        const secs = Number(process.hrtime.bigint() - t0) / 1e9;
        for (const o of outs) await verifyLayout(o, 'bench');
        for (const o of outs) rmOut(o)();
        rmSync(cacheDir, { recursive: true, force: true });
        return { secs, rssMiB: Math.max(...rs.map((r) => r.rssMiB)) };
      }),
      'ferry ×1': () => counted(async () => {
        const cacheDir = mkdtempSync(join(work, 'cache-conc-'));
        const o = out('p');
        const r = await ferryOn(cacheDir, ['pull', ref, `oci:${o}:bench`]);
        await verifyLayout(o, 'bench');
        rmOut(o)();
        rmSync(cacheDir, { recursive: true, force: true });
        return r;
      }),
    }), { base: 'ferry ×1', note: `wall until the last of ${pullers} ends; RSS: the largest of them; served: all of them together; base: one pull` });
  }
  rmSync(layout, { recursive: true, force: true });
}

for (const s of stops.splice(0)) s(); // registries are child processes: stop them so we exit

const git = (...a) => spawnSync('git', ['-C', root, ...a], { encoding: 'utf8' }).stdout?.trim() ?? '';
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? ' (with uncommitted changes)' : ''}`;
const version = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
const fsType = spawnSync('stat', ['-f', '-c', '%T', work], { encoding: 'utf8' }).stdout?.trim();
const machine = `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, ${tmpdir()} on ${fsType}; `
  + `load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} at the start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at the end; `
  + [`node ${process.version}`,
    ...(needRegistry ? [version('skopeo', ['--version']), version('docker-registry', ['--version']), version('curl', ['--version']).split(' ').slice(0, 2).join(' ')] : []),
    ...(exportTools.has('umoci') ? [version('umoci', ['--version'])] : []), ...(exportTools.has('podman') ? [version('podman', ['--version'])] : [])].join(', ');
const cmdLine = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

const pad = (s, w) => String(s).padEnd(w);
console.log(`\nferry bench — ${runs} runs each (medians), local docker-registry on 127.0.0.1, node ${process.version}, ${startedAt.toISOString().slice(0, 10)}, commit ${commit}`);
console.log(`${pad('image', 11)}${pad('scenario', 40)}${pad('tool', 24)}${pad('median s', 10)}${pad('min s', 8)}${pad('max s', 8)}${pad('peak RSS', 10)}${pad('× skopeo', 10)}${pad('× ceiling', 11)}${pad('× base', 8)}served`);
for (const r of rows) {
  console.log(`${pad(r.image, 11)}${pad(r.scenario, 40)}${pad(r.tool, 24)}${pad(r.median.toFixed(2), 10)}${pad(r.min.toFixed(2), 8)}${pad(r.max.toFixed(2), 8)}${pad(`${r.rss.toFixed(0)} MiB`, 10)}${pad(f2(r.vsSkopeo), 10)}${pad(f2(r.vsCeiling), 11)}${pad(f2(r.vsBase), 8)}${f2(r.served)}`);
}

// The targets of issue 12, checked against this run's rows (only those the run measured).
const row = (scenario, tool, image = images[0].name) => rows.find((r) => r.image === image && r.scenario === scenario && r.tool === tool);
const targets = [];
const target = (what, r, value, ok) => { if (r) targets.push(`| ${what} | ${value} | ${ok ? 'met' : '**not met**'} |`); };
const big = images[0].name;
{ const r = row('pull → oci layout', 'ferry'); target(`${big} pull → oci ≤ 1.15× the curl ceiling`, r, f2(r?.vsCeiling), r?.vsCeiling <= 1.15); target(`${big} pull → oci ≤ 0.7× skopeo`, r, f2(r?.vsSkopeo), r?.vsSkopeo <= 0.7); }
for (const tool of ['curl + fdatasync', 'node floor']) { const r = row('pull → oci layout', tool); if (r) targets.push(`| for reference: ${big} ${tool} (${tool === 'node floor' ? 'durable, verified' : 'durable, not verified'}) ÷ the curl ceiling | ${f2(r.vsCeiling)} | |`); }
{ const r = row('pull → oci layout', 'ferry', '200MiB/40'); target('200MiB/40 pull → oci ≤ 0.8× skopeo', r, f2(r?.vsSkopeo), r?.vsSkopeo <= 0.8); }
{ const r = row('warm re-pull → new oci layout', 'ferry warm'); target(`${big} warm re-pull → new layout < 0.4 s, no blob bytes`, r, r && `${r.median.toFixed(2)} s, served ${f2(r.served)}`, r?.median < 0.4 && r?.served === 0); }
{ const r = row('warm re-pull → new docker-archive', 'ferry warm'); target(`${big} warm re-pull → new archive ≤ 0.6× the cold pull, no blob bytes`, r, r && `${f2(r.vsBase)}, served ${f2(r.served)}`, r?.vsBase <= 0.6 && r?.served === 0); }
for (const t of ['ferry → oci', 'ferry → docker-archive']) { const r = row('resume after SIGKILL at 50% (rerun)', t); target(`resume after SIGKILL at 50% (${t.slice(8)}) re-fetches ≤ 55%`, r, f2(r?.served), r?.served <= 0.55); }
{ const r = row(`${pullers} concurrent pulls, one cache`, `ferry ×${pullers}`); target(`${pullers} concurrent pullers: served ≤ 1.05× the image, wall ≤ 2× one pull`, r, r && `served ${f2(r.served)}, wall ${f2(r.vsBase)}×`, r?.served <= 1.05 && r?.vsBase <= 2); }
{ const r = row('export text4 → directory', 'ferry → dir'); target(`${big} text4 export → directory ≤ 0.6× umoci unpack (issue 13)`, r, f2(r?.vsBase), r?.vsBase <= 0.6); }
{ const fr = rows.filter((r) => r.scenario.startsWith('export') && r.tool.startsWith('ferry')); if (fr.length) { const worst = Math.max(...fr.map((r) => r.rss)); target(`${big} text4 export peak RSS < 150 MiB (issue 13)`, fr, `${worst.toFixed(0)} MiB`, worst < 150); } }
{ const fr = rows.filter((r) => r.tool.startsWith('ferry')); if (fr.length) { const worst = Math.max(...fr.map((r) => r.rss)); target('peak RSS < 150 MiB in every ferry case', fr, `${worst.toFixed(0)} MiB`, worst < 150); } }

const md = [
  '# ferry benchmark results',
  '',
  `Written by \`${cmdLine}\` (bench/run.mjs) at the end of its run; every run overwrites it.`,
  '',
  `- date: ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')} (run took ${((Date.now() - startedAt) / 60000).toFixed(1)} min)`,
  `- commit: ${commit}`,
  `- machine: ${machine}`,
  `- method: ${runs} runs per tool, interleaved with the order rotating every round, \`sync\` before every run; local docker-registry on 127.0.0.1 (export: an OCI layout on local disk); cold ferry runs ${!hasCache ? 'have no cache (this ferry has no cache flags)' : coldMode === 'off' ? 'pass --no-cache' : 'each get a new empty --cache-dir'}`,
  '- columns: wall seconds (median, min, max); peak RSS is the largest of any run (GNU time); × skopeo, × ceiling (parallel curl: no hashing, no fsync) and × base divide medians; served is the most blob bytes the registry served to one run (all pullers together for the concurrent scenario), as a fraction of the image\'s blob bytes, from the registry\'s own log',
  '',
  '| image | scenario | tool | median s | min s | max s | peak RSS MiB | × skopeo | × ceiling | × base | served |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.image} | ${r.scenario} | ${r.tool} | ${r.median.toFixed(2)} | ${r.min.toFixed(2)} | ${r.max.toFixed(2)} | ${r.rss.toFixed(0)} | ${f2(r.vsSkopeo)} | ${f2(r.vsCeiling)} | ${f2(r.vsBase)} | ${f2(r.served)} |`),
  '',
  ...[...new Set(rows.filter((r) => r.note).map((r) => `- ${r.image}, ${r.scenario}: ${r.note}`))],
  '',
  ...(targets.length ? ['## Targets (issues 12, 13)', '', '| target | this run | |', '|---|---|---|', ...targets, ''] : []),
].join('\n');
writeFileSync(resultsFile, md);
process.stderr.write(`bench: wrote ${resultsFile}\n`);
if (argv.includes('--json')) console.log(JSON.stringify(rows));
