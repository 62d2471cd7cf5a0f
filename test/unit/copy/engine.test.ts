import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { copyImage, copyImages, type CopyPlan } from '../../../src/copy/engine.js';
import type { CopyEvent } from '../../../src/copy/events.js';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import type { Digest } from '../../../src/oci/digest.js';
import type { Platform } from '../../../src/oci/platform.js';
import type { BlobReader, DestinationCapabilities, ImageDestination, ImageNames, ImageSource, PutBlobOptions, PutBlobResult, SourceOrigin, TransferPlan } from '../../../src/transports/types.js';
import { seedImage } from '../../helpers/mem-registry.js';
import { newSession, rejection, repoOf, startReg } from '../http/support.js';

const MT = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};
const sha = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const bytesOf = (seed: string, size: number) => {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++) off += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off);
  return out;
};
const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- an in-memory image source -----------------------------------------------------------------

interface Built { descriptor: Descriptor; bytes: Buffer }

class MemSource implements ImageSource {
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  readonly blobFetches: string[] = [];
  closed = 0;
  constructor(readonly description: string, public root?: Descriptor, readonly origin?: SourceOrigin) {}

  addBlob(b: Buffer, mediaType = MT.layer): Descriptor {
    this.blobs.set(sha(b), b);
    return { mediaType, digest: sha(b), size: b.length };
  }

  image(layers: Buffer[], platform: Platform = { os: 'linux', architecture: 'amd64' }): Built {
    const config = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: layers.map(sha) } }));
    const doc = { schemaVersion: 2, mediaType: MT.manifest, config: this.addBlob(config, MT.config), layers: layers.map((l) => this.addBlob(l)) };
    const bytes = Buffer.from(JSON.stringify(doc));
    this.manifests.set(sha(bytes), bytes);
    return { descriptor: { mediaType: MT.manifest, digest: sha(bytes), size: bytes.length, platform }, bytes };
  }

  index(children: Built[]): Built {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: children.map((c) => c.descriptor) }));
    this.manifests.set(sha(bytes), bytes);
    return { descriptor: { mediaType: MT.index, digest: sha(bytes), size: bytes.length }, bytes };
  }

  async resolve(): Promise<Descriptor> {
    const { platform: _p, ...d } = this.root!;
    return d;
  }

  async fetchManifest(d: Descriptor): Promise<Uint8Array> {
    const b = this.manifests.get(d.digest);
    if (!b) throw new Error(`no manifest ${d.digest}`);
    return b;
  }

  async fetchBlob(d: Descriptor, opts: { offset?: number } = {}): Promise<Readable> {
    this.blobFetches.push(d.digest);
    const b = this.blobs.get(d.digest);
    if (!b) throw new Error(`no blob ${d.digest}`);
    return Readable.from([b.subarray(opts.offset ?? 0)]);
  }

  async close(): Promise<void> {
    this.closed++;
  }
}

// ---- a destination that records every call -----------------------------------------------------

class RecordingDest implements ImageDestination {
  readonly description = 'recording:';
  readonly calls: string[] = [];
  readonly blobs = new Map<string, Buffer>();
  readonly manifests: Array<{ digest: string; root?: ImageNames }> = [];
  plans: TransferPlan[] = [];
  inFlight = 0;
  maxInFlight = 0;
  closed = 0;
  readonly capabilities: DestinationCapabilities;
  constructor(
    caps: Partial<DestinationCapabilities> = {},
    private readonly opts: { present?: Set<string>; delayMs?: number; failPut?: string; mountable?: Set<string> } = {},
  ) {
    this.capabilities = { concurrentWrites: true, compressedLayers: false, multipleImages: true, platforms: 'index', mount: false, ...caps };
  }

  async prepare(plan: TransferPlan): Promise<void> {
    this.calls.push('prepare');
    this.plans.push(plan);
  }

  async hasBlob(d: Descriptor): Promise<boolean> {
    this.calls.push(`has ${d.digest}`);
    return this.opts.present?.has(d.digest) ?? false;
  }

  async putBlob(d: Descriptor, src: BlobReader, opts: PutBlobOptions = {}): Promise<PutBlobResult> {
    this.calls.push(`put ${d.digest}`);
    if (this.opts.mountable?.has(d.digest)) return { mounted: 'other/repo' };
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.opts.delayMs) await tick(this.opts.delayMs);
      if (this.opts.failPut === d.digest) throw new Error(`disk on fire writing ${d.digest}`);
      const chunks: Buffer[] = [];
      for await (const c of await src.open(0, opts.signal)) chunks.push(c as Buffer);
      const b = Buffer.concat(chunks);
      if (sha(b) !== d.digest || b.length !== d.size) throw new Error(`bad bytes for ${d.digest}`);
      opts.onProgress?.(b.length);
      this.blobs.set(d.digest, b);
      return undefined;
    } finally {
      this.inFlight--;
    }
  }

  async putManifest(bytes: Uint8Array, d: Descriptor, opts: { root?: ImageNames }): Promise<void> {
    expect(sha(bytes)).toBe(d.digest);
    this.calls.push(`manifest ${d.digest}`);
    this.manifests.push({ digest: d.digest, ...(opts.root ? { root: opts.root } : {}) });
  }

  async commit(): Promise<void> {
    this.calls.push('commit');
  }

  async close(): Promise<void> {
    this.calls.push('close');
    this.closed++;
  }
}

const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
const ARMV7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
const plan = (p: Partial<CopyPlan> = {}): CopyPlan => ({ platforms: [AMD64], jobs: 4, ...p });

function threePlatformSource(origin?: SourceOrigin) {
  const src = new MemSource('mem:multi', undefined, origin);
  const kids = [AMD64, ARM64, ARMV7].map((p, i) => src.image([bytesOf(`l${i}a`, 3000 + i), bytesOf(`l${i}b`, 5000 + i)], p));
  const idx = src.index(kids);
  src.root = idx.descriptor;
  return { src, kids, idx };
}

describe('platform selection', () => {
  it.each([
    [ARM64, 1],
    [{ os: 'linux', architecture: 'arm64' }, 1],
    [ARMV7, 2],
    [AMD64, 0],
  ])('from a 3-platform index in the mem registry, %j picks child %i and only its blobs', async (wanted, k) => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'multi', 'v1', { platforms: [AMD64, ARM64, ARMV7], layers: 2 });
    const { session } = newSession();
    const { source } = repoOf(session, reg.host, 'multi', 'v1');
    const dst = new RecordingDest();

    const r = await copyImage(source, dst, plan({ platforms: [wanted] }), { refName: 'v1' });

    const child = seeded.manifestDigests[k]!;
    expect(r.sourceRoot.digest).toBe(seeded.digest);
    expect(r.root.digest).toBe(child);
    expect(r.platform).toMatchObject({ os: 'linux', architecture: [AMD64, ARM64, ARMV7][k]!.architecture });
    expect(dst.manifests).toEqual([{ digest: child, root: { refName: 'v1' } }]);
    const childBlobs = seeded.blobs.slice(k * 3, k * 3 + 3); // 2 layers + config per platform, in seed order
    expect([...dst.blobs.keys()].sort()).toEqual([...childBlobs].sort());
    const fetched = reg.requests.filter((q) => q.method === 'GET' && q.path.includes('/blobs/')).map((q) => q.path.split('/').at(-1));
    expect(fetched.sort()).toEqual([...childBlobs].sort());
  });

  it('no platform match → E_NOT_FOUND listing the available platforms; nothing written; close() called', async () => {
    const { src } = threePlatformSource({ registry: 'reg.example', repository: 'multi' });
    const dst = new RecordingDest();
    const e = await rejection(copyImage(src, dst, plan({ platforms: [{ os: 'linux', architecture: 'ppc64le' }] })));
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toContain('mem:multi');
    expect(e.message).toContain('linux/ppc64le');
    expect(e.hint).toContain('available: linux/amd64, linux/arm64/v8, linux/arm/v7');
    expect(dst.calls).toEqual(['close']);
    expect(src.closed).toBe(1);
    expect(src.blobFetches).toEqual([]);
  });
});

describe('all platforms', () => {
  it('writes every child before the index; only the index is a named root; commit after manifests, close last', async () => {
    const { src, kids, idx } = threePlatformSource();
    const dst = new RecordingDest();

    const r = await copyImage(src, dst, plan({ platforms: 'all' }), { refName: 'multi' });

    expect(r.root.digest).toBe(idx.descriptor.digest);
    expect(r.platform).toBeUndefined();
    expect(r.manifests).toBe(4);
    expect(dst.manifests.map((m) => m.digest)).toEqual([...kids.map((k) => k.descriptor.digest), idx.descriptor.digest]);
    expect(dst.manifests.slice(0, 3).every((m) => m.root === undefined)).toBe(true);
    expect(dst.manifests[3]!.root).toEqual({ refName: 'multi' });
    const manifestCalls = dst.calls.filter((c) => c.startsWith('manifest '));
    const lastPut = Math.max(...dst.calls.map((c, i) => (c.startsWith('put ') ? i : -1)));
    expect(dst.calls.indexOf(manifestCalls[0]!)).toBeGreaterThan(lastPut); // blobs before any manifest
    expect(dst.calls.slice(-2)).toEqual(['commit', 'close']);
    expect(dst.blobs.size).toBe(9);
    expect(r.blobs).toMatchObject({ total: 9, transferred: 9, skipped: 0 });
  });

  it('nested index (index → index → images): leaves first, each manifest once, the top last', async () => {
    const src = new MemSource('mem:nested');
    const a = src.image([bytesOf('a', 100)], AMD64);
    const b = src.image([bytesOf('b', 100)], ARM64);
    const inner = src.index([a, b]);
    const top = src.index([inner, a]);
    src.root = top.descriptor;
    const dst = new RecordingDest();
    await copyImage(src, dst, plan({ platforms: 'all' }));
    expect(dst.manifests.map((m) => m.digest)).toEqual([a.descriptor.digest, b.descriptor.digest, inner.descriptor.digest, top.descriptor.digest]);
  });
});

describe('transfer plan and blobs', () => {
  it('blobs shared between images are transferred once; per-image stats still count them', async () => {
    const shared = bytesOf('shared-base', 40_000);
    const s1 = new MemSource('mem:one');
    const i1 = s1.image([shared, bytesOf('only-one', 1000)]);
    s1.root = i1.descriptor;
    const s2 = new MemSource('mem:two');
    const i2 = s2.image([shared, bytesOf('only-two', 2000)]);
    s2.root = i2.descriptor;
    const dst = new RecordingDest();

    const results = await copyImages([{ src: s1, names: { refName: 'one' } }, { src: s2, names: { refName: 'two' } }], dst, plan());

    const puts = dst.calls.filter((c) => c.startsWith('put '));
    expect(puts).toHaveLength(5); // 1 shared + 2 own layers + 2 configs
    expect(new Set(puts).size).toBe(5);
    expect(puts.filter((p) => p === `put ${sha(shared)}`)).toHaveLength(1);
    expect([...s1.blobFetches, ...s2.blobFetches].filter((d) => d === sha(shared))).toHaveLength(1);
    expect(results.map((r) => r.blobs.total)).toEqual([3, 3]);
    expect(results.map((r) => r.root.digest)).toEqual([i1.descriptor.digest, i2.descriptor.digest]);
    expect(dst.manifests.map((m) => m.root?.refName)).toEqual(['one', 'two']);
    expect(s1.closed).toBe(1);
    expect(s2.closed).toBe(1);
  });

  it('prepare(plan) is called once, before any hasBlob/putBlob, with every blob (largest first) and every manifest', async () => {
    const { src, kids, idx } = threePlatformSource();
    const dst = new RecordingDest();
    await copyImage(src, dst, plan({ platforms: 'all' }), { refName: 'x' });

    expect(dst.calls.filter((c) => c === 'prepare')).toHaveLength(1);
    expect(dst.calls[0]).toBe('prepare');
    const p = dst.plans[0]!;
    expect(p.blobs.map((b) => b.digest).sort()).toEqual([...src.blobs.keys()].sort());
    const sizes = p.blobs.map((b) => b.size);
    expect(sizes).toEqual([...sizes].sort((x, y) => y - x));
    expect(p.manifests.map((m) => m.descriptor.digest)).toEqual([...kids.map((k) => k.descriptor.digest), idx.descriptor.digest]);
    for (const m of p.manifests) expect(sha(m.bytes)).toBe(m.descriptor.digest);
    expect(p.images).toEqual([{ root: expect.objectContaining({ digest: idx.descriptor.digest }), names: { refName: 'x' } }]);
  });

  it('blobs the destination has are skipped (hasBlob), reported as skipped, never fetched', async () => {
    const src = new MemSource('mem:s');
    const layers = [bytesOf('x1', 500), bytesOf('x2', 600)];
    const img = src.image(layers);
    src.root = img.descriptor;
    const present = new Set([sha(layers[0]!)]);
    const dst = new RecordingDest({ concurrentWrites: true }, { present });
    const events: CopyEvent[] = [];

    const r = await copyImage(src, dst, plan({ onEvent: (e) => events.push(e) }));

    expect(src.blobFetches).not.toContain(sha(layers[0]!));
    expect(r.blobs).toEqual({ total: 3, skipped: 1, mounted: 0, transferred: 2, bytes: r.blobs.bytes, transferredBytes: r.blobs.bytes - 500 });
    expect(events.filter((e) => e.type === 'blob-skip').map((e) => (e as { descriptor: Descriptor }).descriptor.digest)).toEqual([sha(layers[0]!)]);
    expect(events[0]!.type).toBe('resolved');
    expect(events.findIndex((e) => e.type === 'plan')).toBeLessThan(events.findIndex((e) => e.type === 'blob-start'));
    expect(events.at(-1)!.type).toBe('committed');
  });

  it('blobs the destination mounts are reported as mounted, not transferred, and their bytes are never read', async () => {
    const src = new MemSource('mem:s');
    const layers = [bytesOf('m1', 700), bytesOf('m2', 300)];
    const img = src.image(layers);
    src.root = img.descriptor;
    const dst = new RecordingDest({ concurrentWrites: true }, { mountable: new Set([sha(layers[0]!)]) });
    const events: CopyEvent[] = [];

    const r = await copyImage(src, dst, plan({ onEvent: (e) => events.push(e) }));

    expect(src.blobFetches).not.toContain(sha(layers[0]!));
    expect(r.blobs).toMatchObject({ total: 3, skipped: 0, mounted: 1, transferred: 2, transferredBytes: r.blobs.bytes - 700 });
    expect(events.filter((e) => e.type === 'blob-mounted')).toEqual([{ type: 'blob-mounted', descriptor: expect.objectContaining({ digest: sha(layers[0]!) }), from: 'other/repo' }]);
    expect(events.some((e) => e.type === 'blob-done' && e.descriptor.digest === sha(layers[0]!))).toBe(false);
  });

  it.each([
    [1, true, 1],
    [3, true, 3],
    [16, true, 8],
    [4, false, 1],
  ])('jobs %i (concurrentWrites %s) → at most %i putBlob at once', async (jobs, concurrentWrites, expected) => {
    const src = new MemSource('mem:many');
    const img = src.image(Array.from({ length: 7 }, (_, i) => bytesOf(`m${i}`, 1000 + i)));
    src.root = img.descriptor;
    const dst = new RecordingDest({ concurrentWrites }, { delayMs: 15 });
    await copyImage(src, dst, plan({ jobs }));
    expect(dst.blobs.size).toBe(8);
    expect(dst.maxInFlight).toBe(expected);
  });
});

describe('download slots', () => {
  it('a blob whose bytes all arrived (onReceived) hands its slot on: with --jobs 1 the next download starts during its fsync/hash tail; manifests wait for every tail', async () => {
    const src = new MemSource('mem:s');
    const img = src.image([bytesOf('t1', 900), bytesOf('t2', 800), bytesOf('t3', 700)]);
    src.root = img.descriptor;
    const log: string[] = [];
    let receiving = 0;
    let maxReceiving = 0;
    class TailDest extends RecordingDest {
      override async putBlob(d: Descriptor, s: BlobReader, opts: PutBlobOptions = {}): Promise<PutBlobResult> {
        receiving++;
        maxReceiving = Math.max(maxReceiving, receiving);
        log.push(`start ${d.size}`);
        for await (const _ of await s.open(0, opts.signal)) { /* receive */ }
        receiving--;
        opts.onReceived?.();
        await tick(30); // the local tail: fsync, finishing the hash, rename
        log.push(`end ${d.size}`);
        return undefined;
      }
      override async putManifest(bytes: Uint8Array, d: Descriptor, o: { root?: ImageNames }): Promise<void> {
        log.push('manifest');
        await super.putManifest(bytes, d, o);
      }
    }
    await copyImage(src, new TailDest(), plan({ jobs: 1 }));
    expect(maxReceiving).toBe(1); // --jobs still bounds the downloads
    expect(log.indexOf('start 800')).toBeLessThan(log.indexOf('end 900'));
    expect(log.indexOf('manifest')).toBeGreaterThan(Math.max(...log.filter((l) => l.startsWith('end')).map((l) => log.indexOf(l))));
  });
});

describe('failures', () => {
  it('a putBlob failure → rejected with it, no manifest written, no commit, close() still called once', async () => {
    const src = new MemSource('mem:f');
    const layers = [bytesOf('f1', 900), bytesOf('f2', 800), bytesOf('f3', 700)];
    const img = src.image(layers);
    src.root = img.descriptor;
    const dst = new RecordingDest({ concurrentWrites: true }, { failPut: sha(layers[1]!), delayMs: 5 });

    const e = await rejection(copyImage(src, dst, plan({ jobs: 2 })));

    expect(e.message).toBe(`disk on fire writing ${sha(layers[1]!)}`);
    expect(dst.manifests).toEqual([]);
    expect(dst.calls).not.toContain('commit');
    expect(dst.closed).toBe(1);
    expect(dst.calls.at(-1)).toBe('close');
    expect(src.closed).toBe(1);
  });

  it('a source failure while resolving → close() on destination and source', async () => {
    const src = new MemSource('mem:broken');
    src.resolve = async () => {
      throw new Error('cannot resolve');
    };
    const dst = new RecordingDest();
    await expect(copyImage(src, dst, plan())).rejects.toThrow('cannot resolve');
    expect(dst.calls).toEqual(['close']);
    expect(src.closed).toBe(1);
  });

  it('a commit failure → rejected, close() still called', async () => {
    const src = new MemSource('mem:c');
    const img = src.image([bytesOf('c', 10)]);
    src.root = img.descriptor;
    const dst = new RecordingDest();
    dst.commit = async () => {
      throw new Error('commit failed');
    };
    await expect(copyImage(src, dst, plan())).rejects.toThrow('commit failed');
    expect(dst.closed).toBe(1);
  });

  it('an index entry that is not a manifest (e.g. an attestation blob) under --all-platforms → E_UNSUPPORTED', async () => {
    const src = new MemSource('mem:odd');
    const a = src.image([bytesOf('o', 10)]);
    const idxBytes = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MT.index,
      manifests: [a.descriptor, { mediaType: 'application/vnd.in-toto+json', digest: sha(Buffer.from('x')), size: 1 }],
    }));
    src.manifests.set(sha(idxBytes), idxBytes);
    src.root = { mediaType: MT.index, digest: sha(idxBytes), size: idxBytes.length };
    const dst = new RecordingDest();
    const e = await rejection(copyImage(src, dst, plan({ platforms: 'all' })));
    expect(e.code).toBe('E_UNSUPPORTED');
    expect(e.message).toContain('application/vnd.in-toto+json');
    expect(dst.closed).toBe(1);
  });
});

describe('destination capabilities and explicit platforms', () => {
  it('--platform on a single-platform image of another platform → E_NOT_FOUND naming what it is; nothing fetched but the config', async () => {
    const src = new MemSource('mem:amd64-only', undefined, { registry: 'reg.example', repository: 'app' });
    const img = src.image([bytesOf('one', 500)], AMD64);
    src.root = img.descriptor;
    const dst = new RecordingDest();
    const e = await rejection(copyImage(src, dst, plan({ platforms: [ARM64], requirePlatform: true })));
    expect(e.code).toBe('E_NOT_FOUND');
    expect(e.message).toContain('mem:amd64-only');
    expect(e.message).toContain('linux/arm64/v8');
    expect(e.message).toContain('the image is linux/amd64');
    expect(dst.calls).toEqual(['close']);
    expect(src.blobFetches).toHaveLength(1); // the config only
  });

  it('exit 4 is the registry\'s: a local source (no registry origin) without the platform is E_LOCAL_NOT_FOUND (exit 2), index or single image', async () => {
    const { src } = threePlatformSource();
    const e1 = await rejection(copyImage(src, new RecordingDest(), plan({ platforms: [{ os: 'linux', architecture: 'ppc64le' }] })));
    expect(e1).toMatchObject({ code: 'E_LOCAL_NOT_FOUND', exitCode: 2 });
    const single = new MemSource('oci:/x:v1');
    single.root = single.image([bytesOf('one', 500)], AMD64).descriptor;
    const e2 = await rejection(copyImage(single, new RecordingDest(), plan({ platforms: [ARM64], requirePlatform: true })));
    expect(e2).toMatchObject({ code: 'E_LOCAL_NOT_FOUND', exitCode: 2 });
  });

  it('the same image with the matching --platform, or with the host default (no requirePlatform), copies', async () => {
    for (const p of [plan({ platforms: [AMD64], requirePlatform: true }), plan({ platforms: [ARM64] })]) {
      const src = new MemSource('mem:amd64-only');
      const img = src.image([bytesOf('one', 500)], AMD64);
      src.root = img.descriptor;
      const r = await copyImage(src, new RecordingDest(), p);
      expect(r.root.digest).toBe(img.descriptor.digest);
    }
  });

  it('a destination holding one platform per image refuses a whole index before any blob moves', async () => {
    const { src } = threePlatformSource();
    const dst = new RecordingDest({ platforms: 'one' });
    const e = await rejection(copyImage(src, dst, plan({ platforms: 'all' })));
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain('one platform per image');
    expect(dst.calls).toEqual(['close']);
    expect(src.blobFetches).toEqual([]);
  });

  it('a destination that holds one image refuses several', async () => {
    const s1 = new MemSource('mem:one');
    s1.root = s1.image([bytesOf('x', 10)]).descriptor;
    const s2 = new MemSource('mem:two');
    s2.root = s2.image([bytesOf('y', 10)]).descriptor;
    const dst = new RecordingDest({ multipleImages: false });
    const e = await rejection(copyImages([{ src: s1, names: {} }, { src: s2, names: {} }], dst, plan()));
    expect(e.code).toBe('E_USAGE');
    expect(dst.calls).toEqual(['close']);
  });

  it('the plan carries the registry origins of the sources (mount candidates); local sources add none', async () => {
    const s1 = new MemSource('mem:one', undefined, { registry: 'reg.example', repository: 'team/app' });
    s1.root = s1.image([bytesOf('x', 10)]).descriptor;
    const s2 = new MemSource('mem:two');
    s2.root = s2.image([bytesOf('y', 10)]).descriptor;
    const dst = new RecordingDest();
    await copyImages([{ src: s1, names: {} }, { src: s2, names: {} }], dst, plan());
    expect(dst.plans[0]!.origins).toEqual([{ registry: 'reg.example', repository: 'team/app' }]);
  });
});
