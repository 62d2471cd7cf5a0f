/**
 * Is a blob there, and can it be linked from another repository instead of uploaded
 * (protocol.md §1.5)? Both ask for the push scopes of the destination repository.
 */
import { isAbortError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { HttpResponse } from '../http/types.js';
import type { RepositoryClient } from './client.js';
import { pushScopes } from './push-util.js';
import { sessionFrom, type SessionTracker, type UploadSession } from './upload-session.js';

type BlobRef = Pick<Descriptor, 'digest' | 'size'>;

/**
 * HEAD `/v2/<repo>/blobs/<digest>` with push scopes: true on 200 with the descriptor's size (or no
 * Content-Length). Redirects are not followed: distribution with S3/GCS storage redirects HEADs to
 * a URL signed for GET only (the storage answers 403), and the redirect already says the blob
 * exists. Anything else is false: the upload that follows reports a real error with its body.
 */
export async function blobExists(repo: RepositoryClient, d: BlobRef, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  const res = await repo.registry.request({
    method: 'HEAD', url: repo.registry.url(`/v2/${repo.name}/blobs/${d.digest}`), signal: opts.signal,
    scopes: pushScopes(repo), followRedirects: false,
  });
  await res.dump();
  if (res.status === 200) {
    const n = res.header('content-length');
    return n === undefined || Number(n) === d.size;
  }
  return [301, 302, 303, 307, 308].includes(res.status) && res.header('location') !== undefined;
}

/** What a mount attempt gave: mounted, or not (with the session a 202 opened, to upload into). */
export type MountResult = { mounted: true } | { mounted: false; session?: UploadSession };

/**
 * Cross-repository mount: `POST /v2/<repo>/blobs/uploads/?mount=<d>&from=<fromRepo>` with scopes
 * `repository:<repo>:pull,push` + `repository:<from>:pull`. Only for a source repository on the
 * same registry (never across registries, go-containerregistry#219).
 * - 201: mounted, no bytes move.
 * - 202: not mounted, and the registry opened an upload session. Choice: the session is returned
 *   (and tracked) so the caller uploads into it rather than POSTing again (distribution-spec);
 *   the caller DELETEs it (cancelUpload) if it tries another candidate instead.
 * - Anything else, including errors: false without a session, never a failed push. Docker Hub
 *   answers 401 when `from` is inaccessible (go-containerregistry#1681), some registries 403
 *   (containerd#14086), Quay fails instead of 202; a token server may refuse the `from` scope.
 *   Only an abort is rethrown.
 */
export async function mountBlob(
  repo: RepositoryClient, d: BlobRef, fromRepo: string, opts: { signal?: AbortSignal; tracker?: SessionTracker } = {},
): Promise<MountResult> {
  const url = repo.registry.url(`/v2/${repo.name}/blobs/uploads/`);
  url.search = `?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(fromRepo)}`;
  let res: HttpResponse;
  try {
    res = await repo.registry.request({
      method: 'POST', url, signal: opts.signal, headers: { 'content-length': '0' }, body: new Uint8Array(0),
      scopes: [...pushScopes(repo), `repository:${fromRepo}:pull`],
    });
  } catch (e) {
    if (isAbortError(e) || opts.signal?.aborted) throw e;
    return { mounted: false };
  }
  await res.dump();
  if (res.status === 201) return { mounted: true };
  if (res.status === 202 && res.header('location')) {
    const session = sessionFrom(res);
    opts.tracker?.add(session);
    return { mounted: false, session };
  }
  return { mounted: false };
}

