/** Small shared pieces of the in-process registry: responses, digests, names, globs. */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fully buffered response, produced by handlers and written (or mangled by faults) by the server. */
export interface Resp {
  status: number;
  headers: Record<string, string | string[]>;
  body?: Buffer;
}

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const IMAGE_MANIFEST_TYPES: readonly string[] = [MT.ociManifest, MT.dockerManifest];
export const INDEX_TYPES: readonly string[] = [MT.ociIndex, MT.dockerList];
export const MANIFEST_TYPES: readonly string[] = [...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES];

export function json(status: number, value: unknown, headers: Record<string, string | string[]> = {}): Resp {
  return {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

/** Distribution-spec error body `{"errors":[{code,message,detail}]}`. */
export function errorResp(
  status: number,
  code: string,
  message: string,
  detail: unknown = {},
  headers: Record<string, string | string[]> = {},
): Resp {
  return json(status, { errors: [{ code, message, detail }] }, headers);
}

export function empty(status: number, headers: Record<string, string | string[]> = {}): Resp {
  return { status, headers };
}

/** Error code used when a `status` fault gives no body. */
export function defaultErrorCode(status: number): string {
  switch (status) {
    case 400: return 'UNSUPPORTED';
    case 401: return 'UNAUTHORIZED';
    case 403: return 'DENIED';
    case 404: return 'NAME_UNKNOWN';
    case 405: return 'UNSUPPORTED';
    case 429: return 'TOOMANYREQUESTS';
    case 502: case 503: case 504: return 'UNAVAILABLE';
    default: return 'UNKNOWN';
  }
}

// ---- digests ---------------------------------------------------------------------------------

const DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX: Record<string, RegExp> = { sha256: /^[a-f0-9]{64}$/, sha512: /^[a-f0-9]{128}$/ };

/** 'ok' for sha256/sha512 digests, 'unsupported' for grammatical other algorithms, else 'invalid'. */
export function checkDigest(d: string): 'ok' | 'unsupported' | 'invalid' {
  if (!DIGEST_RE.test(d)) return 'invalid';
  const i = d.indexOf(':');
  const re = HEX[d.slice(0, i)];
  if (!re) return 'unsupported';
  return re.test(d.slice(i + 1)) ? 'ok' : 'invalid';
}

export function digestOf(bytes: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function algorithmOf(digest: string): string {
  return digest.slice(0, digest.indexOf(':'));
}

// ---- names -----------------------------------------------------------------------------------

export const NAME_RE =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function globToRegExp(glob: string): RegExp {
  const src = glob
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  return new RegExp(`^${src}$`);
}

export function matchesAny(globs: readonly string[] | undefined, repo: string): boolean {
  return (globs ?? []).some((g) => globToRegExp(g).test(repo));
}

// ---- misc ------------------------------------------------------------------------------------

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Media type without parameters, lowercased ('' when absent). */
export function bareType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
