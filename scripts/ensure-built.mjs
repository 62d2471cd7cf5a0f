#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies when node_modules is missing or older than
// package.json, and compiles src/ when dist/ is missing or older than any source file.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0);

const stamp = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(join(root, 'node_modules')) || mtime(stamp) < mtime(join(root, 'package.json'))) {
  process.stderr.write('ferry: installing dependencies…\n');
  run(npm, [existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install', '--no-audit', '--no-fund']);
}
// dist/ferry.mjs (the bundle bin/ferry loads) is written last, so it marks a complete build.
const marker = join(root, 'dist', 'ferry.mjs');
const inputs = [newest(join(root, 'src')), mtime(join(root, 'tsconfig.json')), mtime(join(root, 'scripts', 'bundle.mjs')), mtime(join(root, 'package.json'))];
if (mtime(marker) < Math.max(...inputs)) {
  process.stderr.write('ferry: building…\n');
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  run(process.execPath, [join(root, 'scripts', 'bundle.mjs')]);
}
