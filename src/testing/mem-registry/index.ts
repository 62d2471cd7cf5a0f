/**
 * In-process OCI distribution registry (distribution-spec v1.1) for fast unit tests and fault
 * injection. Protocol-faithful enough to exercise ferry's client code realistically: verbatim
 * manifest storage, manifest reference checks, upload sessions with an opaque HMAC'd `_state`
 * (stale Locations are refused), chunk ordering (416), OCI-Chunk-Min-Length, cross-repo mounts,
 * tag pagination with `Link`, `Range` on blobs, Docker Hub's pull limit (`rateLimit`: headers, 429 at 0),
 * Basic and Bearer-token auth with a built-in token
 * endpoint, and programmable faults. Not implemented: referrers API (404 → clients use the tag
 * fallback), schema1 manifests (rejected), `?tag=` on manifest PUT.
 *
 * Extra route: `GET /_storage/<digest>` acts as object storage for redirect tests — it serves any
 * stored blob without auth and answers 400 (S3-style "Only one auth mechanism allowed") when the
 * request carries an Authorization header.
 *
 * Implementation lives in the sibling files. Shipped in dist/ so `npm run demo` works without the
 * real registry binary; it is test equipment, not part of the ferry CLI.
 */
export type {
  Fault, MemAuthMode, MemRateLimit, MemRegistry, MemRegistryOptions, MemRequestRecord, MemUser, StoredManifest,
} from './types.js';
export { startMemRegistry } from './server.js';
export { seedImage, deterministicBytes } from './seed.js';
export type { SeedOptions, SeedPlatform, SeedResult } from './seed.js';
