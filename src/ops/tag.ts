import { FerryError } from '../errors.js';
import { deleteManifest, putManifest } from '../registry/manifest-put.js';
import { parseReference, type ImageReference } from '../ref/index.js';
import { type OpContext, withSession } from './context.js';

export interface TagResult {
  source: string;
  digest: string;
  mediaType: string;
  tags: string[];
}

function registryRef(input: string, what: string): ImageReference {
  const ref = parseReference(input.replace(/^docker:\/\//, ''));
  if (/^(oci|oci-archive|docker-archive):/.test(input)) throw new FerryError('E_USAGE', `${what} works on registry images, not "${input}"`);
  return ref;
}

/**
 * Adds tags to an image by manifest PUT alone (no blob traffic): the manifest bytes are fetched
 * (verified) and put verbatim under each new tag, so every tag names the same digest.
 */
export async function tag(source: string, newTags: string[], ctx: OpContext): Promise<TagResult> {
  if (newTags.length === 0) throw new FerryError('E_USAGE', 'tag needs at least one new tag');
  const ref = registryRef(source, 'tag');
  const targets = newTags.map((t) => {
    try {
      return ref.withTag(t).tag!;
    } catch (e) {
      throw new FerryError('E_BAD_REFERENCE', `invalid tag "${t}": ${(e as Error).message.replace(/^invalid reference "[^"]*": /, '')}`, { hint: 'a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; tag adds tags within the same repository' });
    }
  });
  return withSession(ctx, async (session) => {
    await session.endpoints(ref, 'tag'); // blocked → E_BLOCKED; insecure hosts learnt before the client exists
    const repo = session.registry(ref).repository(ref.repository);
    const got = await repo.getManifest(ref.reference(), ctx.signal ? { signal: ctx.signal } : {});
    for (const t of targets) {
      await putManifest(repo, got.bytes, got.descriptor.mediaType, t, { ...(ctx.signal ? { signal: ctx.signal } : {}), ...(ctx.warn ? { warn: ctx.warn } : {}) });
    }
    return { source: ref.toString(), digest: got.descriptor.digest, mediaType: got.descriptor.mediaType, tags: targets };
  });
}

export interface DeleteResult {
  reference: string;
  digest: string;
  /** True when a tag was resolved first: every tag on that manifest is gone with it. */
  resolvedFromTag: boolean;
}

/**
 * Deletes a manifest by digest (distribution-spec: deleting by tag is not portable). A tag is
 * resolved first; the registry then removes every tag pointing at that manifest.
 */
export async function deleteImage(reference: string, ctx: OpContext): Promise<DeleteResult> {
  const ref = registryRef(reference, 'delete');
  return withSession(ctx, async (session) => {
    await session.endpoints(ref, 'delete');
    const repo = session.registry(ref).repository(ref.repository);
    let digest = ref.digest as string | undefined;
    if (!digest) {
      const head = await repo.headManifest(ref.reference(), ctx.signal);
      digest = head?.digest ?? (await repo.getManifest(ref.reference(), ctx.signal ? { signal: ctx.signal } : {})).descriptor.digest;
    }
    await deleteManifest(repo, digest, ctx.signal ? { signal: ctx.signal } : {});
    return { reference: ref.toString(), digest, resolvedFromTag: !ref.digest };
  });
}
