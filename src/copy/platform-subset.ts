import type { Descriptor } from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { parseManifest } from '../oci/manifest.js';
import type { Platform } from '../oci/platform.js';
import { checkImagePlatform, pickPlatform, readConfig } from './platform-select.js';
import type { Readable } from 'node:stream';
import type { ImageSource, SourceOrigin } from '../transports/types.js';

/**
 * Wraps a source whose root is an index so that it presents a NEW index holding only the wanted
 * platforms (copy --platform A --platform B). The new index keeps every other field of the
 * original (mediaType, annotations) and the chosen entries verbatim; it is never sparse (every
 * entry it lists is copied). Its digest differs from the source's: `changed` says so.
 */
export class PlatformSubsetSource implements ImageSource {
  readonly description: string;
  readonly origin: SourceOrigin | undefined;
  private index: { descriptor: Descriptor; bytes: Uint8Array } | undefined;
  changed: { from: Descriptor; to: Descriptor } | undefined;

  constructor(private readonly inner: ImageSource, private readonly wanted: Platform[]) {
    this.description = inner.description;
    this.origin = inner.origin;
  }

  async resolve(signal?: AbortSignal): Promise<Descriptor> {
    const root = await this.inner.resolve(signal);
    const bytes = await this.inner.fetchManifest(root, signal);
    const m = parseManifest(bytes, root.mediaType, `manifest of ${this.inner.description}`);
    if (m.kind !== 'index') {
      // A single image has no platforms to choose from, but it must be one of those asked for.
      checkImagePlatform(this.inner.description, await readConfig(this.inner, m.config, signal), this.wanted, !this.inner.origin);
      return root;
    }
    const picked: Descriptor[] = [];
    for (const w of this.wanted) {
      const hit = pickPlatform(this.inner.description, m, w, !this.inner.origin);
      if (!picked.includes(hit)) picked.push(hit);
    }
    const doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests: unknown[] };
    const keep = new Set<string>(picked.map((p) => p.digest));
    doc.manifests = (doc.manifests as Array<{ digest: string }>).filter((e) => keep.has(e.digest));
    if (doc.manifests.length === m.manifests.length) return root;
    const out = Buffer.from(JSON.stringify(doc));
    const descriptor: Descriptor = { mediaType: root.mediaType, digest: digestOf(out), size: out.length };
    this.index = { descriptor, bytes: out };
    this.changed = { from: root, to: descriptor };
    return descriptor;
  }

  async fetchManifest(d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.index && d.digest === this.index.descriptor.digest) return this.index.bytes;
    return this.inner.fetchManifest(d, signal);
  }

  fetchBlob(d: Descriptor, opts?: { offset?: number; signal?: AbortSignal }): Promise<Readable> {
    return this.inner.fetchBlob(d, opts);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
