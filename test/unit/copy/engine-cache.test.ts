import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { transferBlobs, type PlannedTransfer } from '../../../src/copy/engine.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import type { ImageDestination, ImageSource } from '../../../src/transports/types.js';

const d: Descriptor = { mediaType: 'application/octet-stream', digest: `sha256:${'a'.repeat(64)}`, size: 3 };

function source(): ImageSource & { cached: number } {
  const s = {
    cached: 0,
    description: 'reg/app', resolve: async () => d, fetchManifest: async () => new Uint8Array(), close: async () => {},
    fetchBlob: async () => Readable.from([Buffer.from('abc')]),
    blobFile: async () => {
      s.cached++;
      return '/cache/blob';
    },
  };
  return s;
}

function destination(put: ImageDestination['putBlob']): ImageDestination {
  return {
    description: 'dst', capabilities: { concurrentWrites: true, compressedLayers: false, multipleImages: true, platforms: 'index', mount: true },
    hasBlob: async () => false, putBlob: put, putManifest: async () => {}, commit: async () => {}, close: async () => {},
  };
}

describe('transferBlobs through a cache-backed source', () => {
  it('a destination that never reads the blob (it mounted it, or found it there) starts no cache download', async () => {
    const src = source();
    const planned = { images: [], blobs: [{ d, src }], transfer: { images: [], manifests: [], blobs: [d], origins: [] } } as unknown as PlannedTransfer;
    await transferBlobs(planned, destination(async () => undefined), { platforms: 'all', jobs: 1 });
    await transferBlobs(planned, destination(async () => ({ mounted: 'other/repo' })), { platforms: 'all', jobs: 1 });
    expect(src.cached).toBe(0);
  });

  it('one that reads it waits for the cache download (its digest check) before the blob counts as done', async () => {
    const src = source();
    const planned = { images: [], blobs: [{ d, src }], transfer: { images: [], manifests: [], blobs: [d], origins: [] } } as unknown as PlannedTransfer;
    await transferBlobs(planned, destination(async (_d, reader) => {
      (await reader.open(0)).resume();
    }), { platforms: 'all', jobs: 1 });
    expect(src.cached).toBe(1);
  });
});
