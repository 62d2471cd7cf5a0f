import { parseRepository } from '../ref/index.js';
import { listTags, parseLocation, type Location } from '../transports/index.js';
import { type OpContext, withSession } from './context.js';

export interface TagsResult {
  repository: string;
  tags: string[];
}

/** Tags of a registry repository (all pages) or of a local layout/archive. */
export async function tags(location: string, ctx: OpContext): Promise<TagsResult> {
  const loc: Location = /^(oci|oci-archive|docker-archive):/.test(location)
    ? parseLocation(location)
    : { transport: 'docker', ref: parseRepository(location.replace(/^docker:\/\//, '')) };
  return withSession(ctx, async (session) => {
    const list = await listTags(loc, session, ctx.signal);
    const repository = loc.transport === 'docker' ? loc.ref.name() : `${loc.transport}:${loc.path}`;
    return { repository, tags: list };
  });
}
