import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const BUILT = pathToFileURL(resolve(import.meta.dirname, '../../../dist/util/exit-cleanup.js')).href;
const root = mkdtempSync(join(tmpdir(), 'ferry-exit-cleanup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('exitCleanup', () => {
  it('a process that exits before close() (process.exit, as the second SIGINT does) removes the temp files and directory trees still registered, and keeps what was released', () => {
    const tmpFile = join(root, 'x.tar.partial');
    const tmpDir = join(root, 'spool');
    const kept = join(root, 'renamed.tar');
    writeFileSync(tmpFile, 'half an archive');
    mkdirSync(join(tmpDir, 'deep'), { recursive: true });
    writeFileSync(join(tmpDir, 'deep', 'blob'), 'x');
    writeFileSync(kept, 'a finished archive');
    const script = `
      const { exitCleanup } = await import(${JSON.stringify(BUILT)});
      exitCleanup.add(${JSON.stringify(tmpFile)});
      exitCleanup.add(${JSON.stringify(tmpDir)});
      exitCleanup.add(${JSON.stringify(kept)});
      exitCleanup.delete(${JSON.stringify(kept)}); // renamed into place: no longer temp output
      exitCleanup.add(${JSON.stringify(join(root, 'never-created'))}); // already gone: no error
      process.exit(130);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(130);
    expect(r.stderr).toBe('');
    expect(existsSync(tmpFile)).toBe(false);
    expect(existsSync(tmpDir)).toBe(false);
    expect(existsSync(kept)).toBe(true);
  });
});
