import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import { DockerArchiveDestination } from '../../../src/transports/archive-destination.js';
import { writeVerifiedFile } from '../../../src/util/verified-file.js';
import { WRITE_BEHIND_EVERY, WriteBehind } from '../../../src/util/write-behind.js';
import { image, planFor, readTar, runDestination } from '../archive/writer-support.js';

/** A file handle whose datasync calls wait until the test settles them. */
function fakeHandle() {
  const calls: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const fh = {
    datasync: () => new Promise<void>((resolve, reject) => { calls.push({ resolve, reject }); }),
  } as unknown as FileHandle;
  return { fh, calls };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('WriteBehind', () => {
  it('starts a datasync once `every` bytes were written, and no second one while it runs', async () => {
    const { fh, calls } = fakeHandle();
    const wb = new WriteBehind(fh, 100);
    wb.wrote(60);
    expect(calls).toHaveLength(0);
    wb.wrote(40);
    expect(calls).toHaveLength(1);
    wb.wrote(500); // more than `every` again, but one is in flight
    expect(calls).toHaveLength(1);
    calls[0]!.resolve();
    await tick();
    expect(calls).toHaveLength(2); // the 500 bytes written meanwhile get their own
    calls[1]!.resolve();
    await tick();
    wb.wrote(99);
    expect(calls).toHaveLength(2);
    await wb.finish();
    wb.wrote(1000); // finished: no more early syncs
    expect(calls).toHaveLength(2);
  });

  it('finish() waits for the datasync in flight', async () => {
    const { fh, calls } = fakeHandle();
    const wb = new WriteBehind(fh, 10);
    wb.wrote(10);
    let finished = false;
    const f = wb.finish().then(() => { finished = true; });
    await tick();
    expect(finished).toBe(false);
    calls[0]!.resolve();
    await f;
    expect(finished).toBe(true);
  });

  it('keeps the first early-sync error and throws it from finish() (Linux reports it only once)', async () => {
    const { fh, calls } = fakeHandle();
    const wb = new WriteBehind(fh, 10);
    wb.wrote(10);
    calls[0]!.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await tick();
    wb.wrote(100); // no more syncs after a failure
    expect(calls).toHaveLength(1);
    await expect(wb.finish()).rejects.toMatchObject({ code: 'EIO' });
  });

  it('at most two early syncs run at once across files, so writes keep pool threads', async () => {
    const files = [fakeHandle(), fakeHandle(), fakeHandle()];
    const wbs = files.map((f) => new WriteBehind(f.fh, 10));
    for (const wb of wbs) wb.wrote(10);
    expect(files.map((f) => f.calls.length)).toEqual([1, 1, 0]);
    files[0]!.calls[0]!.resolve();
    await tick();
    wbs[2]!.wrote(1); // the waiting file starts on its next write once a slot is free
    expect(files[2]!.calls).toHaveLength(1);
    files[1]!.calls[0]!.resolve();
    files[2]!.calls[0]!.resolve();
    await Promise.all(wbs.map((wb) => wb.finish()));
  });
});

describe('write-behind in the writers (real files)', () => {
  let dir: string;
  let proto: FileHandle;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-write-behind-'));
    const probe = await open(join(dir, 'probe'), 'w');
    proto = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  const size = 2 * WRITE_BEHIND_EVERY + 12345;
  const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const chunked = (b: Buffer) => Readable.from((function* () { for (let i = 0; i < b.length; i += 1 << 20) yield b.subarray(i, i + (1 << 20)); })());

  it('a blob file gets early datasyncs while it streams, then its fsync', async () => {
    const datasync = vi.spyOn(proto, 'datasync');
    const sync = vi.spyOn(proto, 'sync');
    const data = randomBytes(size);
    const tmp = join(dir, 'blob.tmp');
    await writeVerifiedFile(tmp, { digest: sha(data), size }, async (offset) => chunked(data.subarray(offset)), { what: 'blob' });
    expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(1);
    expect(sync).toHaveBeenCalledTimes(1);
    expect(readFileSync(tmp).equals(data)).toBe(true);
  });

  it('an archive gets early datasyncs while its blobs stream', async () => {
    const datasync = vi.spyOn(proto, 'datasync');
    const img = image([randomBytes(size)]);
    const { plan, contents } = planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]);
    const out = join(dir, 'out.tar');
    await runDestination(new DockerArchiveDestination(out), plan, contents);
    expect(datasync.mock.calls.length).toBeGreaterThanOrEqual(1);
    const layer = (await readTar(out)).find((e) => e.name === `blobs/sha256/${img.layers[0]!.d.digest.slice(7)}`)!;
    expect(layer.data.equals(img.layers[0]!.bytes)).toBe(true);
  });

  it('an I/O error met only by an early datasync fails the archive: E_IO, nothing at the target, no temp file', async () => {
    let failed = false;
    vi.spyOn(proto, 'datasync').mockImplementation(async () => {
      if (!failed) {
        failed = true;
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
    });
    const img = image([randomBytes(size)]);
    const { plan, contents } = planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]);
    const out = join(dir, 'out.tar');
    await expect(runDestination(new DockerArchiveDestination(out), plan, contents)).rejects.toMatchObject({ code: 'E_IO', message: expect.stringContaining(out) });
    expect(failed).toBe(true);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f !== 'probe')).toEqual([]);
  });
});
