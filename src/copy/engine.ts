import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type ImageIndex, type ImageManifest, parseManifest } from '../oci/manifest.js';
import { isManifestType } from '../oci/media-types.js';
import type { Platform } from '../oci/platform.js';
import { mapLimit } from '../util/concurrency.js';
import type { ImageDestination, ImageNames, ImageSource, TransferPlan } from '../transports/types.js';
import type { CopyEvent } from './events.js';
import { checkImagePlatform, pickPlatform, readConfig } from './platform-select.js';

export interface CopyPlan {
  /** 'all' keeps a whole index; otherwise exactly one platform is picked from an index. */
  platforms: 'all' | [Platform];
  /** The platform was asked for (--platform): a single-platform image of another platform is
   * E_NOT_FOUND, like an index without it. Without it (the host default) any image passes. */
  requirePlatform?: boolean;
  /** Blobs transferred at once. */
  jobs: number;
  signal?: AbortSignal;
  onEvent?: (e: CopyEvent) => void;
}

export interface CopySource {
  src: ImageSource;
  names: ImageNames;
}

export interface CopyResult {
  /** What the destination's root now is (a child manifest when one platform was picked). */
  root: Descriptor;
  /** What the source location resolved to. */
  sourceRoot: Descriptor;
  platform?: Platform;
  names: ImageNames;
  manifests: number;
  /** mounted: blobs a registry linked from another repository (no bytes moved). */
  blobs: { total: number; skipped: number; mounted: number; transferred: number; bytes: number; transferredBytes: number };
}

interface Node {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: ImageManifest | ImageIndex;
}

/** One image: see copyImages. */
export async function copyImage(src: ImageSource, dst: ImageDestination, plan: CopyPlan, names: ImageNames = {}): Promise<CopyResult> {
  return (await copyImages([{ src, names }], dst, plan))[0]!;
}

/**
 * The one engine behind pull, push and copy, in three phases: planTransfer resolves every source
 * and walks its graph (so the destination is told the whole plan: archives lay out every tar
 * offset before a byte arrives), transferBlobs moves each distinct blob once (skipping what the
 * destination has), commitImages writes manifests children before parents with each image's
 * root last, then commit(). close() always runs, on sources and destination. Manifest bytes
 * travel verbatim, so digests never change.
 */
export async function copyImages(sources: CopySource[], dst: ImageDestination, plan: CopyPlan): Promise<CopyResult[]> {
  try {
    const planned = await planTransfer(sources, dst, plan);
    await dst.prepare?.(planned.transfer, plan.signal);
    const stats = await transferBlobs(planned, dst, plan);
    await commitImages(planned, dst, plan);
    return planned.images.map((img) => imageResult(img, stats));
  } finally {
    await Promise.allSettled([dst.close(), ...sources.map((s) => s.src.close())]);
  }
}

interface PlannedImage {
  top: Node;
  order: Node[];
  sourceRoot: Descriptor;
  platform?: Platform;
  names: ImageNames;
}

export interface PlannedTransfer {
  images: PlannedImage[];
  /** Distinct blobs, largest first, each with a source that can supply it. */
  blobs: Array<{ d: Descriptor; src: ImageSource }>;
  transfer: TransferPlan;
}

interface TransferStats {
  skipped: Set<string>;
  mounted: Set<string>;
}

/**
 * Phase 1: resolve each source, fetch and verify its manifests, pick the platform (an index is
 * narrowed to one image when the plan names one, or when the destination holds one platform per
 * image), walk the graph children-first and collect the distinct blobs.
 */
export async function planTransfer(sources: CopySource[], dst: ImageDestination, plan: CopyPlan): Promise<PlannedTransfer> {
  const emit = plan.onEvent ?? (() => {});
  const signal = plan.signal;
  if (sources.length > 1 && !dst.capabilities.multipleImages) {
    throw new FerryError('E_USAGE', `${dst.description} holds one image, but ${sources.length} were given`);
  }
  const images: PlannedImage[] = [];
  for (const { src, names } of sources) {
    const sourceRoot = await src.resolve(signal);
    let top = await load(src, sourceRoot, signal);
    let platform: Platform | undefined;
    if (top.manifest.kind === 'index' && plan.platforms !== 'all') {
      const child = pickPlatform(src.description, top.manifest, plan.platforms[0], !src.origin);
      platform = child.platform;
      top = await load(src, child, signal);
    } else if (top.manifest.kind === 'index' && dst.capabilities.platforms === 'one') {
      throw new FerryError('E_USAGE', `${dst.description} holds one platform per image, but ${src.description} is a multi-platform index`, {
        hint: 'pick one platform with --platform, or write an oci-archive (or oci) to keep them all',
      });
    } else if (top.manifest.kind === 'image' && plan.platforms !== 'all' && plan.requirePlatform) {
      const p = checkImagePlatform(src.description, await readConfig(src, top.manifest.config, signal), plan.platforms, !src.origin);
      if (p) platform = p;
    }
    emit({ type: 'resolved', descriptor: top.descriptor, kind: top.manifest.kind, ...(platform ? { platform } : {}) });
    images.push({ top, order: await walk(src, top, plan.jobs, signal), sourceRoot, ...(platform ? { platform } : {}), names });
  }

  // Distinct blobs across every image, largest first: long transfers start early and small
  // ones fill the gaps. Each remembers which source can supply it.
  const blobs = new Map<string, { d: Descriptor; src: ImageSource }>();
  const manifests = new Map<string, Node>();
  images.forEach((img, i) => {
    for (const n of img.order) {
      manifests.set(n.descriptor.digest, n);
      if (n.manifest.kind !== 'image') continue;
      for (const b of [n.manifest.config, ...n.manifest.layers]) if (!blobs.has(b.digest)) blobs.set(b.digest, { d: b, src: sources[i]!.src });
    }
  });
  const list = [...blobs.values()].sort((a, b) => b.d.size - a.d.size);
  const origins = sources.flatMap((s) => (s.src.origin ? [s.src.origin] : []));
  const transfer: TransferPlan = {
    images: images.map((img) => ({ root: img.top.descriptor, names: img.names })),
    manifests: [...manifests.values()].map((n) => ({ descriptor: n.descriptor, bytes: n.bytes })),
    blobs: list.map((b) => b.d),
    origins,
  };
  emit({ type: 'plan', blobs: list.length, bytes: list.reduce((a, b) => a + b.d.size, 0), manifests: manifests.size });
  return { images, blobs: list, transfer };
}

/**
 * Phase 2: each distinct blob once, `jobs` at a time (one at a time for a destination without
 * concurrent writes), skipping what the destination has. A blob whose bytes all arrived hands
 * its slot to the next download while it fsyncs and finishes its hash: --jobs bounds downloads,
 * and the network never idles on local work.
 */
export async function transferBlobs(planned: PlannedTransfer, dst: ImageDestination, plan: CopyPlan): Promise<TransferStats> {
  const emit = plan.onEvent ?? (() => {});
  const stats: TransferStats = { skipped: new Set(), mounted: new Set() };
  const jobs = dst.capabilities.concurrentWrites ? Math.max(1, plan.jobs) : 1;
  await mapLimit(planned.blobs, jobs, async ({ d, src }, _i, s, release) => {
    if (await dst.hasBlob(d, s)) {
      stats.skipped.add(d.digest);
      emit({ type: 'blob-skip', descriptor: d });
      return;
    }
    const t0 = performance.now();
    emit({ type: 'blob-start', descriptor: d });
    const progress = (delta: number): void => emit({ type: 'blob-progress', descriptor: d, delta });
    let r: Awaited<ReturnType<ImageDestination['putBlob']>>;
    if (src.blobFile) {
      // Through the blob cache: the download (its progress, its end) is the cache's. A layout
      // links the verified file; other destinations read the blob as the cache writes it. The
      // blob counts as done once the cache has verified it too.
      let inCache: Promise<string> | undefined;
      const file = (): Promise<string> => (inCache ??= src.blobFile!(d, { signal: s, onProgress: progress, onReceived: release }));
      r = await dst.putBlob(d, {
        file,
        digestVerified: true,
        open: (offset, sig) => {
          void file().catch(() => {}); // starts the download (with progress); the stream follows it
          return src.fetchBlob(d, { offset, signal: sig ?? s });
        },
      }, { signal: s });
      // A download that was started must have passed the cache's digest check; one the
      // destination never asked for (mounted, or found there after all) is not started now.
      if (inCache) await inCache;
    } else {
      r = await dst.putBlob(d, { open: (offset, sig) => src.fetchBlob(d, { offset, signal: sig ?? s }) }, {
        signal: s, onProgress: progress, onReceived: release,
      });
    }
    if (r?.mounted) {
      stats.mounted.add(d.digest);
      emit({ type: 'blob-mounted', descriptor: d, from: r.mounted });
      return;
    }
    emit({ type: 'blob-done', descriptor: d, ms: performance.now() - t0 });
  }, plan.signal);
  return stats;
}

/** Phase 3: manifests children before parents, each image's root last with its names, then
 * commit(). Nothing is named before its content is in place. */
export async function commitImages(planned: PlannedTransfer, dst: ImageDestination, plan: CopyPlan): Promise<void> {
  const emit = plan.onEvent ?? (() => {});
  const signal = plan.signal;
  const written = new Set<string>();
  for (const img of planned.images) {
    for (const n of img.order) {
      const isRoot = n === img.top;
      if (written.has(n.descriptor.digest) && !isRoot) continue;
      written.add(n.descriptor.digest);
      await dst.putManifest(n.bytes, n.descriptor, { ...(isRoot ? { root: img.names } : {}), ...(signal ? { signal } : {}) });
      emit({ type: 'manifest-done', descriptor: n.descriptor });
    }
  }
  await dst.commit(signal);
  emit({ type: 'committed' });
}

function imageResult(img: PlannedImage, stats: TransferStats): CopyResult {
  const own = new Map<string, Descriptor>();
  for (const n of img.order) if (n.manifest.kind === 'image') for (const b of [n.manifest.config, ...n.manifest.layers]) own.set(b.digest, b);
  const mine = [...own.values()];
  const bytes = mine.reduce((a, b) => a + b.size, 0);
  const skippedHere = mine.filter((b) => stats.skipped.has(b.digest));
  const mountedHere = mine.filter((b) => stats.mounted.has(b.digest));
  return {
    root: img.top.descriptor, sourceRoot: img.sourceRoot, ...(img.platform ? { platform: img.platform } : {}), names: img.names,
    manifests: img.order.length,
    blobs: {
      total: mine.length, skipped: skippedHere.length, mounted: mountedHere.length,
      transferred: mine.length - skippedHere.length - mountedHere.length, bytes,
      transferredBytes: bytes - [...skippedHere, ...mountedHere].reduce((a, b) => a + b.size, 0),
    },
  };
}

/** Post-order walk (children before parents) of an index graph; images are leaves. */
async function walk(src: ImageSource, top: Node, jobs: number, signal?: AbortSignal): Promise<Node[]> {
  const order: Node[] = [];
  const seen = new Set<string>();
  const visit = async (n: Node): Promise<void> => {
    if (seen.has(n.descriptor.digest)) return;
    seen.add(n.descriptor.digest);
    if (n.manifest.kind === 'index') {
      const other = n.manifest.manifests.filter((m) => !isManifestType(m.mediaType));
      if (other.length) throw new FerryError('E_UNSUPPORTED', `${src.description}: index entry of type ${other[0]!.mediaType} is not supported`);
      const loaded = await mapLimit(n.manifest.manifests, jobs, (d, _i, s) => load(src, d, s), signal);
      for (const k of loaded) await visit(k);
    }
    order.push(n);
  };
  await visit(top);
  return order;
}

async function load(src: ImageSource, d: Descriptor, signal?: AbortSignal): Promise<Node> {
  const bytes = await src.fetchManifest(d, signal);
  const manifest = parseManifest(bytes, d.mediaType, `manifest ${d.digest}`);
  // A descriptor's mediaType may be missing/generic from HEAD; trust the parsed one.
  return { descriptor: { ...d, mediaType: manifest.mediaType }, bytes, manifest };
}
