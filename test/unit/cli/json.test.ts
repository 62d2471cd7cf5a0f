/**
 * The CLI's JSON pieces in-process: the error document (redacted), the run's distinct blob
 * counts, NDJSON progress events, what counts as CI, and run()'s --json failure output.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import type { CliIO } from '../../../src/cli/io.js';
import { BlobTally, errorJson } from '../../../src/cli/output/json.js';
import { jsonEvent } from '../../../src/cli/output/status.js';
import { isCI } from '../../../src/cli/runtime.js';
import { FerryError } from '../../../src/errors.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';

const d = (n: number): Descriptor => ({ mediaType: 'application/octet-stream', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: n * 10 });

function memoryIO(): CliIO & { out: () => string; err: () => string } {
  const o = new PassThrough();
  const e = new PassThrough();
  let out = '';
  let err = '';
  o.on('data', (c: Buffer) => (out += c.toString()));
  e.on('data', (c: Buffer) => (err += c.toString()));
  return { stdout: o, stderr: e, stdin: new PassThrough(), env: {}, out: () => out, err: () => err };
}

describe('cli JSON', () => {
  it('errorJson: code, message, hint (null when none) and exitCode; secrets redacted', () => {
    const e = new FerryError('E_UNAUTHORIZED', 'registry said: Bearer abcdefghijklmnop1234 is invalid', { hint: 'helper printed {"secret":"hunter2-hunter2"}' });
    expect(errorJson('pull', e)).toEqual({
      schemaVersion: 1, command: 'pull',
      error: { code: 'E_UNAUTHORIZED', message: 'registry said: Bearer *** is invalid', hint: 'helper printed {"secret":"***"}', exitCode: 3 },
    });
    expect(errorJson(null, new FerryError('E_IO', 'x')).error.hint).toBeNull();
    expect(errorJson('copy', new FerryError('E_INTERRUPTED', 'x'), 143).error.exitCode).toBe(143);
  });

  it('BlobTally counts each blob of the run once, from the engine events', () => {
    const t = new BlobTally();
    t.onEvent({ type: 'plan', blobs: 3, bytes: 60, manifests: 2 });
    t.onEvent({ type: 'blob-skip', descriptor: d(1) });
    t.onEvent({ type: 'blob-start', descriptor: d(2) });
    t.onEvent({ type: 'blob-progress', descriptor: d(2), delta: 20 });
    t.onEvent({ type: 'blob-done', descriptor: d(2), ms: 5 });
    t.onEvent({ type: 'blob-mounted', descriptor: d(3), from: 'other/repo' });
    expect(t.counts).toEqual({ total: 3, skipped: 1, mounted: 1, transferred: 1, bytes: 60, transferredBytes: 20 });
  });

  it('progress events: blob events carry digest, size and bytes', () => {
    expect(jsonEvent({ type: 'blob-start', descriptor: d(2) })).toEqual({ event: 'blob-start', digest: d(2).digest, size: 20, bytes: 0 });
    expect(jsonEvent({ type: 'blob-done', descriptor: d(2), ms: 5.4 })).toEqual({ event: 'blob-done', digest: d(2).digest, size: 20, bytes: 20, ms: 5 });
    expect(jsonEvent({ type: 'blob-mounted', descriptor: d(3), from: 'r' })).toMatchObject({ bytes: 0, size: 30 });
  });

  it.each([
    [undefined, false], ['', false], ['false', false], ['FALSE', false], ['0', false],
    ['true', true], ['1', true], ['yes', true], ['woodpecker', true],
  ])('CI=%j → CI is %s', (v, want) => {
    expect(isCI(v === undefined ? {} : { CI: v })).toBe(want);
  });

  it('run() with --json: a usage error prints the error document on stdout and the message on stderr', async () => {
    const io = memoryIO();
    expect(await run(['node', 'ferry', 'pull', '--json', 'alpine'], io)).toBe(2);
    expect(JSON.parse(io.out())).toEqual({
      schemaVersion: 1, command: 'pull',
      error: { code: 'E_USAGE', message: 'pull needs a destination', hint: expect.stringContaining('-o FILE') as unknown, exitCode: 2 },
    });
    expect(io.err()).toMatch(/^ferry: pull needs a destination$/m);
    const plain = memoryIO();
    expect(await run(['node', 'ferry', 'pull', 'alpine'], plain)).toBe(2);
    expect(plain.out()).toBe('');
  });

  it('run(): a write error on stdout (a closed pipe) gives 141 and nothing more', async () => {
    const io = memoryIO();
    const code = run(['node', 'ferry', '--help'], io);
    (io.stdout as PassThrough).emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(await code).toBe(141);
  });
});
