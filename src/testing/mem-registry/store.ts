/** In-memory content store: per-repository blobs, manifests (verbatim bytes) and tags; upload sessions. */
import { algorithmOf, digestOf } from './util.js';
import type { StoredManifest } from './types.js';

interface RepoData {
  blobs: Map<string, Buffer>;
  manifests: Map<string, { bytes: Buffer; mediaType: string }>;
  tags: Map<string, string>;
}

export interface UploadSession {
  id: string;
  repo: string;
  chunks: Buffer[];
  size: number;
  /** A chunk shorter than OCI-Chunk-Min-Length was received; it must have been the last one. */
  shortChunk: boolean;
}

export class Store {
  readonly repos = new Map<string, RepoData>();
  readonly uploads = new Map<string, UploadSession>();

  private repo(name: string, create: true): RepoData;
  private repo(name: string, create?: false): RepoData | undefined;
  private repo(name: string, create = false): RepoData | undefined {
    let r = this.repos.get(name);
    if (!r && create) {
      r = { blobs: new Map(), manifests: new Map(), tags: new Map() };
      this.repos.set(name, r);
    }
    return r;
  }

  exists(name: string): boolean {
    const r = this.repos.get(name);
    return !!r && (r.blobs.size > 0 || r.manifests.size > 0 || r.tags.size > 0);
  }

  repoNames(): string[] {
    return [...this.repos.keys()].filter((n) => this.exists(n)).sort();
  }

  // ---- blobs ---------------------------------------------------------------------------------

  putBlob(repo: string, bytes: Uint8Array, digest?: string): string {
    const d = digest ?? digestOf(bytes);
    this.repo(repo, true).blobs.set(d, Buffer.from(bytes));
    return d;
  }

  getBlob(repo: string, digest: string): Buffer | undefined {
    return this.repo(repo)?.blobs.get(digest);
  }

  deleteBlob(repo: string, digest: string): boolean {
    return this.repo(repo)?.blobs.delete(digest) ?? false;
  }

  // ---- manifests -----------------------------------------------------------------------------

  /** Stores verbatim; `ref` is a tag or a digest (which must match the bytes). Returns the digest. */
  putManifest(repo: string, ref: string, bytes: Uint8Array, mediaType: string): string {
    const isDigest = ref.includes(':');
    const digest = digestOf(bytes, isDigest ? algorithmOf(ref) : 'sha256');
    if (isDigest && digest !== ref) throw new Error(`manifest digest ${digest} does not match ${ref}`);
    const r = this.repo(repo, true);
    r.manifests.set(digest, { bytes: Buffer.from(bytes), mediaType });
    if (!isDigest) r.tags.set(ref, digest);
    return digest;
  }

  getManifest(repo: string, ref: string): StoredManifest | undefined {
    const r = this.repo(repo);
    if (!r) return undefined;
    const digest = ref.includes(':') ? ref : r.tags.get(ref);
    if (!digest) return undefined;
    const m = r.manifests.get(digest);
    return m ? { bytes: m.bytes, mediaType: m.mediaType, digest } : undefined;
  }

  hasManifest(repo: string, digest: string): boolean {
    return this.repo(repo)?.manifests.has(digest) ?? false;
  }

  /** By digest: removes the manifest and every tag pointing at it. By tag: removes the tag. */
  deleteManifest(repo: string, ref: string): boolean {
    const r = this.repo(repo);
    if (!r) return false;
    if (!ref.includes(':')) return r.tags.delete(ref);
    if (!r.manifests.delete(ref)) return false;
    for (const [t, d] of r.tags) if (d === ref) r.tags.delete(t);
    return true;
  }

  tags(repo: string): string[] {
    return [...(this.repo(repo)?.tags.keys() ?? [])].sort();
  }
}
