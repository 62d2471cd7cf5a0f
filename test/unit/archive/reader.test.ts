/**
 * TarIndex: one header walk, random access by name, links resolved, whole-archive gzip via a
 * temp copy that close() removes, malformed archives → E_BAD_ARCHIVE with file and offset.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeTarName, TarIndex } from '../../../src/archive/tar-index.js';
import { makeTempDir, type TempDir } from '../../helpers/binaries.js';
import { collect, END, packTar, paxRecords, rawHeader, rawMember } from './reader-support.js';

let tmp: TempDir;
let n = 0;
const file = (buf: Buffer, name = `a${n++}.tar`): string => {
  const p = join(tmp.path, name);
  writeFileSync(p, buf);
  return p;
};
const index = async (buf: Buffer): Promise<TarIndex> => TarIndex.open(file(buf));

beforeAll(() => {
  tmp = makeTempDir('tar-index');
});
afterAll(() => tmp.remove());

describe('normalizeTarName', () => {
  it.each([
    ['./manifest.json', 'manifest.json'],
    ['./', ''],
    ['.', ''],
    ['/abs/x', 'abs/x'],
    ['a//b/./c/', 'a/b/c'],
    ['a/../b', 'b'],
    ['blobs/sha256/', 'blobs/sha256'],
  ])('%j → %j', (input, want) => expect(normalizeTarName(input)).toBe(want));
});

describe('TarIndex: names and offsets', () => {
  it('indexes ustar members (with the 155-byte prefix for long paths) and reads them by range', async () => {
    const longDir = `${'d'.repeat(90)}/${'e'.repeat(60)}`;
    const members = [
      { name: 'blobs/', type: 'directory' as const },
      { name: 'small.txt', data: 'hello' },
      { name: `${longDir}/file.bin`, data: Buffer.alloc(700, 7) }, // > 100 bytes: split into prefix + name
      { name: 'empty', data: '' },
    ];
    const buf = await packTar(members);
    // tar-stream used the prefix field, not PAX, for the long path.
    expect(buf.toString('latin1', 512 * 3 + 345, 512 * 3 + 345 + 10)).toBe('d'.repeat(10));
    const t = await index(buf);
    expect(t.names()).toEqual(['blobs', 'small.txt', `${longDir}/file.bin`, 'empty']);
    const small = t.get('small.txt')!;
    expect(small).toEqual({ name: 'small.txt', offset: 512 * 2, size: 5 });
    expect(buf.subarray(small.offset, small.offset + small.size).toString()).toBe('hello');
    expect((await t.read(`${longDir}/file.bin`, 1000)).equals(Buffer.alloc(700, 7))).toBe(true);
    expect((await t.read('empty', 10)).length).toBe(0);
    expect(t.get('blobs')).toBeUndefined(); // a directory is not a file
    expect(t.entry('blobs')?.type).toBe('directory');
    expect(t.get('missing')).toBeUndefined();
  });

  it('open(name, start) streams the member from an offset; at its end it is empty', async () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const t = await index(await packTar([{ name: 'x', data }, { name: 'y', data: 'after' }]));
    expect((await collect(t.open('x'))).equals(data)).toBe(true);
    expect((await collect(t.open('x', 1234))).equals(data.subarray(1234))).toBe(true);
    expect((await collect(await t.stream('x', 2999))).equals(data.subarray(2999))).toBe(true);
    expect((await collect(t.open('x', 3000))).length).toBe(0);
    expect(() => t.open('x', 3001)).toThrow(/offset 3001/);
    expect(() => t.open('nope')).toThrow(expect.objectContaining({ code: 'E_BAD_ARCHIVE' }));
    expect((await t.peek('x', 4)).equals(data.subarray(0, 4))).toBe(true);
  });

  it('read(name, max) is bounded', async () => {
    const t = await index(await packTar([{ name: 'big', data: Buffer.alloc(2048) }]));
    await expect(t.read('big', 2047)).rejects.toMatchObject({ code: 'E_SIZE_MISMATCH' });
    expect((await t.read('big', 2048)).length).toBe(2048);
  });

  it('normalises ./ prefixes and a later member with the same name wins', async () => {
    const t = await index(await packTar([
      { name: './', type: 'directory' },
      { name: './manifest.json', data: 'old' },
      { name: './blobs/sha256/', type: 'directory' },
      { name: './blobs/sha256/abc', data: 'blob' },
      { name: 'manifest.json', data: 'new' },
    ]));
    expect(t.names()).toEqual(['blobs/sha256', 'blobs/sha256/abc', 'manifest.json']);
    expect((await t.read('./manifest.json', 10)).toString()).toBe('new');
    expect((await t.read('blobs/sha256/abc', 10)).toString()).toBe('blob');
    expect((await t.read('/blobs//sha256/./abc', 10)).toString()).toBe('blob');
  });

  it('PAX path (a name component over 100 bytes), PAX linkpath and PAX size', async () => {
    const long = `dir/${'n'.repeat(150)}.tar`;
    const viaPack = await packTar([
      { name: long, data: 'pax-named' },
      { name: 'lnk', type: 'symlink', linkname: long }, // linkname > 100 bytes → PAX linkpath
    ]);
    const t = await index(viaPack);
    expect((await t.read(long, 100)).toString()).toBe('pax-named');
    expect(t.entry('lnk')).toMatchObject({ type: 'symlink', target: long });
    expect((await t.read('lnk', 100)).toString()).toBe('pax-named');

    // A PAX size overrides the header's size field (as for files over 8 GiB).
    const data = Buffer.alloc(1500, 3);
    const raw = Buffer.concat([
      rawMember(rawHeader({ name: 'PaxHeader', type: 'x', size: paxRecords({ size: '1500', path: 'sized/file' }).length }), paxRecords({ size: '1500', path: 'sized/file' })),
      rawMember(rawHeader({ name: 'short', type: '0', size: 0 }), data),
      rawMember(rawHeader({ name: 'next', type: '0', size: 4 }), 'next'),
      END,
    ]);
    const t2 = await index(raw);
    expect(t2.names()).toEqual(['sized/file', 'next']);
    expect(t2.get('sized/file')).toMatchObject({ offset: 512 * 3, size: 1500 });
    expect((await t2.read('next', 10)).toString()).toBe('next');
    expect(t2.entry('sized/file')!.headerOffset).toBe(0); // the member starts at its extended header
  });

  it('GNU long names and link names (././@LongLink), GNU magic, base-256 sizes', async () => {
    const long = `gnu/${'g'.repeat(200)}`;
    const longTarget = `${'t'.repeat(120)}.tar`;
    const raw = Buffer.concat([
      rawMember(rawHeader({ name: '././@LongLink', type: 'L', size: long.length + 1, magic: 'gnu' }), `${long}\0`),
      rawMember(rawHeader({ name: long.slice(0, 100), type: '0', size: 5, magic: 'gnu' }), 'gnu!!'),
      rawMember(rawHeader({ name: longTarget.slice(0, 100), type: '0', size: 6, magic: 'gnu', base256Size: true }), 'target'),
      rawMember(rawHeader({ name: '././@LongLink', type: 'K', size: longTarget.length + 1, magic: 'gnu' }), `${longTarget}\0`),
      rawMember(rawHeader({ name: 'link', type: '2', size: 0, linkname: longTarget.slice(0, 100), magic: 'gnu' })),
      // GNU headers have no prefix field: bytes 345… must not be read as one.
      rawMember(rawHeader({ name: 'plain', type: '0', size: 1, magic: 'gnu', prefix: 'junk' }), 'p'),
      END,
    ]);
    const t = await index(raw);
    expect(t.names()).toEqual([long, longTarget.slice(0, 100), 'link', 'plain']);
    expect((await t.read(long, 10)).toString()).toBe('gnu!!');
    expect(t.get(longTarget.slice(0, 100))?.size).toBe(6);
    expect(t.entry('link')).toMatchObject({ type: 'symlink', target: longTarget });
    expect(t.get('link')).toBeUndefined(); // the long target itself is not in the archive
    expect((await t.read('plain', 1)).toString()).toBe('p');
  });

  it('tolerates a missing end-of-archive marker; an archive of nothing has no entries', async () => {
    const noEnd = rawMember(rawHeader({ name: 'a', type: '0', size: 3 }), 'abc');
    expect((await (await index(noEnd)).read('a', 3)).toString()).toBe('abc');
    expect((await index(Buffer.alloc(10240))).names()).toEqual([]);
  });
});

describe('TarIndex: links', () => {
  it('classic docker save shape: <id>/layer.tar → ../<diffid>.tar symlinks, and hardlinks', async () => {
    const t = await index(await packTar([
      { name: 'aaaa.tar', data: 'layer-a' },
      { name: 'id1/', type: 'directory' },
      { name: 'id1/layer.tar', type: 'symlink', linkname: '../aaaa.tar' },
      { name: 'id2/layer.tar', type: 'link', linkname: 'aaaa.tar' }, // hardlink: archive path
      { name: 'id3/layer.tar', type: 'symlink', linkname: '/id1/layer.tar' }, // absolute, chained
    ]));
    for (const name of ['id1/layer.tar', 'id2/layer.tar', 'id3/layer.tar', './id1/layer.tar']) {
      expect(t.get(name), name).toEqual({ name: 'aaaa.tar', offset: 512, size: 7 });
      expect((await t.read(name, 100)).toString()).toBe('layer-a');
    }
    expect(t.entry('id1/layer.tar')).toMatchObject({ type: 'symlink', target: 'aaaa.tar' });
    expect(t.entry('id2/layer.tar')).toMatchObject({ type: 'hardlink', target: 'aaaa.tar' });
  });

  it('follows links in leading path components; stays inside the archive; reports loops', async () => {
    const t = await index(await packTar([
      { name: 'real/dir/f', data: 'F' },
      { name: 'alias', type: 'symlink', linkname: 'real/dir' },
      { name: 'out', type: 'symlink', linkname: '../../etc/passwd' },
      { name: 'loop1', type: 'symlink', linkname: 'loop2' },
      { name: 'loop2', type: 'symlink', linkname: './loop1' },
      { name: 'dangling', type: 'symlink', linkname: 'nothing' },
      { name: 'tolink', type: 'symlink', linkname: 'real' },
    ]));
    expect((await t.read('alias/f', 1)).toString()).toBe('F');
    expect((await t.read('tolink/dir/f', 1)).toString()).toBe('F');
    expect(t.get('real/dir/f/x')).toBeUndefined(); // a file used as a directory
    expect(t.get('out')).toBeUndefined();
    expect(t.get('dangling')).toBeUndefined();
    expect(t.get('alias')).toBeUndefined(); // resolves to a directory
    expect(() => t.get('loop1')).toThrow(expect.objectContaining({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/too many levels of links/) }));
  });
});

describe('TarIndex: whole-archive gzip', () => {
  it('decompresses once into a temp dir, indexes that, and deletes it on close()', async () => {
    const plain = await packTar([{ name: './manifest.json', data: '[]' }, { name: 'l.tar', data: Buffer.alloc(5000, 9) }]);
    const p = file(gzipSync(plain), 'archive.tar.gz');
    const scratch = join(tmp.path, 'scratch');
    (await import('node:fs')).mkdirSync(scratch);
    const t = await TarIndex.open(p, { tmpDir: scratch });
    expect(t.compression).toBe('gzip');
    expect(t.archive).toBe(p);
    expect(t.file.startsWith(scratch)).toBe(true);
    expect(readdirSync(scratch)).toHaveLength(1);
    expect((await t.read('manifest.json', 10)).toString()).toBe('[]');
    expect((await collect(t.open('l.tar', 4000))).equals(Buffer.alloc(1000, 9))).toBe(true);
    await t.close();
    expect(readdirSync(scratch)).toHaveLength(0);
    expect(existsSync(t.file)).toBe(false);
    await t.close(); // idempotent
    await expect(t.read('manifest.json', 10)).rejects.toMatchObject({ code: 'E_INTERNAL' });
  });

  it('a corrupt gzip stream is E_BAD_ARCHIVE and leaves no temp file', async () => {
    const gz = gzipSync(await packTar([{ name: 'x', data: Buffer.alloc(100_000, 1) }]));
    const scratch = join(tmp.path, 'scratch2');
    (await import('node:fs')).mkdirSync(scratch);
    const p = file(gz.subarray(0, gz.length - 40), 'cut.tar.gz');
    await expect(TarIndex.open(p, { tmpDir: scratch })).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringContaining(p) });
    expect(readdirSync(scratch)).toHaveLength(0);
  });

  it('zstd-compressed archives are refused with a hint', async () => {
    await expect(index(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', hint: expect.stringContaining('zstd -d') });
  });
});

describe('TarIndex: malformed archives', () => {
  it('truncated in the middle of a member: E_BAD_ARCHIVE naming the file and the offset', async () => {
    const buf = await packTar([{ name: 'a', data: 'aaaa' }, { name: 'b', data: Buffer.alloc(4000, 2) }]);
    const p = file(buf.subarray(0, 1024 + 512 + 1000));
    const err = await TarIndex.open(p).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_BAD_ARCHIVE' });
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toMatch(/at offset 1024\b/);
    expect((err as Error).message).toMatch(/truncated/);
  });

  it('truncated inside a header', async () => {
    const buf = await packTar([{ name: 'a', data: 'aaaa' }, { name: 'b', data: 'b' }]);
    await expect(index(buf.subarray(0, 1024 + 100))).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/offset 1024: truncated tar header/) });
  });

  it('a corrupt header (bad checksum) and a file that is not a tar', async () => {
    const buf = await packTar([{ name: 'a', data: 'aaaa' }, { name: 'b', data: 'b' }]);
    buf[1024 + 10] = 0x41; // inside b's name
    await expect(index(buf)).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/offset 1024: bad tar header checksum/) });
    await expect(index(Buffer.from('{"not":"a tar"}'.repeat(100)))).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/offset 0: not a tar archive/) });
    await expect(index(Buffer.alloc(0))).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE', message: expect.stringMatching(/empty/) });
  });

  it('an extended header with nothing after it', async () => {
    const recs = paxRecords({ path: 'x' });
    const raw = Buffer.concat([rawMember(rawHeader({ name: 'PaxHeader', type: 'x', size: recs.length }), recs), END]);
    await expect(index(raw)).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE' });
  });

  it('a missing archive is E_NO_SUCH_FILE (exit 8, never the registry\'s 4); a directory is E_BAD_ARCHIVE', async () => {
    await expect(TarIndex.open(join(tmp.path, 'nope.tar'))).rejects.toMatchObject({ code: 'E_NO_SUCH_FILE', exitCode: 8 });
    await expect(TarIndex.open(tmp.path)).rejects.toMatchObject({ code: 'E_BAD_ARCHIVE' });
  });
});
