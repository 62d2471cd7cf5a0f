/**
 * The sequential archive writer (transports/archive-stream.ts through archive/tar-pack.ts), used
 * when the target is not a regular file: here a FIFO read concurrently. Same bytes as the
 * positional file writer; a failure stops the stream without a trailer; the spool dir goes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerArchiveDestination, OciArchiveDestination } from '../../../src/transports/archive-destination.js';
import { image, memReader, planFor, readTar, runDestination } from './writer-support.js';

let dir: string;
let spoolDir: string;
const savedTmp = process.env['TMPDIR'];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-archive-stream-'));
  spoolDir = join(dir, 'tmp');
  mkdirSync(spoolDir);
  process.env['TMPDIR'] = spoolDir; // os.tmpdir() follows it: the spools land here
});
afterEach(() => {
  if (savedTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = savedTmp;
  rmSync(dir, { recursive: true, force: true });
});

function fifo(name: string): string {
  const p = join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

/** Reads the FIFO to its end (or stops after `limit` bytes, closing its end early). */
function drain(path: string, limit = Infinity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const s = createReadStream(path);
    s.on('data', (c) => {
      parts.push(c as Buffer);
      n += c.length;
      if (n >= limit) {
        s.destroy();
        resolve(Buffer.concat(parts));
      }
    });
    s.on('end', () => resolve(Buffer.concat(parts)));
    s.on('error', reject);
  });
}

async function rejectionOf(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

const one = () => {
  const img = image([randomBytes(6 * 1024 * 1024 + 123), randomBytes(300_000), randomBytes(1), randomBytes(0), randomBytes(77_777)]);
  return { img, ...planFor([{ img, names: { refName: 'v1', repoTag: 'localhost:5000/app:v1' } }]) };
};

describe('archive streamed to a FIFO', () => {
  it('is byte-identical to the file output, blobs put concurrently in random order; the FIFO stays a FIFO', async () => {
    const { plan, contents } = one();
    const file = join(dir, 'file.tar');
    await runDestination(new DockerArchiveDestination(file), plan, contents);
    for (const make of [(p: string) => new DockerArchiveDestination(p), (p: string) => new OciArchiveDestination(p)]) {
      const p = fifo(`out-${Math.random().toString(36).slice(2)}`);
      const got = drain(p);
      const dst = make(p);
      await runDestination(dst, plan, contents, { concurrent: true, order: 'random' });
      expect(dst.mode).toBe('stream');
      expect(dst.replaced).toBe(false);
      const bytes = await got;
      if (dst.format === 'docker-archive') expect(bytes.equals(readFileSync(file))).toBe(true);
      else expect((await readTarBuffer(bytes)).map((e) => e.name)).toContain('index.json');
      expect(lstatSync(p).isFIFO()).toBe(true);
    }
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('a blob that fails verification stops the stream: no trailer, no index.json, spools removed', async () => {
    const { img, plan, contents } = one();
    const p = fifo('out');
    const got = drain(p);
    const small = img.layers[1]!; // second in tar order
    const bad = Buffer.from(small.bytes);
    bad[10] ^= 0xff;
    const e = await rejectionOf(runDestination(new DockerArchiveDestination(p), plan, contents, {
      reader: (d, bytes) => memReader(d.digest === small.d.digest ? bad : bytes),
    }));
    expect(e.code).toBe('E_DIGEST_MISMATCH');
    const bytes = await got;
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes(Buffer.from('index.json'))).toBe(false);
    expect(bytes.subarray(-1024).every((b) => b === 0) && bytes.length % 512 === 0).toBe(false);
    expect(bytes.includes(bad.subarray(0, 64))).toBe(false); // unverified bytes never left
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('the reader going away mid-stream fails the run with E_IO instead of hanging', async () => {
    const { plan, contents } = one();
    const p = fifo('out');
    const got = drain(p, 4096);
    const e = await rejectionOf(runDestination(new DockerArchiveDestination(p), plan, contents, { concurrent: true }));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/reader closed|EPIPE/);
    expect((await got).length).toBeGreaterThanOrEqual(4096);
    expect(readdirSync(spoolDir)).toEqual([]);
  });
});

describe('archive streamed to a FIFO, odd plans', () => {
  it('a blob that is also a planned manifest is "already there" (hasBlob), as for the file writer; same bytes', async () => {
    const { img, plan, contents } = one();
    plan.blobs.push(img.manifest.d); // e.g. an artifact whose layer is a manifest of the plan
    const drive = async (dst: DockerArchiveDestination): Promise<void> => {
      try {
        await dst.prepare(plan);
        for (const d of plan.blobs) {
          if (await dst.hasBlob(d)) continue;
          await dst.putBlob(d, memReader(contents.get(d.digest)!));
        }
        for (const m of plan.manifests) await dst.putManifest(m.bytes, m.descriptor, m.descriptor.digest === img.manifest.d.digest ? { root: plan.images[0]!.names } : {});
        await dst.commit();
      } finally {
        await dst.close();
      }
    };
    const file = join(dir, 'file.tar');
    await drive(new DockerArchiveDestination(file));
    const p = fifo('out');
    const got = drain(p);
    await drive(new DockerArchiveDestination(p));
    expect((await got).equals(readFileSync(file))).toBe(true);
  });
});

async function readTarBuffer(buf: Buffer) {
  const f = join(dir, `buf-${Math.random().toString(36).slice(2)}.tar`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(f, buf);
  return readTar(f);
}
