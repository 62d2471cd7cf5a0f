import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeTarHeader, paddedSize, TAR_BLOCK } from '../../../src/archive/tar-header.js';
import { layoutTar } from '../../../src/archive/tar-layout.js';
import { blobEntryName, dockerRepoTag } from '../../../src/archive/image-archive.js';
import { OciArchiveDestination } from '../../../src/transports/archive-destination.js';
import type { Digest } from '../../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST, rawHeaders, readTar, runDestination } from './writer-support.js';

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(h.subarray(148, 156).toString('ascii').replace(/[\0 ]+$/, ''), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === stored;
}

async function parseHeaders(buf: Buffer): Promise<tar.Header[]> {
  const extract = tar.extract();
  Readable.from([buf]).pipe(extract);
  const out: tar.Header[] = [];
  for await (const e of extract) {
    out.push(e.header);
    e.resume();
  }
  return out;
}

describe('tar headers', () => {
  it('encodes a ustar file header with a valid checksum and fixed metadata', async () => {
    const h = encodeTarHeader({ name: 'blobs/sha256/' + 'a'.repeat(64), type: 'file', size: 1234 });
    expect(h.length).toBe(TAR_BLOCK);
    expect(checksumOk(h)).toBe(true);
    expect(h.subarray(257, 265).toString('latin1')).toBe('ustar\u000000');
    const [p] = await parseHeaders(Buffer.concat([h, Buffer.alloc(paddedSize(1234)), Buffer.alloc(1024)]));
    expect(p).toMatchObject({ name: 'blobs/sha256/' + 'a'.repeat(64), type: 'file', size: 1234, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '' });
    expect(p!.mtime!.getTime()).toBe(0);
  });

  it('directories get a trailing slash, mode 0755 and typeflag 5', () => {
    const h = encodeTarHeader({ name: 'blobs', type: 'directory', size: 0 });
    expect(h.subarray(0, 6).toString()).toBe('blobs/');
    expect(String.fromCharCode(h[156]!)).toBe('5');
    expect(h.subarray(100, 107).toString()).toBe('000755 ');
  });

  it('splits a long name into ustar prefix/name, and falls back to pax for a name that cannot be split', async () => {
    const long = `${'d'.repeat(60)}/${'e'.repeat(90)}`;
    const split = encodeTarHeader({ name: long, type: 'file', size: 0 });
    expect(split.length).toBe(TAR_BLOCK);
    const sha512 = `blobs/sha512/${'f'.repeat(128)}`;
    const pax = encodeTarHeader({ name: sha512, type: 'file', size: 3 });
    expect(pax.length).toBe(3 * TAR_BLOCK);
    expect(String.fromCharCode(pax[156]!)).toBe('x');
    expect(checksumOk(pax.subarray(0, 512)) && checksumOk(pax.subarray(1024))).toBe(true);
    const buf = Buffer.concat([split, pax, Buffer.from('abc'), Buffer.alloc(509), Buffer.alloc(1024)]);
    const hs = await parseHeaders(buf);
    expect(hs.map((h) => [h.name, h.size])).toEqual([[long, 0], [sha512, 3]]);
  });

  it('stores a size of 8 GiB or more base-256 in the size field, as tar-stream does', async () => {
    const size = 9 * 1024 ** 3 + 5;
    const h = encodeTarHeader({ name: 'big', type: 'file', size });
    expect(h.length).toBe(TAR_BLOCK);
    expect(h[124]).toBe(0x80);
    expect(h.readUIntBE(130, 6)).toBe(size);
    expect(checksumOk(h)).toBe(true);
  });

  it('every header is byte for byte what tar-stream pack emits for the same entry (the stream writer uses pack)', async () => {
    const entries = [
      { name: 'blobs', type: 'directory' as const, size: 0 },
      { name: 'blobs/sha256/' + 'a'.repeat(64), type: 'file' as const, size: 1234 },
      { name: `${'d'.repeat(60)}/${'e'.repeat(90)}`, type: 'file' as const, size: 0 },
      { name: `${'p'.repeat(50)}/${'q'.repeat(50)}/${'r'.repeat(60)}`, type: 'file' as const, size: 7 },
      { name: `blobs/sha512/${'f'.repeat(128)}`, type: 'file' as const, size: 3 },
      { name: 'nön-ascii', type: 'file' as const, size: 1 },
      { name: 'y'.repeat(995), type: 'file' as const, size: 0 },
      { name: 'big', type: 'file' as const, size: 9 * 1024 ** 3 + 5 },
    ];
    for (const e of entries) {
      const ours = encodeTarHeader(e);
      const pack = tar.pack();
      const sink = pack.entry({ name: e.type === 'directory' ? `${e.name}/` : e.name, type: e.type, size: e.size, mode: e.type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: new Date(0) });
      sink.on('error', () => {});
      const got: Buffer[] = [];
      let n = 0;
      for await (const c of pack as AsyncIterable<Buffer>) {
        got.push(c);
        n += c.length;
        if (n >= ours.length) break;
      }
      pack.destroy();
      expect(Buffer.concat(got).subarray(0, ours.length).equals(ours), e.name.slice(0, 40)).toBe(true);
    }
  });

  it('pax record lengths count themselves, across a digit boundary', () => {
    for (let n = 985; n < 1000; n++) {
      const h = encodeTarHeader({ name: 'y'.repeat(n), type: 'file', size: 0 });
      const rec = h.subarray(512, h.length - 512).toString('utf8').replace(/\0+$/, '');
      expect(rec).toBe(`${parseInt(rec, 10)} path=${'y'.repeat(n)}\n`);
      expect(Buffer.byteLength(rec)).toBe(parseInt(rec, 10));
    }
  });

  it('rejects absolute, ./ and .. names', () => {
    for (const name of ['/etc/passwd', './x', 'a/../b']) expect(() => encodeTarHeader({ name, type: 'file', size: 0 })).toThrow();
  });
});

describe('tar layout', () => {
  it('computes header and data offsets; the zero-filled file plus headers and data is a valid tar', async () => {
    const datas = [randomBytes(0), randomBytes(1), randomBytes(512), randomBytes(513), randomBytes(70_000)];
    const layout = layoutTar([
      { name: 'dir/', type: 'directory' as const, size: 0 },
      ...datas.map((d, i) => ({ name: `dir/f${i}`, type: 'file' as const, size: d.length })),
    ]);
    let expectedSize = 512;
    for (const d of datas) expectedSize += 512 + paddedSize(d.length);
    expect(layout.size).toBe(expectedSize + 1024);
    expect(layout.trailerOffset).toBe(expectedSize);
    const file = Buffer.alloc(layout.size);
    layout.entries.forEach((l, i) => {
      l.header.copy(file, l.headerOffset);
      if (i > 0) datas[i - 1]!.copy(file, l.dataOffset);
      expect(l.dataOffset % 512).toBe(0);
    });
    const extract = tar.extract();
    Readable.from([file]).pipe(extract);
    const got: Array<[string, Buffer]> = [];
    for await (const e of extract) {
      const parts: Buffer[] = [];
      for await (const c of e) parts.push(c as Buffer);
      got.push([e.header.name, Buffer.concat(parts)]);
    }
    expect(got.map(([n]) => n)).toEqual(['dir/', ...datas.map((_, i) => `dir/f${i}`)]);
    got.slice(1).forEach(([, b], i) => expect(b.equals(datas[i]!)).toBe(true));
  });

  it('rejects duplicate names', () => {
    expect(() => layoutTar([{ name: 'a', type: 'file', size: 0 }, { name: 'a', type: 'file', size: 1 }])).toThrow(/duplicate/);
  });
});

describe('archive naming helpers', () => {
  it('blob entry names', () => {
    expect(blobEntryName(`sha256:${'0'.repeat(64)}`)).toBe(`blobs/sha256/${'0'.repeat(64)}`);
    expect(() => blobEntryName('sha256:../../etc')).toThrow();
    expect(() => blobEntryName(`md5:${'0'.repeat(32)}`)).toThrow(/not supported/);
  });

  it('docker RepoTags use the familiar name:tag form', () => {
    expect(dockerRepoTag('docker.io/library/alpine:3.20')?.repoTag).toBe('alpine:3.20');
    expect(dockerRepoTag('docker.io/user/app:1')?.repoTag).toBe('user/app:1');
    expect(dockerRepoTag('localhost:5000/app:v1')).toEqual({ repoTag: 'localhost:5000/app:v1', repository: 'localhost:5000/app', tag: 'v1' });
    expect(dockerRepoTag(`ghcr.io/a/b:t@sha256:${'1'.repeat(64)}`)?.repoTag).toBe('ghcr.io/a/b:t');
    expect(dockerRepoTag(`ghcr.io/a/b@sha256:${'1'.repeat(64)}`)).toBeUndefined();
    expect(dockerRepoTag('Not A Ref')).toBeUndefined();
    expect(dockerRepoTag(undefined)).toBeUndefined();
  });
});

describe('sha512 blobs', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'ferry-archive-tar-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('are stored under blobs/sha512/ with a pax path, verified with sha512', async () => {
    const layer = randomBytes(10_000);
    const ld = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha512:${createHash('sha512').update(layer).digest('hex')}` as Digest, size: layer.length };
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const cd = { mediaType: OCI_CONFIG, digest: `sha256:${createHash('sha256').update(config).digest('hex')}` as Digest, size: config.length };
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cd, layers: [ld] }));
    const md = { mediaType: OCI_MANIFEST, digest: `sha256:${createHash('sha256').update(manifest).digest('hex')}` as Digest, size: manifest.length };
    const plan = { images: [{ root: md, names: { refName: 'x' } }], manifests: [{ descriptor: md, bytes: manifest }], blobs: [ld, cd] };
    const target = join(dir, 'o.tar');
    await runDestination(new OciArchiveDestination(target), plan, new Map([[ld.digest, layer], [cd.digest, config]]));
    const entries = await readTar(target);
    expect(entries.map((e) => e.name)).toEqual([
      'blobs/', 'blobs/sha256/', 'blobs/sha512/', 'oci-layout', `blobs/sha512/${ld.digest.slice(7)}`, `blobs/sha256/${cd.digest.slice(7)}`, `blobs/sha256/${md.digest.slice(7)}`, 'index.json',
    ]);
    expect(entries[4]!.data.equals(layer)).toBe(true);
    expect(rawHeaders(readFileSync(target)).filter((h) => h.typeflag === 'x')).toHaveLength(1);
  });
});
