import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import type { ImageReference } from '../ref/index.js';
import type { RepositoryClient } from '../registry/client.js';
import type { ImageSource, SourceOrigin } from './types.js';

/**
 * A registry repository as an image source. Tags resolve by HEAD (free on Docker Hub) and the
 * manifest is then fetched by digest, so the bytes are checked against the digest the registry
 * named; registries whose HEAD lacks the digest header fall back to GET by tag.
 */
export class RegistrySource implements ImageSource {
  readonly description: string;
  readonly origin: SourceOrigin;
  private readonly cached = new Map<string, Uint8Array>();

  constructor(private readonly repo: RepositoryClient, readonly ref: ImageReference) {
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
