import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { BlobStore } from '../../../src/store/index.js';
import { CachedSource } from '../../../src/transports/cached-source.js';
import type { ImageSource } from '../../../src/transports/types.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-cached-src-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const content = Buffer.alloc(3 * 1024 * 1024 + 17, 7).map((_, i) => (i * 31) & 0xff) as Buffer;
const d: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(content).digest('hex')}`, size: content.length };

/** An inner source whose blob stream arrives in small pieces over several ticks. */
function inner(): ImageSource & { fetches: number[] } {
  const fetches: number[] = [];
  return {
    fetches,
    description: 'reg/app:v1',
    origin: { registry: 'reg', repository: 'app' },
    resolve: async () => d,
    fetchManifest: async () => new Uint8Array(),
    fetchBlob: async (_d, o = {}) => {
      fetches.push(o.offset ?? 0);
      const rest = content.subarray(o.offset ?? 0);
      let at = 0;
      return new Readable({
        read() {
          setTimeout(() => {
            if (at >= rest.length) return this.push(null);
            this.push(rest.subarray(at, at + 65536));
            at += 65536;
          }, 0);
        },
      });
    },
    close: async () => {},
  } as ImageSource & { fetches: number[] };
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('CachedSource', () => {
  it('fetchBlob follows the download as the cache writes it: the bytes from any offset, one fetch', async () => {
    const src = inner();
    const c = new CachedSource(src, new BlobStore(root));
    const [a, b] = await Promise.all([c.fetchBlob(d), c.fetchBlob(d, { offset: 1_000_000 })]);
    const [ba, bb] = await Promise.all([readAll(a), readAll(b)]);
    expect(ba.equals(content)).toBe(true);
    expect(bb.equals(content.subarray(1_000_000))).toBe(true);
    expect(src.fetches).toEqual([0]);
    expect(await c.blobFile(d)).toBe(new BlobStore(root).blobPath(d));
  });

  it('a cached blob removed (cache prune) between lookup and open is fetched again, once', async () => {
    const src = inner();
    const c = new CachedSource(src, new BlobStore(root));
    const p = await c.blobFile(d);
    rmSync(p);
    expect((await readAll(await c.fetchBlob(d))).equals(content)).toBe(true);
    expect(src.fetches).toEqual([0, 0]);
  });
});
