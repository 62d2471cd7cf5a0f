/** Routing and the distribution-spec v1.1 endpoints (manifests, blobs, uploads, tags, catalog). */
import type { IncomingHttpHeaders } from 'node:http';
import type { Access, Action, Principal } from './auth.js';
import type { Store } from './store.js';
import { Uploads } from './uploads.js';
import type { MemRegistryOptions } from './types.js';
import {
  IMAGE_MANIFEST_TYPES, MANIFEST_TYPES, MT, NAME_RE, TAG_RE,
  algorithmOf, bareType, checkDigest, digestOf, empty, errorResp, header, json, type Resp,
} from './util.js';

export type Route =
  | { kind: 'ping' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; ref: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploadStart'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'unsupported'; name: string }
  | { kind: 'notFound' };

const ROUTES: Array<[RegExp, (m: RegExpExecArray) => Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'ping' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, ref: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploadStart', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  // Referrers API not implemented: 404 makes clients use the referrers tag schema fallback.
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'unsupported', name: m[1]! })],
];

const METHODS: Record<string, string[]> = {
  ping: ['GET', 'HEAD'], catalog: ['GET'], tags: ['GET'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'], blob: ['GET', 'HEAD', 'DELETE'],
  uploadStart: ['POST'], upload: ['GET', 'PATCH', 'PUT', 'DELETE'],
};

export function parseRoute(pathname: string): Route {
  for (const [re, f] of ROUTES) {
    const m = re.exec(pathname);
    if (!m) continue;
    const r = f(m);
    try {
      for (const k of ['name', 'ref', 'digest', 'id'] as const) {
        if (k in r) (r as Record<string, string>)[k] = decodeURIComponent((r as Record<string, string>)[k]!);
      }
    } catch {
      return { kind: 'notFound' };
    }
    return r;
  }
  return { kind: 'notFound' };
}

/** Validation that needs no auth, then what the request needs (distribution app.go: method-based). */
export function preflight(route: Route, method: string): Resp | Access {
  if (route.kind === 'notFound') return errorResp(404, 'UNSUPPORTED', 'endpoint not found');
  if (route.kind === 'unsupported') return errorResp(404, 'UNSUPPORTED', 'endpoint not supported');
  if (!METHODS[route.kind]!.includes(method)) {
    return errorResp(405, 'UNSUPPORTED', `method ${method} not allowed`, {}, { Allow: METHODS[route.kind]!.join(', ') });
  }
  if (route.kind === 'ping') return { kind: 'ping' };
  if (route.kind === 'catalog') return { kind: 'catalog' };
  if (!NAME_RE.test(route.name) || route.name.length > 255) {
    return errorResp(400, 'NAME_INVALID', 'invalid repository name', { name: route.name });
  }
  const actions: Action[] =
    method === 'GET' || method === 'HEAD' ? ['pull'] : method === 'DELETE' ? ['delete'] : ['pull', 'push'];
  return { kind: 'repo', repo: route.name, actions };
}

export interface Ctx {
  method: string;
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  principal: Principal;
}

export class Handlers {
  private readonly uploads: Uploads;

  constructor(private readonly store: Store, private readonly opts: MemRegistryOptions) {
    this.uploads = new Uploads(store, opts);
  }

  handle(route: Route, ctx: Ctx): Resp {
    switch (route.kind) {
      case 'ping': return json(200, {});
      case 'catalog': return this.catalog(ctx);
      case 'tags': return this.tags(route.name, ctx);
      case 'manifest':
        if (ctx.method === 'PUT') return this.putManifest(route.name, route.ref, ctx);
        if (ctx.method === 'DELETE') return this.deleteManifest(route.name, route.ref);
        return this.withRateLimit(ctx, () => this.getManifest(route.name, route.ref, ctx));
      case 'blob':
        return ctx.method === 'DELETE' ? this.deleteBlob(route.name, route.digest) : this.getBlob(route.name, route.digest, ctx);
      case 'uploadStart': return this.uploads.start(route.name, ctx);
      case 'upload': return this.uploads.handle(route.name, route.id, ctx);
      default: return errorResp(404, 'UNSUPPORTED', 'endpoint not found');
    }
  }

  // ---- listing -------------------------------------------------------------------------------

  private page(all: string[], ctx: Ctx, base: string, defaultSize: number | undefined): Resp | { items: string[]; link?: string } {
    const nRaw = ctx.url.searchParams.get('n');
    const last = ctx.url.searchParams.get('last');
    let size = defaultSize ?? Infinity;
    if (nRaw !== null) {
      if (!/^\d+$/.test(nRaw)) return errorResp(400, 'PAGINATION_NUMBER_INVALID', 'invalid n', { n: nRaw });
      size = Number(nRaw);
    }
    if (size === 0) return { items: [] };
    const rest = last === null ? all : all.filter((t) => t > last);
    const items = rest.slice(0, size);
    if (items.length === rest.length) return { items };
    const lastItem = encodeURIComponent(items[items.length - 1]!);
    return { items, link: `<${base}?n=${size}&last=${lastItem}>; rel="next"` };
  }

  private tags(name: string, ctx: Ctx): Resp {
    if (!this.store.exists(name)) return errorResp(404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    const p = this.page(this.store.tags(name), ctx, `/v2/${name}/tags/list`, this.opts.tagPageSize);
    if ('status' in p) return p;
    return json(200, { name, tags: p.items }, p.link ? { Link: p.link } : {});
  }

  private catalog(ctx: Ctx): Resp {
    const p = this.page(this.store.repoNames(), ctx, '/v2/_catalog', undefined);
    if ('status' in p) return p;
    return json(200, { repositories: p.items }, p.link ? { Link: p.link } : {});
  }

  // ---- manifests -----------------------------------------------------------------------------

  /** Docker Hub's pull limit (MemRegistryOptions.rateLimit) around a manifest GET/HEAD. */
  private withRateLimit(ctx: Ctx, answer: () => Resp): Resp {
    const rl = this.opts.rateLimit;
    if (!rl) return answer();
    const w = rl.windowSeconds === undefined ? '' : `;w=${rl.windowSeconds}`;
    const headers = (remaining: number): Record<string, string> => ({
      'ratelimit-limit': `${rl.limit}${w}`, 'ratelimit-remaining': `${remaining}${w}`,
      ...(rl.source === undefined ? {} : { 'docker-ratelimit-source': rl.source }),
    });
    if (ctx.method === 'GET' && rl.remaining <= 0) {
      return errorResp(429, 'TOOMANYREQUESTS', 'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit', {}, { ...headers(0), ...(rl.exhaustedHeaders ?? {}) });
    }
    const r = answer();
    if (ctx.method === 'GET' && r.status === 200) rl.remaining--;
    r.headers = { ...r.headers, ...headers(Math.max(0, rl.remaining)) };
    return r;
  }

  private getManifest(name: string, ref: string, ctx: Ctx): Resp {
    if (ref.includes(':') && checkDigest(ref) === 'invalid') return errorResp(400, 'DIGEST_INVALID', 'invalid digest', { digest: ref });
    const m = this.store.getManifest(name, ref);
    if (!m) {
      return this.store.exists(name)
        ? errorResp(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { name, reference: ref })
        : errorResp(404, 'NAME_UNKNOWN', 'repository name not known to registry', { name });
    }
    // Accept honoured loosely: only refuse when the client listed manifest types, none of them
    // (nor a wildcard) covers the stored one — as distribution does for OCI types.
    const accept = (header(ctx.headers, 'accept') ?? '').split(',').map((s) => bareType(s)).filter(Boolean);
    if (accept.some((a) => MANIFEST_TYPES.includes(a)) && !accept.includes(m.mediaType) && !accept.includes('*/*')) {
      return errorResp(404, 'MANIFEST_UNKNOWN', `manifest of type ${m.mediaType} not acceptable to the client`, { name, reference: ref });
    }
    const headers: Record<string, string> = {
      'Content-Type': m.mediaType,
      'Docker-Content-Digest': m.digest,
      ETag: `"${m.digest}"`,
    };
    if (ctx.method === 'HEAD' && this.opts.noHeadDigest) delete headers['Docker-Content-Digest'];
    return { status: 200, headers, body: m.bytes };
  }

  private putManifest(name: string, ref: string, ctx: Ctx): Resp {
    const bytes = ctx.body;
    if (this.opts.maxManifestBytes !== undefined && bytes.length > this.opts.maxManifestBytes) {
      return errorResp(413, 'SIZE_INVALID', 'manifest too large', { size: bytes.length, limit: this.opts.maxManifestBytes });
    }
    const isDigest = ref.includes(':');
    if (isDigest && checkDigest(ref) !== 'ok') return errorResp(400, 'DIGEST_INVALID', 'invalid or unsupported digest', { digest: ref });
    if (!isDigest && !TAG_RE.test(ref)) return errorResp(400, 'TAG_INVALID', 'invalid tag', { tag: ref });
    const invalid = (message: string, detail: unknown = {}) => errorResp(400, 'MANIFEST_INVALID', message, detail);
    let doc: unknown;
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      return invalid('manifest is not valid JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return invalid('manifest is not a JSON object');
    const m = doc as Record<string, unknown>;
    const contentType = bareType(header(ctx.headers, 'content-type'));
    const declared = typeof m['mediaType'] === 'string' ? (m['mediaType'] as string) : undefined;
    if (declared !== undefined && contentType && declared !== contentType) {
      return invalid(`Content-Type ${contentType} does not match mediaType ${declared}`);
    }
    const mediaType = contentType || declared;
    if (!mediaType) return invalid('missing Content-Type');
    if (mediaType === MT.dockerSchema1 || mediaType === MT.dockerSchema1Signed) return invalid('schema1 manifests are not supported');
    if (!MANIFEST_TYPES.includes(mediaType)) return invalid(`unsupported manifest media type ${mediaType}`);
    if (m['schemaVersion'] !== 2) return invalid('schemaVersion must be 2');
    const problem = IMAGE_MANIFEST_TYPES.includes(mediaType) ? this.checkImage(name, m) : this.checkIndex(name, m);
    if (problem) return problem;
    const digest = digestOf(bytes, isDigest ? algorithmOf(ref) : 'sha256');
    if (isDigest && digest !== ref) return errorResp(400, 'DIGEST_INVALID', 'manifest digest does not match reference', { expected: ref, actual: digest });
    this.store.putManifest(name, ref, bytes, mediaType);
    return empty(201, { Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest });
  }

  private badDescriptor(d: unknown): string | undefined {
    if (typeof d !== 'object' || d === null) return 'descriptor is not an object';
    const o = d as Record<string, unknown>;
    if (typeof o['mediaType'] !== 'string') return 'descriptor without mediaType';
    if (typeof o['digest'] !== 'string' || checkDigest(o['digest']) === 'invalid') return 'descriptor with invalid digest';
    if (typeof o['size'] !== 'number' || !Number.isInteger(o['size']) || o['size'] < 0) return 'descriptor with invalid size';
    return undefined;
  }

  private checkImage(name: string, m: Record<string, unknown>): Resp | undefined {
    const layers = m['layers'];
    if (!Array.isArray(layers)) return errorResp(400, 'MANIFEST_INVALID', 'manifest without layers array');
    for (const d of [m['config'], ...layers]) {
      const bad = this.badDescriptor(d);
      if (bad) return errorResp(400, 'MANIFEST_INVALID', bad);
      const o = d as { digest: string; size: number; urls?: unknown };
      if (Array.isArray(o.urls) && o.urls.length > 0) continue; // foreign / non-distributable layer
      const blob = this.store.getBlob(name, o.digest);
      if (!blob) return errorResp(400, 'MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry', { digest: o.digest });
      if (blob.length !== o.size) {
        return errorResp(400, 'MANIFEST_INVALID', 'descriptor size does not match blob', { digest: o.digest, size: o.size, actual: blob.length });
      }
    }
    return undefined;
  }

  private checkIndex(name: string, m: Record<string, unknown>): Resp | undefined {
    const children = m['manifests'];
    if (!Array.isArray(children)) return errorResp(400, 'MANIFEST_INVALID', 'index without manifests array');
    for (const d of children) {
      const bad = this.badDescriptor(d);
      if (bad) return errorResp(400, 'MANIFEST_INVALID', bad);
      const o = d as { digest: string; size: number };
      const child = this.store.getManifest(name, o.digest);
      if (!child) return errorResp(400, 'MANIFEST_BLOB_UNKNOWN', 'manifest unknown to registry', { digest: o.digest });
      if (child.bytes.length !== o.size) {
        return errorResp(400, 'MANIFEST_INVALID', 'descriptor size does not match manifest', { digest: o.digest });
      }
    }
    return undefined;
  }

  private deleteManifest(name: string, ref: string): Resp {
    if (this.opts.deleteDisabled) return errorResp(405, 'UNSUPPORTED', 'deletion is disabled');
    if (ref.includes(':') && checkDigest(ref) === 'invalid') return errorResp(400, 'DIGEST_INVALID', 'invalid digest', { digest: ref });
    if (!this.store.deleteManifest(name, ref)) return errorResp(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { name, reference: ref });
    return empty(202);
  }

  // ---- blobs ---------------------------------------------------------------------------------

  private getBlob(name: string, digest: string, ctx: Ctx): Resp {
    if (checkDigest(digest) === 'invalid') return errorResp(400, 'DIGEST_INVALID', 'invalid digest', { digest });
    const blob = this.store.getBlob(name, digest);
    if (!blob) return errorResp(404, 'BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
    };
    const range = header(ctx.headers, 'range');
    const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range.trim()) : null;
    if (!m || (m[1] === '' && m[2] === '')) return { status: 200, headers, body: blob };
    const total = blob.length;
    let start: number;
    let end: number;
    if (m[1] === '') {
      start = Math.max(0, total - Number(m[2]));
      end = total - 1;
    } else {
      start = Number(m[1]);
      end = m[2] === '' ? total - 1 : Math.min(Number(m[2]), total - 1);
    }
    if (start >= total || start > end || (m[1] === '' && Number(m[2]) === 0)) {
      return empty(416, { 'Content-Range': `bytes */${total}` });
    }
    headers['Content-Range'] = `bytes ${start}-${end}/${total}`;
    return { status: 206, headers, body: blob.subarray(start, end + 1) };
  }

  private deleteBlob(name: string, digest: string): Resp {
    if (this.opts.deleteDisabled) return errorResp(405, 'UNSUPPORTED', 'deletion is disabled');
    if (checkDigest(digest) === 'invalid') return errorResp(400, 'DIGEST_INVALID', 'invalid digest', { digest });
    if (!this.store.deleteBlob(name, digest)) return errorResp(404, 'BLOB_UNKNOWN', 'blob unknown to registry', { digest });
    return empty(202);
  }
}
