import { copyImages, type CopyResult } from '../copy/engine.js';
import type { CopyEvent } from '../copy/events.js';
import { FerryError } from '../errors.js';
import { hostPlatform, type Platform } from '../oci/platform.js';
import type { ImageReference } from '../ref/index.js';
import { qualifyShortName } from './short-name.js';
import { destinationCapabilities, formatLocation, openDestination, openSource, parseLocation, servedByOf, type Location } from '../transports/index.js';
import { fullReference } from '../transports/layout-names.js';
import type { ImageNames } from '../transports/types.js';
import { prewarmFileHashers } from '../util/file-hasher.js';
import { lstat } from 'node:fs/promises';
import { clobberError, ImageArchiveDestination } from '../transports/archive-destination.js';
import { classifyOutput } from '../transports/fs-util.js';
import { type OpContext, throughCache, withSession } from './context.js';

export type OutputFormat = 'docker-archive' | 'oci-archive' | 'oci';

export interface PullOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  jobs?: number;
  onEvent?: (e: CopyEvent) => void;
  /** Refuse to replace an existing archive file (or to write into an existing path for oci:). */
  noClobber?: boolean;
}

export interface PullResult {
  destination: string;
  /** An existing regular file at the destination was replaced (as docker save does). */
  replaced: boolean;
  /** The archive was written sequentially (pipe, FIFO, device, stdout) rather than to a file. */
  streamed: boolean;
  /** `servedBy`: digest → mirror or origin endpoint, when mirrors (or a rewrite) were configured. */
  images: Array<CopyResult & { source: string; servedBy?: Record<string, string> }>;
  ms: number;
}

/**
 * `-o FILE [--format F]` → a destination location. A `.tar` path defaults to docker-archive
 * (what docker load, podman load, skopeo and Apptainer all read); anything else to an OCI layout.
 * `-o -` is stdout: a docker-archive (or oci-archive) streamed there; an oci: layout is a
 * directory and cannot be. So is a path that is a pipe, FIFO or character device (`-o
 * /dev/stdout`, `-o /dev/null`): an archive, never a layout directory.
 */
export async function outputLocation(path: string, format?: OutputFormat): Promise<string> {
  if (path.includes(':')) throw new FerryError('E_USAGE', `output path "${path}" contains ":"`, { hint: 'use a path without ":" or the transport:PATH form' });
  const streamed = path === '-' || (await classifyOutput(path).catch(() => undefined))?.kind === 'stream';
  if (streamed && format === 'oci') {
    throw new FerryError('E_USAGE', `--format oci writes a layout directory, which cannot go to ${path === '-' ? 'stdout' : path}`, { hint: 'use --format docker-archive or oci-archive to stream a tar' });
  }
  const f = format ?? (streamed || /\.tar$/i.test(path) ? 'docker-archive' : 'oci');
  return `${f}:${path}`;
}

/** --no-clobber, checked before anything is downloaded (the archive writer checks again at the end). */
async function checkNoClobber(dst: Location): Promise<void> {
  if (dst.transport === 'docker') return;
  if (dst.transport === 'oci') {
    if (await lstat(dst.path).then(() => true, () => false)) throw clobberError(dst.path);
    return;
  }
  const out = await classifyOutput(dst.path).catch(() => undefined);
  if (out?.kind === 'file' && out.exists) throw clobberError(dst.path);
}

/** Registry → local: the copy engine with registry sources and one local destination. */
export async function pull(sources: string[], destination: string, opts: PullOptions, ctx: OpContext): Promise<PullResult> {
  if (sources.length === 0) throw new FerryError('E_USAGE', 'pull needs at least one image reference');
  const parsedRefs = sources.map((s) => {
    const loc = parseLocation(s);
    if (loc.transport !== 'docker') {
      throw new FerryError('E_USAGE', `pull reads from a registry, but "${s}" is a local ${loc.transport}: location`, { hint: 'use ferry copy to move between local formats' });
    }
    return loc.ref;
  });
  const dst = parseLocation(destination);
  if (dst.transport === 'docker') {
    throw new FerryError('E_USAGE', `pull writes to a local location, but "${destination}" is a registry reference`, { hint: 'use oci:DIR, oci-archive:FILE or docker-archive:FILE (or -o FILE); ferry copy goes registry to registry' });
  }
  if (opts.platform && opts.allPlatforms) throw new FerryError('E_USAGE', '--platform and --all-platforms cannot be used together');
  if (opts.allPlatforms && destinationCapabilities(dst).platforms === 'one') {
    throw new FerryError('E_USAGE', `${dst.transport} holds one platform per image, so --all-platforms cannot write it`, { hint: 'use --format oci-archive (or oci) to keep every platform, or pick one with --platform' });
  }
  if (parsedRefs.length > 1 && ((dst.transport === 'docker-archive' && dst.ref) || ((dst.transport === 'oci' || dst.transport === 'oci-archive') && dst.tag))) {
    throw new FerryError('E_USAGE', `${formatLocation(dst)} names one image, but ${parsedRefs.length} references were given`, { hint: 'drop the name from the destination; each image keeps its own reference' });
  }
  if (opts.noClobber) await checkNoClobber(dst);
  // Layers are hashed on worker threads (util/file-hasher.ts); boot them while the image resolves.
  prewarmFileHashers();
  const t0 = performance.now();
  return withSession(ctx, async (session) => {
    const refs = await Promise.all(parsedRefs.map((r, i) => qualifyShortName(sources[i]!, r, session, ctx)));
    const out = openDestination(dst, session, opts.noClobber ? { noClobber: true } : {});
    const readers = refs.map((ref) => throughCache(openSource({ transport: 'docker', ref }, session), ctx));
    const results = await copyImages(
      refs.map((ref, i) => ({ src: readers[i]!, names: namesFor(ref, dst, refs.length > 1) })),
      out,
      {
        platforms: opts.allPlatforms ? 'all' : [opts.platform ?? hostPlatform()],
        // The host platform is a default: a single-platform image of another one still pulls.
        ...(opts.platform ? { requirePlatform: true } : {}),
        jobs: opts.jobs ?? 4,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      },
    );
    // One image into a layout/archive named without a tag: report where it really went.
    const only = refs.length === 1 ? results[0]!.names.refName : undefined;
    const shown = (dst.transport === 'oci' || dst.transport === 'oci-archive') && !dst.tag && only ? { ...dst, tag: only } : dst;
    return {
      destination: formatLocation(shown),
      replaced: out instanceof ImageArchiveDestination && out.replaced,
      streamed: out instanceof ImageArchiveDestination && out.mode === 'stream',
      images: results.map((r, i) => {
        const served = servedByOf(readers[i]!);
        return { ...r, source: refs[i]!.toString(), ...(served ? { servedBy: served } : {}) };
      }),
      ms: performance.now() - t0,
    };
  });
}

/**
 * What each image is called at the destination. One image: the destination's own name if it
 * gives one, else the source tag. Several images: each keeps its reference (the familiar form,
 * e.g. `alpine:3.20`), so names never collide. Every local format also records the full
 * reference (repoTag → io.containerd.image.name), which ctr import and podman load name the
 * image by (layout-names.ts).
 */
function namesFor(ref: ImageReference, dst: Location, many: boolean): ImageNames {
  const tagged = ref.tag ? ref.withTag(ref.tag) : undefined;
  const names: ImageNames = {};
  if (dst.transport === 'docker') return names;
  if (dst.transport === 'docker-archive') {
    // The destination's name:tag wins; its familiar form goes to RepoTags (the writer derives it).
    const named = dst.ref ?? tagged;
    if (named) names.repoTag = named.toString();
    const refName = many ? (tagged ?? ref).familiar() : named?.tag;
    if (refName) names.refName = refName;
    return names;
  }
  const own = many ? undefined : dst.tag;
  const full = own !== undefined ? fullReference(own, ref) : tagged?.toString();
  if (full) names.repoTag = full;
  const refName = own ?? (many ? (tagged ?? ref).familiar() : ref.tag);
  if (refName) names.refName = refName;
  return names;
}
