import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// Fresh processes on the built module: whether idle workers hold the exit up can only be seen
// from outside. (A script file, not `-e --input-type=module`: workers inherit execArgv.)
const hasher = fileURLToPath(new URL('../../../dist/util/file-hasher.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ferry-hasher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const run = (body: string) => {
  const script = join(dir, `t${++n}.mjs`);
  writeFileSync(script, `import { prewarmFileHashers, startFileHash } from ${JSON.stringify(hasher)};\n${body}`);
  return spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 10_000 });
};

describe('file-hasher: prewarmed workers', () => {
  it('do not keep the process alive when no job ever starts', () => {
    const r = run(`prewarmFileHashers(); console.log('ok');`);
    expect(r.signal, 'killed at the timeout: an idle worker kept the process alive').toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('ok');
  });

  it('take the first job (the digest is right) and let the process end after it', () => {
    const r = run(`
      import { createHash, randomBytes } from 'node:crypto';
      import { writeFileSync } from 'node:fs';
      import { join } from 'node:path';
      prewarmFileHashers();
      prewarmFileHashers(); // idempotent
      const data = randomBytes(5 << 20);
      const path = join(${JSON.stringify(dir)}, 'blob');
      writeFileSync(path, Buffer.concat([Buffer.alloc(100), data]));
      const job = startFileHash(path, 100, 'sha256');
      job.advance(1 << 20);
      const hex = await job.finish(data.length);
      console.log(hex === createHash('sha256').update(data).digest('hex') ? 'match' : 'mismatch ' + hex);`);
    expect(r.signal, 'killed at the timeout: a worker kept the process alive').toBeNull();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('match');
  });
});
