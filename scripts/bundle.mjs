#!/usr/bin/env node
// Bundles the compiled CLI (dist/cli/main.js, from tsc) into one ESM file, dist/ferry.mjs, which
// bin/ferry loads. One file instead of ~90 modules plus commander, chalk and ora saves node the
// module resolution and most of the compiling at every start: `ferry --version` 0.14 → 0.10 s,
// `ferry inspect` 0.19 → 0.15 s (10 runs each, 2-core VM). Minified, V8 parses 250 KB instead of
// 490 KB: another 10 ms (`--version` 98 → 88 ms, 20 runs). Stack traces stay readable: with
// --debug, bin/ferry turns on source maps, which point back at src/*.ts. tsc stays the type
// checker and still emits dist/ for the library entry and the tests; this step only packs it.
//
// Left outside the bundle: undici (ferry loads its Agent file by path, see http/undici-agent.ts)
// and keytar (an optional native module, loaded lazily when present).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [join(root, 'dist', 'cli', 'main.js')],
  outfile: join(root, 'dist', 'ferry.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.18',
  external: ['undici', 'undici/*', 'keytar'],
  // Bundled CommonJS (commander) calls require() for node built-ins.
  banner: { js: "import { createRequire as __ferryCreateRequire } from 'node:module';\nconst require = __ferryCreateRequire(import.meta.url);" },
  minify: true,
  sourcemap: 'linked',
  logLevel: 'warning',
});
