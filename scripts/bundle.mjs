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
//
// undici's part ferry uses (Agent, the request API, buildConnector; ProxyAgent on first use) is
// packed separately into dist/undici-lean.cjs, which http/undici-agent.ts loads when it exists:
// one file read and compiled instead of ~30 resolved, read and compiled one by one at every start
// (profiled: 0.18 s of a 0.64 s `ferry inspect` was loading undici, most of it the CommonJS
// loader; see docs/performance.md for the A/B). ProxyAgent stays lazy: the packed file keeps
// each module behind its own init function.
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

await build({
  stdin: {
    contents: [
      "exports.Agent = require('undici/lib/dispatcher/agent.js');",
      "exports.Dispatcher = require('undici/lib/dispatcher/dispatcher.js');",
      "exports.api = require('undici/lib/api/index.js');",
      "exports.buildConnector = require('undici/lib/core/connect.js');",
      "Object.defineProperty(exports, 'ProxyAgent', { enumerable: true, get: () => require('undici/lib/dispatcher/proxy-agent.js') });",
      "Object.defineProperty(exports, 'Pool', { enumerable: true, get: () => require('undici/lib/dispatcher/pool.js') });",
    ].join('\n'),
    resolveDir: root,
    sourcefile: 'undici-lean-entry.cjs',
    loader: 'js',
  },
  outfile: join(root, 'dist', 'undici-lean.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20.18',
  minify: true,
  keepNames: true, // class names (Agent, ProxyAgent) as undici's own
  logLevel: 'warning',
});
