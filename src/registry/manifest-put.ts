/**
 * Manifest push and delete (protocol.md §1.2 "PUT" and "DELETE").
 *
 * Contracts:
 * - Bytes go verbatim (re-serialising JSON would change the digest); `Content-Type` is the bare
 *   media type (no parameters; the registry must match it against the body's `mediaType`).
 * - Success is any 2xx (201 per spec); `Location` is not required (ECR omits it,
 *   oras-project/rust-oci-client#33).
 * - `Docker-Content-Digest`, when present and well-formed, must equal the digest of the bytes
 *   (computed with the header's algorithm); a different one means the registry stored something
 *   else and fails with E_DIGEST_MISMATCH. Absent is fine; ill-formed (Huawei sends bare hex) is
 *   ignored with a warning unless it is the bare hex of the right digest.
 * - Errors name `<registry>/<repository>`: MANIFEST_INVALID / MANIFEST_BLOB_UNKNOWN → E_REGISTRY
 *   with the registry's message (also when a registry sends them with 404), 401/403 →
 *   E_UNAUTHORIZED / E_DENIED, ECR's UNSUPPORTED → E_UNSUPPORTED.
 */
import { FerryError } from '../errors.js';
import { type Digest, digestOf, hashAlgorithmFor, isDigest } from '../oci/digest.js';
import { bareMediaType } from '../oci/media-types.js';
import type { RepositoryClient } from './client.js';
import { failWrite, pushScopes, repoSubject } from './push-util.js';

export interface PutManifestOptions {
  signal?: AbortSignal;
  /** Receives non-fatal oddities (an ill-formed Docker-Content-Digest). */
  warn?: (msg: string) => void;
}

const BLOB_CODES = ['MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'MANIFEST_UNVERIFIED'];

/**
 * `PUT /v2/<repo>/manifests/<ref>` (`ref` = tag or digest). Returns the sha256 digest of the bytes
 * as sent (the registry's identity for them when it answered without a digest header).
 */
export async function putManifest(
  repo: RepositoryClient, bytes: Uint8Array, mediaType: string, ref: string, opts: PutManifestOptions = {},
): Promise<Digest> {
  const subject = repoSubject(repo);
  const shown = isDigest(ref) ? `@${ref}` : `:${ref}`;
  const res = await repo.registry.request({
    method: 'PUT', url: repo.registry.url(`/v2/${repo.name}/manifests/${ref}`), signal: opts.signal, scopes: pushScopes(repo),
    headers: { 'content-type': bareMediaType(mediaType), 'content-length': String(bytes.byteLength) }, body: bytes,
  });
  if (res.status < 200 || res.status > 299) {
    const err = await failWrite(repo, res, { action: `pushing manifest ${shown}`, subject });
    if (err.code === 'E_NOT_FOUND' && err.registryCodes.some((c) => BLOB_CODES.includes(c))) {
      throw new FerryError('E_REGISTRY', err.message, { status: err.status, registryCodes: err.registryCodes, ...(err.url ? { url: err.url } : {}) });
    }
    throw err;
  }
  await res.dump();
  const sha256 = digestOf(bytes);
  const header = res.header('docker-content-digest')?.trim();
  if (!header) return sha256;
  if (isDigest(header)) {
    let alg;
    try {
      alg = hashAlgorithmFor(header);
    } catch {
      opts.warn?.(`${subject}${shown}: registry answered with a Docker-Content-Digest of an unknown algorithm (${header}); not checked`);
      return sha256;
    }
    const ours = digestOf(bytes, alg);
    if (ours !== header) {
      throw new FerryError('E_DIGEST_MISMATCH', `${subject}${shown}: the registry stored the manifest as ${header}, but the bytes sent have digest ${ours}`, {
        hint: 'the registry rewrote the manifest; references to it by digest will not resolve',
      });
    }
    return sha256;
  }
  if (header !== sha256.slice('sha256:'.length)) {
    opts.warn?.(`${subject}${shown}: ignoring ill-formed Docker-Content-Digest "${header.slice(0, 100)}" in the registry's answer`);
  }
  return sha256;
}

/**
 * `DELETE /v2/<repo>/manifests/<digest>` → 202 (any 2xx accepted). Scope `repository:<repo>:delete`
 * (what distribution checks for DELETE; Quay refuses a token with `delete` and wants push, see
 * protocol.md §1.2: the challenge's own scope is merged in by the auth middleware on a 401).
 * 405, or UNSUPPORTED in the body (deletion disabled) → E_UNSUPPORTED with the registry's message;
 * 404 → E_NOT_FOUND.
 */
export async function deleteManifest(repo: RepositoryClient, digest: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!isDigest(digest)) throw new FerryError('E_BAD_REFERENCE', `manifests are deleted by digest, not "${digest}"`);
  const res = await repo.registry.request({
    method: 'DELETE', url: repo.registry.url(`/v2/${repo.name}/manifests/${digest}`), signal: opts.signal,
    scopes: [`repository:${repo.name}:delete`],
  });
  if (res.status >= 200 && res.status <= 299) {
    await res.dump();
    return;
  }
  throw await failWrite(repo, res, {
    action: `deleting manifest @${digest}`, subject: repoSubject(repo), notFound: 'manifest not found',
  });
}
