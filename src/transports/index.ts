import { FerryError } from '../errors.js';
import type { Session } from '../registry/session.js';
import type { Location } from './location.js';
import { OciLayoutDestination, OciLayoutSource } from './oci-layout.js';
import { EndpointsRegistrySource, RegistrySource } from './registry.js';
export { servedByOf } from './registry.js';
import { parseReference, type ImageReference } from '../ref/index.js';
import type { Operation } from '../config/index.js';
import { RegistryDestination } from './registry-destination.js';
import { archiveCapabilities, DockerArchiveDestination, OciArchiveDestination } from './archive-destination.js';
import { DockerArchiveSource } from './docker-archive-source.js';
import { OciArchiveSource } from './oci-archive-source.js';
import type { DestinationCapabilities, ImageDestination, ImageSource } from './types.js';

export * from './location.js';
export type * from './types.js';

/**
 * The transport map, in one place (no side-effect registration). Each location kind names the
 * class that reads it and the class that writes it.
 */
export function openSource(loc: Location, session: Session, operation: Operation = 'pull'): ImageSource {
  switch (loc.transport) {
    case 'docker': {
      const ref = loc.ref;
      const at = (r: ImageReference): RegistrySource => new RegistrySource(session.registry(r, 'source').repository(r.repository), r);
      return new EndpointsRegistrySource(
        ref,
        async () => (await session.endpoints(ref, operation)).endpoints.map((e) => {
          const r = parseReference(e.reference, { defaultTag: false });
          return { label: `${r.registry}/${r.repository}`, mirror: e.mirror, rule: e.origin, source: at(r) };
        }),
        async () => {
          const origin = (await session.endpoints(ref, 'tags')).endpoints.find((e) => !e.mirror);
          return at(origin ? parseReference(origin.reference, { defaultTag: false }) : ref);
        },
        session.opts.debug,
      );
    }
    case 'oci':
      return new OciLayoutSource(loc.path, loc.tag);
    case 'oci-archive':
      return new OciArchiveSource(loc.path, loc.tag);
    case 'docker-archive':
      return new DockerArchiveSource(loc.path, { ...(loc.ref ? { ref: loc.ref } : {}), ...(loc.index !== undefined ? { index: loc.index } : {}) });
  }
}

export interface DestinationOptions {
  chunkSize?: number;
  warn?: (msg: string) => void;
  /** Archive files: refuse to replace a regular file already at the path. */
  noClobber?: boolean;
}

/** What the destination at `loc` can hold and do, known before it is opened. */
export function destinationCapabilities(loc: Location): DestinationCapabilities {
  switch (loc.transport) {
    case 'docker':
      return RegistryDestination.capabilities;
    case 'oci':
      return OciLayoutDestination.capabilities;
    case 'oci-archive':
    case 'docker-archive':
      return archiveCapabilities(loc.transport);
  }
}

export function openDestination(loc: Location, session: Session, opts: DestinationOptions = {}): ImageDestination {
  switch (loc.transport) {
    case 'docker':
      return new RegistryDestination(session.registry(loc.ref, 'destination').repository(loc.ref.repository), {
        ref: loc.ref,
        preflight: async () => void (await session.endpoints(loc.ref, 'push')),
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(opts.warn ? { warn: opts.warn } : {}),
      });
    case 'oci':
      return new OciLayoutDestination(loc.path);
    case 'oci-archive':
      return new OciArchiveDestination(loc.path, opts.noClobber ? { noClobber: true } : {});
    case 'docker-archive':
      return new DockerArchiveDestination(loc.path, opts.noClobber ? { noClobber: true } : {});
  }
}

/** Tags of a repository or of a local layout. */
export async function listTags(loc: Location, session: Session, signal?: AbortSignal): Promise<string[]> {
  const src = openSource(loc, session, 'tags') as ImageSource & { listTags?: (s?: AbortSignal) => Promise<string[]> };
  try {
    if (!src.listTags) throw new FerryError('E_UNSUPPORTED', `${loc.transport}: locations have no tags`);
    return await src.listTags(signal);
  } finally {
    await src.close();
  }
}
