import { FerryError } from '../errors.js';
import type { Session } from '../registry/session.js';
import type { Location } from './location.js';
import { OciLayoutDestination, OciLayoutSource } from './oci-layout.js';
import { RegistrySource } from './registry.js';
import type { ImageDestination, ImageSource } from './types.js';

export * from './location.js';
export type * from './types.js';

/**
 * The transport map, in one place (no side-effect registration). Each location kind names the
 * class that reads it and the class that writes it.
 */
export function openSource(loc: Location, session: Session): ImageSource {
  switch (loc.transport) {
    case 'docker':
      return new RegistrySource(session.registry(loc.ref).repository(loc.ref.repository), loc.ref);
    case 'oci':
      return new OciLayoutSource(loc.path, loc.tag);
    default:
      throw new FerryError('E_UNSUPPORTED', `reading ${loc.transport}: locations is not supported yet`);
  }
}

export function openDestination(loc: Location, _session: Session): ImageDestination {
  switch (loc.transport) {
    case 'oci':
      return new OciLayoutDestination(loc.path);
    default:
      throw new FerryError('E_UNSUPPORTED', `writing to ${loc.transport}: locations is not supported yet`);
  }
}

/** Tags of a repository or of a local layout. */
export async function listTags(loc: Location, session: Session, signal?: AbortSignal): Promise<string[]> {
  const src = openSource(loc, session) as ImageSource & { listTags?: (s?: AbortSignal) => Promise<string[]> };
  if (!src.listTags) throw new FerryError('E_UNSUPPORTED', `${loc.transport}: locations have no tags`);
  return src.listTags(signal);
}
