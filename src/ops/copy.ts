import { CompressingSource } from '../copy/compress-layers.js';
import { copyImage, type CopyResult } from '../copy/engine.js';
import type { CopyEvent } from '../copy/events.js';
import { PlatformSubsetSource } from '../copy/platform-subset.js';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Platform } from '../oci/platform.js';
import { formatLocation, openDestination, openSource, parseLocation, servedByOf, type Location } from '../transports/index.js';
import { fullReference, referenceOf } from '../transports/layout-names.js';
import type { ImageNames, ImageSource } from '../transports/types.js';
import { type OpContext, throughCache, withSession } from './context.js';
import { resolveLocalLocation } from './sniff.js';
import { qualifyShortName } from './short-name.js';

export interface CopyOptions {
  /** Platforms to keep from an index: none = all (copy/push default, like crane and regctl);
   * one = that image alone; several = a new index with just those. */
  platforms?: Platform[];
  jobs?: number;
  /** Registry destinations: more tags for the root. */
  tags?: string[];
  chunkSize?: number;
  /** Registry destinations: gzip uncompressed layers (default) or push them as they are. */
  compression?: 'gzip' | 'none';
  onEvent?: (e: CopyEvent) => void;
}

export interface DigestChange {
  reason: 'platform-subset' | 'compression';
  from: Descriptor;
  to: Descriptor;
}

export interface CopyOpResult extends CopyResult {
  source: string;
  /** digest → endpoint (mirror or origin) that served it, when mirrors or a rewrite were configured. */
  servedBy?: Record<string, string>;
  destination: string;
  changes: DigestChange[];
  ms: number;
}

/**
 * Any location to any location through the one engine: registry ↔ registry (blobs stream from
 * GET into the upload; same-registry copies mount instead of moving bytes), registry ↔ local,
 * local ↔ local. Manifests travel verbatim unless a conversion was asked for (a platform subset
 * or compression of uncompressed layers for a registry), and the result says when a digest changed.
 */
export async function copy(source: string, destination: string, opts: CopyOptions, ctx: OpContext): Promise<CopyOpResult> {
  const resolved = await resolveLocalLocation(source, ctx.debug ? { debug: ctx.debug } : {});
  const dst = parseLocation(destination);
  const t0 = performance.now();
  return withSession(ctx, async (session) => {
    const src = resolved.transport === 'docker' ? { ...resolved, ref: await qualifyShortName(source, resolved.ref, session, ctx) } : resolved;
    // A registry destination's plan first: registries.conf may call it insecure (its client is
    // built with that) or block it (E_BLOCKED before anything is read or sent).
    if (dst.transport === 'docker') await session.endpoints(dst.ref, 'copy-destination');
    const opened: ImageSource = throughCache(openSource(src, session), ctx);
    let reader: ImageSource = opened;
    const platforms = opts.platforms ?? [];
    const subset = platforms.length > 1 ? new PlatformSubsetSource(reader, platforms) : undefined;
    if (subset) reader = subset;
    const target = openDestination(dst, session, { ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}), ...(ctx.warn ? { warn: ctx.warn } : {}) });
    const compress = target.capabilities.compressedLayers && (opts.compression ?? 'gzip') === 'gzip' ? new CompressingSource(reader, opts.jobs ?? 4) : undefined;
    if (compress) reader = compress;
    // Same-registry mounts need nothing here: a registry source says where its blobs live
    // (origin), the engine hands the origins to the destination's prepare(), and a destination
    // that can mount (capabilities.mount) tries them.
    const result = await copyImage(
      reader,
      target,
      {
        platforms: platforms.length === 1 ? [platforms[0]!] : 'all',
        ...(platforms.length > 0 ? { requirePlatform: true } : {}),
        jobs: opts.jobs ?? 4,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      },
      namesFor(src, dst, opts.tags ?? []),
    );
    const changes: DigestChange[] = [];
    if (subset?.changed) changes.push({ reason: 'platform-subset', ...subset.changed });
    if (compress?.report.manifest) changes.push({ reason: 'compression', ...compress.report.manifest });
    // sourceRoot is what the source location itself resolved to, before any rewrite.
    const sourceRoot = subset?.changed?.from ?? compress?.report.manifest?.from ?? result.sourceRoot;
    const served = servedByOf(opened);
    return { ...result, sourceRoot, source: formatLocation(src), destination: formatLocation(dst), changes, ...(served ? { servedBy: served } : {}), ms: performance.now() - t0 };
  });
}

/** Names for the copied root at the destination: registry tags, layout ref names, RepoTags, and
 * the full reference every local format records (io.containerd.image.name, layout-names.ts). */
function namesFor(src: Location, dst: Location, extraTags: string[]): ImageNames {
  const srcTag = src.transport === 'docker' ? src.ref.tag : src.transport === 'docker-archive' ? src.ref?.tag : src.tag;
  // The source's full reference: a registry/docker-archive reference, or an oci selector that is one.
  const srcRef = src.transport === 'docker' || src.transport === 'docker-archive' ? src.ref : src.tag !== undefined ? referenceOf(src.tag) : undefined;
  const srcFull = srcRef?.tag ? srcRef.withTag(srcRef.tag) : undefined;
  switch (dst.transport) {
    case 'docker': {
      const tags = [...(dst.ref.tag && !dst.ref.digest ? [dst.ref.tag] : dst.ref.digest ? [] : []), ...extraTags];
      return { tags: [...new Set(tags)] };
    }
    case 'oci':
    case 'oci-archive': {
      // ref.name is the tag (what skopeo's `oci:DIR:TAG` selects); the full reference goes beside
      // it as io.containerd.image.name, which ctr import and podman load name the image by.
      const full = dst.tag !== undefined ? fullReference(dst.tag, srcRef) : srcFull?.toString();
      const refName = dst.tag ?? srcFull?.tag ?? srcTag;
      return { ...(refName ? { refName } : {}), ...(full ? { repoTag: full } : {}) };
    }
    case 'docker-archive': {
      const r = dst.ref ?? srcFull;
      return r ? { repoTag: r.toString(), ...(r.tag ? { refName: r.tag } : {}) } : {};
    }
  }
}

/** `push` is copy from a local location to a registry, with the source sniffed from a bare path. */
export async function push(source: string, destination: string, opts: CopyOptions, ctx: OpContext): Promise<CopyOpResult> {
  const dst = parseLocation(destination);
  if (dst.transport !== 'docker') {
    throw new FerryError('E_USAGE', `push writes to a registry, but "${destination}" is a local ${dst.transport}: location`, { hint: 'use ferry copy between local formats' });
  }
  const src = await resolveLocalLocation(source, ctx.debug ? { debug: ctx.debug } : {});
  if (src.transport === 'docker') {
    throw new FerryError('E_USAGE', `push reads a local image, but "${source}" is a registry reference`, { hint: 'use ferry copy for registry to registry' });
  }
  return copy(formatLocation(src), destination, opts, ctx);
}
