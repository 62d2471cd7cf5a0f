/**
 * The import rules that docs/architecture.md and the folder READMEs state, checked against the
 * code: which ferry folders each folder may import, which npm packages each may import, and that
 * every declared runtime dependency is really imported by src/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');
const ANYWHERE = new Set(['errors.ts', 'version.ts']);

/** Folder → the ferry folders (or single files, `folder/file.ts`) it may import. */
const MAY_IMPORT: Record<string, string[]> = {
  util: ['oci/digest.ts'],
  oci: [],
  ref: ['oci'],
  config: ['util', 'oci', 'ref'],
  auth: ['util', 'ref'],
  http: ['util', 'oci', 'ref', 'auth', 'config'],
  registry: ['http', 'auth', 'config', 'ref', 'oci', 'util'],
  archive: ['oci', 'ref', 'util'],
  store: ['oci', 'util'],
  export: ['oci', 'util'],
  transports: ['registry', 'archive', 'store', 'http/network-errors.ts', 'config', 'oci', 'ref', 'util'],
  copy: ['transports/types.ts', 'oci', 'util'],
  ops: ['copy', 'transports', 'store', 'export', 'registry', 'archive', 'http', 'auth', 'config', 'ref', 'oci', 'util'],
  cli: ['ops', 'copy', 'transports', 'store', 'registry', 'archive', 'http', 'auth', 'config', 'ref', 'oci', 'util'],
  testing: [],
};

/** npm package → the folders that may import it. */
const PACKAGE_OWNERS: Record<string, string[]> = {
  commander: ['cli'],
  ora: ['cli'],
  chalk: ['cli'],
  undici: ['http'],
  'tar-stream': ['archive', 'transports', 'export'],
  'smol-toml': ['config'],
  fzstd: ['ops'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|require\(\s*'([^']+)'\s*\)/g)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

const packageName = (spec: string) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

const files = sourceFiles(SRC).map((f) => ({ file: relative(SRC, f).split(sep).join('/'), imports: importsOf(f) }));

describe('layering', () => {
  it('every folder imports only the ferry folders its README allows', () => {
    const bad: string[] = [];
    for (const { file, imports } of files) {
      const folder = file.includes('/') ? file.split('/')[0]! : undefined;
      if (!folder) continue; // errors.ts, version.ts
      const allowed = MAY_IMPORT[folder];
      expect(allowed, `no layering rule for src/${folder}`).toBeDefined();
      for (const spec of imports.filter((s) => s.startsWith('.'))) {
        const target = relative(SRC, resolve(SRC, dirname(file), spec)).split(sep).join('/').replace(/\.js$/, '.ts');
        if (ANYWHERE.has(target)) continue;
        const tFolder = target.split('/')[0]!;
        if (tFolder === folder) continue;
        if (allowed!.includes(tFolder) || allowed!.includes(target)) continue;
        bad.push(`src/${file} imports src/${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('npm packages are imported only where the docs say, and every declared runtime dependency is imported', () => {
    const pkg = JSON.parse(readFileSync(join(SRC, '..', 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>;
    };
    const declared = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})];
    const used = new Map<string, Set<string>>();
    const bad: string[] = [];
    for (const { file, imports } of files) {
      const folder = file.split('/')[0]!;
      for (const spec of imports.filter((s) => !s.startsWith('.') && !s.startsWith('node:'))) {
        const name = packageName(spec);
        if (!used.has(name)) used.set(name, new Set());
        used.get(name)!.add(folder);
        if (!declared.includes(name)) bad.push(`src/${file} imports ${name}, which package.json does not declare`);
        else if (PACKAGE_OWNERS[name] && !PACKAGE_OWNERS[name]!.includes(folder)) bad.push(`src/${file} imports ${name} (only ${PACKAGE_OWNERS[name]!.join(', ')} may)`);
      }
    }
    // A package loaded by name at run time (an optional one, e.g. the OS keychain module) counts
    // as used where src/ names it in a string.
    const named = (d: string) => files.some(({ file }) => readFileSync(join(SRC, file), 'utf8').includes(`'${d}'`));
    for (const d of declared) if (!used.has(d) && !named(d)) bad.push(`${d} is declared in package.json but src/ never imports it`);
    expect(bad).toEqual([]);
  });
});
