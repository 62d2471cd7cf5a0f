import { FerryError } from '../errors.js';
import { type ImageReference, parseReference } from '../ref/index.js';

export type TransportName = 'docker' | 'oci' | 'oci-archive' | 'docker-archive';

export type Location =
  | { transport: 'docker'; ref: ImageReference }
  | { transport: 'oci'; path: string; tag?: string }
  | { transport: 'oci-archive'; path: string; tag?: string }
  | { transport: 'docker-archive'; path: string; ref?: ImageReference; index?: number };

const LOCAL = ['oci', 'oci-archive', 'docker-archive'] as const;

/**
 * Parses a location as the CLI accepts it: a bare image reference or `docker://REF` is a
 * registry; `oci:DIR[:tag]`, `oci-archive:FILE[:tag]`, `docker-archive:FILE[:name:tag|@index]`
 * are local. A prefix is a transport only when it exactly names one, so `localhost:5000/x`
 * stays a registry reference. Paths cannot contain ':' (as in containers/image).
 */
export function parseLocation(input: string): Location {
  if (input.startsWith('docker://')) return { transport: 'docker', ref: parseReference(input.slice('docker://'.length)) };
  const colon = input.indexOf(':');
  const prefix = colon > 0 ? input.slice(0, colon) : '';
  if (!(LOCAL as readonly string[]).includes(prefix)) {
    return { transport: 'docker', ref: parseReference(input) };
  }
  const rest = input.slice(colon + 1);
  const sep = rest.indexOf(':');
  const path = sep < 0 ? rest : rest.slice(0, sep);
  const sel = sep < 0 ? undefined : rest.slice(sep + 1);
  if (!path) throw new FerryError('E_BAD_REFERENCE', `invalid location "${input}": missing path after "${prefix}:"`, { hint: `use ${prefix}:PATH${prefix === 'docker-archive' ? '[:name:tag]' : '[:tag]'}` });
  if (prefix === 'docker-archive') {
    if (sel === undefined || sel === '') return { transport: 'docker-archive', path };
    if (sel.startsWith('@')) {
      const n = Number(sel.slice(1));
      if (!Number.isSafeInteger(n) || n < 0) throw new FerryError('E_BAD_REFERENCE', `invalid location "${input}": "@${sel.slice(1)}" is not an image index`);
      return { transport: 'docker-archive', path, index: n };
    }
    return { transport: 'docker-archive', path, ref: parseReference(sel) };
  }
  if (sel !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9._:@/+-]*$/.test(sel)) {
    throw new FerryError('E_BAD_REFERENCE', `invalid location "${input}": bad tag "${sel}"`);
  }
  const t = prefix as 'oci' | 'oci-archive';
  return sel ? { transport: t, path, tag: sel } : { transport: t, path };
}

export function formatLocation(l: Location): string {
  switch (l.transport) {
    case 'docker':
      return l.ref.toString();
    case 'oci':
    case 'oci-archive':
      return `${l.transport}:${l.path}${l.tag ? `:${l.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${l.path}${l.ref ? `:${l.ref.familiar()}` : l.index !== undefined ? `:@${l.index}` : ''}`;
  }
}
