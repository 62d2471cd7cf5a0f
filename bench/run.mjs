#!/usr/bin/env node
// npm run bench — ferry against skopeo and a parallel-curl ceiling, on the same local registry,
// in one run. Options: --runs N (default 5), --mib N (default 1024), --layers N (default 8),
// --scenario NAME (pull-oci; may repeat), --keep (leave the temp dir).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { has, makeImage, median, startRegistry, timed } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : def; };
const runs = Number(opt('runs', 5));
const images = [
  { name: `${opt('mib', 1024)}MiB/${opt('layers', 8)}`, mib: Number(opt('mib', 1024)), layers: Number(opt('layers', 8)) },
  ...(argv.includes('--small') ? [{ name: '200MiB/40', mib: 200, layers: 40 }] : []),
];

for (const bin of ['docker-registry', 'skopeo', 'curl']) {
  if (!has(bin)) { console.error(`bench: ${bin} is required (apt-get install -y ${bin})`); process.exit(2); }
}

const work = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
const cleanup = () => { if (!argv.includes('--keep')) rmSync(work, { recursive: true, force: true }); };
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const reg = await startRegistry(work);
const ferry = [join(root, 'bin', 'ferry')];
const rows = [];

for (const img of images) {
  const layout = join(work, `src-${img.layers}`);
  process.stderr.write(`bench: generating ${img.name} (${img.mib} MiB in ${img.layers} layers)…\n`);
  const built = await makeImage(layout, { totalMiB: img.mib, layers: img.layers, tag: 'bench' });
  const repo = `bench/img${img.layers}`;
  timed('skopeo', ['copy', '--insecure-policy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${reg.host}/${repo}:bench`]);
  const ref = `${reg.host}/${repo}:bench`;
  const blobs = [built.config, ...built.layers];
  const totalBytes = blobs.reduce((a, b) => a + b.size, 0);

  const tools = {
    'ferry pull oci:': (out) => timed(process.execPath, [...ferry, 'pull', '--progress', 'none', '--quiet', ref, `oci:${out}:bench`]),
    'skopeo copy oci:': (out) => timed('skopeo', ['copy', '--insecure-policy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${out}:bench`]),
    'curl (parallel)': (out) => timed('curl', ['-sSf', '--create-dirs', '-Z', '--parallel-max', String(Math.min(8, blobs.length)),
      ...blobs.flatMap((b) => [`http://${reg.host}/v2/${repo}/blobs/${b.digest}`, '-o', join(out, b.digest.slice(7))])]),
  };
  const results = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of Object.entries(tools)) {
      const out = join(work, `out-${i}-${name.split(' ')[0]}`);
      const r = fn(out);
      results[name].push(r);
      rmSync(out, { recursive: true, force: true });
      process.stderr.write(`bench: ${img.name} run ${i + 1}/${runs} ${name}: ${r.secs.toFixed(2)}s, ${r.rssMiB.toFixed(0)} MiB RSS\n`);
    }
  }
  const sk = median(results['skopeo copy oci:'].map((r) => r.secs));
  const cu = median(results['curl (parallel)'].map((r) => r.secs));
  for (const [name, rs] of Object.entries(results)) {
    const secs = median(rs.map((r) => r.secs));
    rows.push({ image: img.name, tool: name, median: secs, min: Math.min(...rs.map((r) => r.secs)), rss: Math.max(...rs.map((r) => r.rssMiB)), mibps: totalBytes / 1048576 / secs, vsSkopeo: secs / sk, vsCurl: secs / cu });
  }
}
reg.stop();

const pad = (s, n) => String(s).padEnd(n);
console.log(`\nferry bench — ${runs} runs each, medians; local docker-registry on loopback; node ${process.version}`);
console.log(`${pad('image', 12)}${pad('tool', 20)}${pad('median s', 10)}${pad('min s', 8)}${pad('MiB/s', 8)}${pad('peak RSS', 10)}${pad('× skopeo', 10)}× curl`);
for (const r of rows) {
  console.log(`${pad(r.image, 12)}${pad(r.tool, 20)}${pad(r.median.toFixed(2), 10)}${pad(r.min.toFixed(2), 8)}${pad(r.mibps.toFixed(0), 8)}${pad(`${r.rss.toFixed(0)} MiB`, 10)}${pad(r.vsSkopeo.toFixed(2), 10)}${r.vsCurl.toFixed(2)}`);
}
if (argv.includes('--json')) console.log(JSON.stringify(rows));
