#!/usr/bin/env node
// npm run bench — ferry against skopeo (and a parallel-curl ceiling for pulls) on local
// docker-registry instances on loopback, all in one run, printing medians, ratios and peak RSS.
// Options: --runs N (5) · --mib N (1024) · --layers N (8) · --small (also 200 MiB / 40 layers)
//          --only a,b (scenario names: pull-oci, pull-docker-archive, pull-oci-archive, push,
//          copy-cross, copy-same, pull-mirror) · --json (machine-readable rows) · --keep (leave temp dir)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { has, makeImage, median, startRegistry, timed } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : def; };
const runs = Number(opt('runs', 5));
const only = opt('only', '') ? new Set(opt('only', '').split(',')) : undefined;
const want = (s) => !only || only.has(s);
const images = [
  { name: `${opt('mib', 1024)}MiB/${opt('layers', 8)}`, mib: Number(opt('mib', 1024)), layers: Number(opt('layers', 8)) },
  ...(argv.includes('--small') ? [{ name: '200MiB/40', mib: 200, layers: 40 }] : []),
];
for (const bin of ['docker-registry', 'skopeo', 'curl']) {
  if (!has(bin)) { console.error(`bench: ${bin} is required (apt-get install -y ${bin})`); process.exit(2); }
}

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
const stops = [];
process.on('exit', () => { for (const s of stops) s(); if (!argv.includes('--keep')) rmSync(work, { recursive: true, force: true }); });
process.on('SIGINT', () => process.exit(130));
const fresh = async (name, o = {}) => {
  const dir = mkdtempSync(join(work, `${name}-`));
  const r = await startRegistry(dir, o);
  const stop = () => { r.stop(); rmSync(dir, { recursive: true, force: true }); };
  stops.push(stop);
  return { ...r, stop };
};
const ferry = (...a) => timed(process.execPath, [join(root, 'bin', 'ferry'), '--quiet', '--progress', 'none', ...a]);
const sk = (...a) => timed('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ...a]);
let n = 0;
const out = (tag) => join(work, `out-${tag}-${n++}`);

const rows = [];
function record(image, scenario, results, ceilingName) {
  const med = Object.fromEntries(Object.entries(results).map(([k, rs]) => [k, median(rs.map((r) => r.secs))]));
  const skName = Object.keys(results).find((k) => k.startsWith('skopeo'));
  for (const [tool, rs] of Object.entries(results)) {
    rows.push({
      image, scenario, tool, median: med[tool], min: Math.min(...rs.map((r) => r.secs)), rss: Math.max(...rs.map((r) => r.rssMiB)),
      vsSkopeo: skName ? med[tool] / med[skName] : NaN, vsCeiling: ceilingName ? med[tool] / med[ceilingName] : NaN,
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

const regA = await fresh('a');
for (const img of images) {
  const layout = join(work, `src-${img.layers}`);
  process.stderr.write(`bench: generating ${img.name}…\n`);
  const built = await makeImage(layout, { totalMiB: img.mib, layers: img.layers, tag: 'bench' });
  const repo = `bench/img${img.layers}`;
  sk(`oci:${layout}:bench`, `docker://${regA.host}/${repo}:bench`);
  const ref = `${regA.host}/${repo}:bench`;
  const blobs = [built.config, ...built.layers];
  const rmOut = (p) => () => rmSync(p, { recursive: true, force: true });

  if (want('pull-oci')) {
    record(img.name, 'pull → oci layout', await rounds({
      'ferry': () => { const o = out('f'); const r = ferry('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; },
      'skopeo': () => { const o = out('s'); const r = sk(`docker://${ref}`, `oci:${o}:bench`); rmOut(o)(); return r; },
      'curl ceiling': () => { const o = out('c'); const r = timed('curl', ['-sSf', '--create-dirs', '-Z', '--parallel-max', String(Math.min(8, blobs.length)), ...blobs.flatMap((b) => [`http://${regA.host}/v2/${repo}/blobs/${b.digest}`, '-o', join(o, b.digest.slice(7))])]); rmOut(o)(); return r; },
    }), 'curl ceiling');
  }
  for (const fmt of ['docker-archive', 'oci-archive']) {
    if (!want(`pull-${fmt}`)) continue;
    record(img.name, `pull → ${fmt}`, await rounds({
      'ferry': () => { const o = `${out('f')}.tar`; const r = ferry('pull', ref, '-o', o, '--format', fmt); rmOut(o)(); return r; },
      'skopeo': () => { const o = `${out('s')}.tar`; const r = sk(`docker://${ref}`, `${fmt}:${o}:${fmt === 'docker-archive' ? 'bench/img:bench' : 'bench'}`); rmOut(o)(); return r; },
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
    const viaMirror = (...a) => timed(process.execPath, [join(root, 'bin', 'ferry'), '--quiet', '--progress', 'none', ...a], { env: { ...process.env, CONTAINERS_REGISTRIES_CONF: conf } });
    record(img.name, 'pull → oci via warm mirror', await rounds({
      'ferry': () => { const o = out('f'); const r = viaMirror('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; },
      'ferry direct': () => { const o = out('d'); const r = ferry('pull', ref, `oci:${o}:bench`); rmOut(o)(); return r; },
      'skopeo': () => { const o = out('s'); const r = timed('skopeo', ['--insecure-policy', '--registries-conf', conf, 'copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${o}:bench`]); rmOut(o)(); return r; },
    }));
    cache.stop();
  }
  rmSync(layout, { recursive: true, force: true });
}

for (const s of stops.splice(0)) s(); // registries are child processes: stop them so we exit

const pad = (s, w) => String(s).padEnd(w);
console.log(`\nferry bench — ${runs} runs each (medians), local docker-registry on 127.0.0.1, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
console.log(`${pad('image', 11)}${pad('scenario', 32)}${pad('tool', 14)}${pad('median s', 10)}${pad('min s', 8)}${pad('peak RSS', 10)}${pad('× skopeo', 10)}× ceiling`);
for (const r of rows) {
  console.log(`${pad(r.image, 11)}${pad(r.scenario, 32)}${pad(r.tool, 14)}${pad(r.median.toFixed(2), 10)}${pad(r.min.toFixed(2), 8)}${pad(`${r.rss.toFixed(0)} MiB`, 10)}${pad(Number.isNaN(r.vsSkopeo) ? '' : r.vsSkopeo.toFixed(2), 10)}${Number.isNaN(r.vsCeiling) ? '' : r.vsCeiling.toFixed(2)}`);
}
if (argv.includes('--json')) console.log(JSON.stringify(rows));
