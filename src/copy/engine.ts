import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type ImageIndex, type ImageManifest, parseManifest } from '../oci/manifest.js';
import { isManifestType } from '../oci/media-types.js';
import { choosePlatform, formatPlatform, type Platform } from '../oci/platform.js';
import { mapLimit } from '../util/concurrency.js';
import type { ImageDestination, ImageSource } from '../transports/types.js';
import type { CopyEvent } from './events.js';

export interface CopyPlan {
  /** 'all' keeps a whole index; otherwise exactly one platform is picked from an index. */
  platforms: 'all' | [Platform];
  /** Blobs transferred at once. */
  jobs: number;
  signal?: AbortSignal;
  onEvent?: (e: CopyEvent) => void;
}

export interface CopyResult {
  /** What the destination's root now is (a child manifest when one platform was picked). */
  root: Descriptor;
  /** What the source location resolved to. */
  sourceRoot: Descriptor;
  platform?: Platform;
  manifests: number;
  blobs: { total: number; skipped: number; transferred: number; bytes: number; transferredBytes: number };
}

interface Node {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: ImageManifest | ImageIndex;
}

/**
 * The one engine behind pull, push and copy. Contract with the destination: every blob first
 * (skipping what it has), then manifests children before parents with the root last, then
 * commit(); close() always runs. Manifest bytes travel verbatim, so digests never change.
 */
export async function copyImage(src: ImageSource, dst: ImageDestination, plan: CopyPlan): Promise<CopyResult> {
  const emit = plan.onEvent ?? (() => {});
  const signal = plan.signal;
  try {
    const sourceRoot = await src.resolve(signal);
    let top = await load(src, sourceRoot, signal);
    let platform: Platform | undefined;
    if (top.manifest.kind === 'index' && plan.platforms !== 'all') {
      const wanted = plan.platforms[0];
      const child = choosePlatform(top.manifest.manifests.filter((m) => isManifestType(m.mediaType)), wanted);
      if (!child) {
        const have = top.manifest.manifests.map((m) => formatPlatform(m.platform)).filter((p) => p !== 'unknown/unknown');
        throw new FerryError('E_NOT_FOUND', `${src.description}: no image for platform ${formatPlatform(wanted)}`, {
          hint: `available: ${[...new Set(have)].join(', ') || 'none'}; choose one with --platform, or keep them all with --all-platforms`,
        });
      }
      platform = child.platform;
      top = await load(src, child, signal);
    }
    emit({ type: 'resolved', descriptor: top.descriptor, kind: top.manifest.kind, ...(platform ? { platform } : {}) });

    // Walk the graph: children of indexes (recursively), then blobs of every image manifest.
    const order: Node[] = []; // post-order: children before parents
    const seen = new Set<string>();
    const walk = async (n: Node): Promise<void> => {
      if (seen.has(n.descriptor.digest)) return;
      seen.add(n.descriptor.digest);
      if (n.manifest.kind === 'index') {
        const kids = n.manifest.manifests.filter((m) => isManifestType(m.mediaType));
        const loaded = await mapLimit(kids, plan.jobs, (d, _i, s) => load(src, d, s), signal);
        for (const k of loaded) await walk(k);
        const other = n.manifest.manifests.filter((m) => !isManifestType(m.mediaType));
        if (other.length) throw new FerryError('E_UNSUPPORTED', `${src.description}: index entry of type ${other[0]!.mediaType} is not supported`);
      }
      order.push(n);
    };
    await walk(top);

    const blobs = new Map<string, Descriptor>();
    for (const n of order) {
      if (n.manifest.kind === 'image') for (const b of [n.manifest.config, ...n.manifest.layers]) if (!blobs.has(b.digest)) blobs.set(b.digest, b);
    }
    const list = [...blobs.values()];
    const result: CopyResult = {
      root: top.descriptor, sourceRoot, ...(platform ? { platform } : {}), manifests: order.length,
      blobs: { total: list.length, skipped: 0, transferred: 0, bytes: list.reduce((a, b) => a + b.size, 0), transferredBytes: 0 },
    };
    emit({ type: 'plan', blobs: list.length, bytes: result.blobs.bytes, manifests: order.length });

    // Largest first: the long transfers start early and small ones fill the gaps.
    list.sort((a, b) => b.size - a.size);
    const jobs = dst.capabilities.concurrentWrites ? Math.max(1, plan.jobs) : 1;
    await mapLimit(list, jobs, async (d, _i, s) => {
      if (await dst.hasBlob(d, s)) {
        result.blobs.skipped++;
        emit({ type: 'blob-skip', descriptor: d });
        return;
      }
      const t0 = performance.now();
      emit({ type: 'blob-start', descriptor: d });
      await dst.putBlob(d, { open: (offset, sig) => src.fetchBlob(d, { offset, signal: sig ?? s }) }, {
        signal: s, onProgress: (delta) => emit({ type: 'blob-progress', descriptor: d, delta }),
      });
      result.blobs.transferred++;
      result.blobs.transferredBytes += d.size;
      emit({ type: 'blob-done', descriptor: d, ms: performance.now() - t0 });
    }, signal);

    for (const n of order) {
      await dst.putManifest(n.bytes, n.descriptor, { root: n === top, ...(signal ? { signal } : {}) });
      emit({ type: 'manifest-done', descriptor: n.descriptor });
    }
    await dst.commit(signal);
    emit({ type: 'committed' });
    return result;
  } finally {
    await Promise.allSettled([dst.close(), src.close()]);
  }
}

async function load(src: ImageSource, d: Descriptor, signal?: AbortSignal): Promise<Node> {
  const bytes = await src.fetchManifest(d, signal);
  const manifest = parseManifest(bytes, d.mediaType, `manifest ${d.digest}`);
  // A descriptor's mediaType may be missing/generic from HEAD; trust the parsed one.
  return { descriptor: { ...d, mediaType: manifest.mediaType }, bytes, manifest };
}
