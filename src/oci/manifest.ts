import { FerryError } from '../errors.js';
import type { Descriptor } from './descriptor.js';
import { isDigest } from './digest.js';
import { bareMediaType, isImageManifestType, isIndexType, isSchema1, MT } from './media-types.js';

export interface ImageManifest {
  kind: 'image';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export type Manifest = ImageManifest | ImageIndex;

/**
 * Parses manifest bytes (kept verbatim by callers; this only reads them). The media type comes
 * from the body's `mediaType`, else the transport's Content-Type, else the shape (an OCI manifest
 * may omit mediaType). A body mediaType that contradicts the Content-Type is rejected
 * (distribution-spec "Pulling manifests").
 */
export function parseManifest(bytes: Uint8Array, contentType?: string, what = 'manifest'): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new FerryError('E_BAD_MANIFEST', `${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new FerryError('E_BAD_MANIFEST', `${what} is not a JSON object`);
  }
  const o = doc as Record<string, unknown>;
  const bodyType = typeof o['mediaType'] === 'string' ? (o['mediaType'] as string) : undefined;
  const ct = bareMediaType(contentType);
  const transportType = ct && ct !== 'application/json' && ct !== 'application/octet-stream' && ct !== 'text/plain' ? ct : undefined;
  if (bodyType && transportType && bodyType !== transportType && isKnown(transportType)) {
    throw new FerryError('E_BAD_MANIFEST', `${what} says mediaType ${bodyType} but was served as ${transportType}`);
  }
  let mt = bodyType ?? transportType;
  if (!mt) {
    if (Array.isArray(o['manifests'])) mt = MT.ociIndex;
    else if (o['config'] && Array.isArray(o['layers'])) mt = MT.ociManifest;
  }
  if (o['schemaVersion'] === 1 || isSchema1(mt)) {
    throw new FerryError('E_UNSUPPORTED', `${what} is a Docker schema 1 manifest, which ferry does not support`, {
      hint: 'schema 1 images are deprecated; re-push the image with a current client',
    });
  }
  if (isIndexType(mt)) {
    if (!Array.isArray(o['manifests'])) throw new FerryError('E_BAD_MANIFEST', `${what}: index has no "manifests" array`);
    const m: ImageIndex = { kind: 'index', mediaType: mt!, manifests: (o['manifests'] as unknown[]).map((d, i) => descriptor(d, `${what}.manifests[${i}]`)) };
    copyOptional(o, m, what);
    return m;
  }
  if (isImageManifestType(mt)) {
    if (!Array.isArray(o['layers'])) throw new FerryError('E_BAD_MANIFEST', `${what}: image manifest has no "layers" array`);
    const m: ImageManifest = {
      kind: 'image',
      mediaType: mt!,
      config: descriptor(o['config'], `${what}.config`),
      layers: (o['layers'] as unknown[]).map((d, i) => descriptor(d, `${what}.layers[${i}]`)),
    };
    if (typeof o['artifactType'] === 'string') m.artifactType = o['artifactType'];
    copyOptional(o, m, what);
    return m;
  }
  throw new FerryError('E_BAD_MANIFEST', `${what} has unknown media type ${mt ?? '(none)'}`);
}

function isKnown(mt: string): boolean {
  return isIndexType(mt) || isImageManifestType(mt) || isSchema1(mt);
}

function copyOptional(o: Record<string, unknown>, m: Manifest, what: string): void {
  if (o['subject'] !== undefined) m.subject = descriptor(o['subject'], `${what}.subject`);
  if (o['annotations'] && typeof o['annotations'] === 'object') m.annotations = o['annotations'] as Record<string, string>;
}

/** Validates a descriptor object; size must be a non-negative safe integer and digest well-formed. */
export function descriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw new FerryError('E_BAD_MANIFEST', `${where} is not a descriptor object`);
  const d = v as Record<string, unknown>;
  if (typeof d['digest'] !== 'string' || !isDigest(d['digest'])) {
    throw new FerryError('E_BAD_MANIFEST', `${where} has an invalid digest ${JSON.stringify(d['digest'])}`);
  }
  if (typeof d['size'] !== 'number' || !Number.isSafeInteger(d['size']) || d['size'] < 0) {
    throw new FerryError('E_BAD_MANIFEST', `${where} has an invalid size ${JSON.stringify(d['size'])}`);
  }
  if (typeof d['mediaType'] !== 'string') throw new FerryError('E_BAD_MANIFEST', `${where} has no mediaType`);
  return d as unknown as Descriptor;
}

/** The image config fields ferry shows (image-spec config.md). */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    Labels?: Record<string, string> | null;
    WorkingDir?: string;
    User?: string;
    ExposedPorts?: Record<string, unknown>;
  };
  rootfs?: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8'));
    if (typeof v !== 'object' || v === null) throw new Error('not an object');
    return v as ImageConfig;
  } catch (e) {
    throw new FerryError('E_BAD_MANIFEST', `image config is not valid JSON: ${(e as Error).message}`);
  }
}
