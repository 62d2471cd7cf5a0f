import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageReference } from '../ref/index.js';
import type { RepositoryClient } from '../registry/client.js';
import type { ImageSource, SourceOrigin } from './types.js';
import { isAbortError, isFerryError } from '../errors.js';

/**
 * A registry repository as an image source. Tags resolve by HEAD (free on Docker Hub) and the
 * manifest is then fetched by digest, so the bytes are checked against the digest the registry
 * named; registries whose HEAD lacks the digest header fall back to GET by tag.
 */
export class RegistrySource implements ImageSource {
  readonly description: string;
  readonly origin: SourceOrigin;
  private readonly cached = new Map<string, Uint8Array>();

  readonly pinnedDigest: string | undefined;

  constructor(private readonly repo: RepositoryClient, readonly ref: ImageReference) {
    this.pinnedDigest = ref.digest;
    this.description = ref.toString();
    this.origin = { registry: ref.registry, repository: ref.repository };
  }

  async resolve(signal?: AbortSignal): Promise<Descriptor> {
    const r = this.ref.reference();
    if (!this.ref.digest) {
      const head = await this.repo.headManifest(r, signal);
      if (head) return head;
    }
    const got = await this.repo.getManifest(r, { signal });
    this.cached.set(got.descriptor.digest, got.bytes);
    return got.descriptor;
  }

  async fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    const hit = this.cached.get(d.digest);
    if (hit) return hit;
    const got = await this.repo.getManifest(d.digest, { expected: d, signal });
    return got.bytes;
  }

  fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    return this.repo.getBlob(d, opts);
  }

  listTags(signal?: AbortSignal): Promise<string[]> {
    return this.repo.listTags(signal);
  }

  async close(): Promise<void> {}
}

/** One place an image can be read from: a mirror or the origin, as a registry source. */
export interface EndpointSource {
  /** `host/repository`, as shown to the user. */
  label: string;
  mirror: boolean;
  /** Where the rule came from (`file:line`, `--mirror`, `reference`). */
  rule: string;
  source: RegistrySource;
}

/** Failures that make ferry try the next endpoint: the mirror is down, refuses, or lacks it. */
const FALLS_THROUGH = new Set(['E_NETWORK', 'E_TLS', 'E_REGISTRY', 'E_NOT_FOUND', 'E_UNAUTHORIZED', 'E_DENIED', 'E_RATE_LIMITED', 'E_UNSUPPORTED']);

/**
 * A registry image read through its endpoints (containers/image's rules, via config/endpoints.ts):
 * each mirror in order, then the origin. A network failure, a 5xx, a refusal or a missing
 * manifest or blob moves to the next endpoint; anything about the bytes themselves (a digest or
 * size mismatch, a manifest that does not parse) is final, so a mirror serving other bytes for a
 * digest is refused, never replaced by a different image. Manifests and blobs are asked first of
 * the endpoint that resolved the reference. `servedBy` records, per digest, the endpoint that
 * answered; `--debug` says it as it happens. Tags are never listed through mirrors.
 */
/** digest → endpoint that served it, when `src` read through more than one endpoint; else undefined. */
export function servedByOf(src: ImageSource): Record<string, string> | undefined {
  // Through the blob cache (cached-source.ts): what it had is served by "cache".
  const cached = (src as { inner?: ImageSource; fromCache?: Set<string> });
  const inner = cached.inner ?? src;
  const out: Record<string, string> = inner instanceof EndpointsRegistrySource ? Object.fromEntries(inner.servedBy) : {};
  for (const d of cached.fromCache ?? []) out[d] = 'cache';
  return Object.keys(out).length > 0 ? out : undefined;
}

export class EndpointsRegistrySource implements ImageSource {
  readonly description: string;
  readonly origin: SourceOrigin;
  /** digest → endpoint label that served it. */
  readonly servedBy = new Map<string, string>();
  readonly pinnedDigest: string | undefined;
  private list: Promise<EndpointSource[]> | undefined;
  private preferred: EndpointSource | undefined;

  constructor(
    readonly ref: ImageReference,
    private readonly plan: () => Promise<EndpointSource[]>,
    private readonly origins: () => Promise<RegistrySource>,
    private readonly debug?: (line: string) => void,
  ) {
    this.pinnedDigest = ref.digest;
    this.description = ref.toString();
    this.origin = { registry: ref.registry, repository: ref.repository };
  }

  /** True when more than the origin was configured (mirrors or a rewrite). */
  async mirrored(): Promise<boolean> {
    const l = await this.endpoints();
    return l.length > 1 || l.some((e) => e.mirror);
  }

  private endpoints(): Promise<EndpointSource[]> {
    this.list ??= this.plan();
    return this.list;
  }

  private async attempt<T>(what: string, f: (s: RegistrySource) => Promise<T>, digest?: (r: T) => string | undefined): Promise<T> {
    const all = await this.endpoints();
    const order = this.preferred ? [this.preferred, ...all.filter((e) => e !== this.preferred)] : all;
    for (const [i, e] of order.entries()) {
      try {
        const r = await f(e.source);
        const d = digest?.(r);
        if (all.length > 1) {
          if (d) this.servedBy.set(d, e.label);
          this.debug?.(`${what}${d ? ` ${d}` : ''} served by ${e.mirror ? 'mirror ' : ''}${e.label} (${e.rule})`);
        }
        return r;
      } catch (err) {
        const next = order[i + 1];
        if (!next || isAbortError(err) || !isFerryError(err) || !FALLS_THROUGH.has(err.code)) throw err;
        this.debug?.(`${what}: ${e.mirror ? 'mirror ' : ''}${e.label} failed (${err.message.split('\n', 1)[0]}); trying ${next.mirror ? 'mirror ' : ''}${next.label}`);
      }
    }
    throw new Error('unreachable');
  }

  async resolve(signal?: AbortSignal): Promise<Descriptor> {
    const all = await this.endpoints();
    let chosen: EndpointSource | undefined;
    const d = await this.attempt(`manifest ${this.ref.toString()}`, async (s) => {
      const r = await s.resolve(signal);
      chosen = all.find((e) => e.source === s);
      return r;
    }, (r) => r.digest);
    this.preferred = chosen;
    return d;
  }

  fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    return this.attempt('manifest', (s) => s.fetchManifest(d, signal), () => d.digest);
  }

  fetchBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    return this.attempt('blob', (s) => s.fetchBlob(d, opts), () => d.digest);
  }

  async listTags(signal?: AbortSignal): Promise<string[]> {
    return (await this.origins()).listTags(signal);
  }

  async close(): Promise<void> {}
}
