import { pipeline, Transform, type Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestOf, isDigest } from '../oci/digest.js';
import { bareMediaType, MANIFEST_ACCEPT } from '../oci/media-types.js';
import { readBounded } from '../util/bounded.js';
import { verifyBytes } from '../util/verify-stream.js';
import { bodyReadError } from '../http/network-errors.js';
import { errorFromResponse, type ErrorContext } from '../http/registry-errors.js';
import { redactUrl } from '../util/redact.js';
import type { HttpRequest, HttpResponse, Send } from '../http/types.js';
import { describeReset, parseRateLimit, parseResetAt, rateLimitHint, type RateLimit } from './rate-limit.js';

/** Manifests larger than this are refused (distribution-spec: registries accept ≥ 4 MB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** One page of a tag list; real registries page far below this. */
export const MAX_TAG_PAGE_BYTES = 16 * 1024 * 1024;
/**
 * Pages `listTags` follows before calling it a loop: at the distribution default of 100 tags a
 * page (Hub, GHCR) that is a million tags; registries that page at all never come near it.
 */
export const MAX_TAG_PAGES = 10_000;

export interface RegistryClientOptions {
  /** The composed middleware stack for this registry (auth → … → send). */
  send: Send;
  /** Reference domain shown to users, e.g. `docker.io`, `localhost:5000`. */
  registry: string;
  /** Host the API is served from, e.g. `registry-1.docker.io`. */
  apiHost: string;
  /** Whether credentials are configured (changes 401 wording). */
  hasCredentials?: () => boolean;
  /** Where this client's credentials came from (or what was looked up), for 401 hints. */
  credentialSource?: () => string | undefined;
  secrets?: () => string[];
  /** Who this client authenticates as (resolving the credential if not done yet); never the secret. */
  credentialInfo?: () => Promise<CredentialInfo>;
  /** Told about every manifest response: the rate limit it announced (undefined: none). */
  onRateLimit?: (rl: RateLimit | undefined) => void;
}

/** A credential described without its secret (ferry auth explain). */
export interface CredentialInfo {
  kind: 'anonymous' | 'basic' | 'identity-token' | 'registry-token';
  username?: string;
  source?: string;
}

/** Distribution API for one registry (distribution-spec v1.1 endpoints). */
export class RegistryClient {
  private lastRateLimit: RateLimit | undefined;

  constructor(readonly opts: RegistryClientOptions) {}

  /** The latest rate limit this registry announced on a manifest response (GET or HEAD). */
  rateLimit(): RateLimit | undefined {
    return this.lastRateLimit;
  }

  /** Reads the rate-limit headers of a manifest response (any status) and keeps them. */
  noteRateLimit(res: HttpResponse): RateLimit | undefined {
    const rl = parseRateLimit((n) => res.header(n));
    if (rl) {
      rl.anonymous = !(this.opts.hasCredentials?.() ?? false);
      this.lastRateLimit = rl;
    }
    this.opts.onRateLimit?.(rl);
    return rl;
  }

  url(path: string): URL {
    return new URL(`https://${this.opts.apiHost}${path}`);
  }

  async request(req: Omit<HttpRequest, 'headers'> & { headers?: Record<string, string> }): Promise<HttpResponse> {
    return this.opts.send({ headers: {}, ...req });
  }

  async fail(res: HttpResponse, ctx: Omit<ErrorContext, 'hadCredentials' | 'secrets'>): Promise<FerryError> {
    const source = this.opts.credentialSource?.();
    return errorFromResponse(res, { ...ctx, hadCredentials: this.opts.hasCredentials?.() ?? false, ...(source ? { credentialSource: source } : {}), secrets: this.opts.secrets?.() ?? [] });
  }

  /** `GET /v2/`: checks the API exists (401 is fine: it means auth is needed). */
  async ping(signal?: AbortSignal): Promise<number> {
    const res = await this.request({ method: 'GET', url: this.url('/v2/'), signal });
    await res.dump();
    if (res.status !== 200 && res.status !== 401) {
      throw new FerryError('E_REGISTRY', `${this.opts.registry} does not look like a registry: GET /v2/ answered ${res.status}`);
    }
    return res.status;
  }

  repository(name: string): RepositoryClient {
    return new RepositoryClient(this, name);
  }
}

export interface FetchedManifest {
  bytes: Buffer;
  descriptor: Descriptor;
}

/** Distribution API for one repository. Every method takes an AbortSignal. */
export class RepositoryClient {
  constructor(readonly registry: RegistryClient, readonly name: string) {}

  private get scopes(): string[] {
    return [`repository:${this.name}:pull`];
  }

  private subject(ref?: string): string {
    const base = `${this.registry.opts.registry}/${this.name}`;
    if (!ref) return base;
    return isDigest(ref) ? `${base}@${ref}` : `${base}:${ref}`;
  }

  /**
   * HEAD a manifest: the cheap tag → digest resolution (Docker Hub does not count HEADs against
   * the pull limit). Returns undefined when the registry omits the digest header (older spec) or
   * answers anything but 200, so the caller falls back to GET (which yields the precise error).
   */
  async headManifest(ref: string, signal?: AbortSignal): Promise<Descriptor | undefined> {
    const res = await this.registry.request({
      method: 'HEAD', url: this.registry.url(`/v2/${this.name}/manifests/${ref}`), signal,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, scopes: this.scopes,
    });
    this.registry.noteRateLimit(res);
    if (res.status !== 200) {
      // HEAD answers carry no error body, so a GET is what tells "no such tag" from "no such
      // repository" or an auth problem; it is the caller's fallback either way.
      await res.dump();
      return undefined;
    }
    await res.dump();
    const digest = res.header('docker-content-digest');
    const size = Number(res.header('content-length'));
    const mediaType = bareMediaType(res.header('content-type'));
    if (!digest || !isDigest(digest) || !Number.isSafeInteger(size) || size <= 0 || !mediaType) return undefined;
    if (isDigest(ref) && digest !== ref) return undefined;
    return { mediaType, digest, size };
  }

  /**
   * HEAD a manifest only to read the rate limit it announces (`ferry ratelimit`): never a GET,
   * which Docker Hub would count as a pull. A 429 that carries the headers is an answer (the
   * budget is spent); any other failure is the usual error, worded from the status alone
   * (HEAD answers have no body).
   */
  async probeManifest(ref: string, signal?: AbortSignal): Promise<{ status: number; rateLimit?: RateLimit; digest?: Digest }> {
    const res = await this.registry.request({
      method: 'HEAD', url: this.registry.url(`/v2/${this.name}/manifests/${ref}`), signal,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, scopes: this.scopes,
    });
    const rl = this.registry.noteRateLimit(res);
    if (res.status !== 200 && !(res.status === 429 && rl)) throw await this.registry.fail(res, manifestCtx(this, ref, res, rl));
    await res.dump();
    const digest = res.header('docker-content-digest');
    return { status: res.status, ...(rl ? { rateLimit: rl } : {}), ...(digest && isDigest(digest) ? { digest: digest as Digest } : {}) };
  }

  /**
   * GET a manifest. Bytes are kept verbatim and hashed: by digest they must match it; by tag the
   * digest is computed from the body (Docker-Content-Digest is not trusted: some registries send
   * it malformed or for a different manifest). `expected` adds a size+digest check.
   */
  async getManifest(ref: string, opts: { expected?: Descriptor; signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    const what = `manifest ${this.subject(ref)}`;
    const res = await this.registry.request({
      method: 'GET', url: this.registry.url(`/v2/${this.name}/manifests/${ref}`), signal: opts.signal,
      headers: { accept: MANIFEST_ACCEPT.join(', ') }, scopes: this.scopes, small: { max: MAX_MANIFEST_BYTES, what },
    });
    const rl = this.registry.noteRateLimit(res);
    if (res.status !== 200) throw await this.registry.fail(res, manifestCtx(this, ref, res, rl));
    const bytes = await smallBody(res, MAX_MANIFEST_BYTES, what);
    const want = opts.expected?.digest ?? (isDigest(ref) ? (ref as Digest) : undefined);
    if (want) verifyBytes(bytes, { digest: want, ...(opts.expected ? { size: opts.expected.size } : {}) }, what);
    const digest = want ?? digestOf(bytes);
    const ct = bareMediaType(res.header('content-type'));
    let mediaType = opts.expected?.mediaType ?? ct;
    if (!mediaType || mediaType === 'application/json' || mediaType === 'text/plain') {
      mediaType = bodyMediaType(bytes) ?? mediaType;
    }
    return { bytes, descriptor: { mediaType, digest, size: bytes.byteLength } };
  }

  /**
   * GET a blob from `offset` (Range). The stream is NOT verified here: the consumer hashes it
   * (it may be resuming, with the first `offset` bytes already hashed). A server that ignores
   * Range (200 instead of 206) is handled by skipping the first `offset` bytes.
   */
  async getBlob(d: Descriptor, opts: { offset?: number; signal?: AbortSignal } = {}): Promise<Readable> {
    const offset = opts.offset ?? 0;
    const { Readable: R } = await import('node:stream');
    if (offset > 0 && offset >= d.size) return R.from([]);
    // A closed range (bytes=N-M): some registries and CDNs honour only those.
    const res = await this.registry.request({
      method: 'GET', url: this.registry.url(`/v2/${this.name}/blobs/${d.digest}`), signal: opts.signal,
      headers: offset > 0 ? { range: `bytes=${offset}-${d.size - 1}` } : {}, scopes: this.scopes, bulk: true,
    });
    if (res.status === 206 && offset > 0) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.header('content-range')?.trim() ?? '');
      if (cr && (Number(cr[1]) !== offset || Number(cr[2]) !== d.size - 1 || (cr[3] !== '*' && Number(cr[3]) !== d.size))) {
        await res.dump();
        throw new FerryError('E_REGISTRY', `${this.subject()}@${d.digest}: asked for bytes ${offset}-${d.size - 1}, the registry sent ${cr[0]!.slice(6)}`);
      }
    }
    if (res.status === 200 || res.status === 206) {
      if (offset > 0 && res.status === 200) {
        // The registry ignored Range and sent the whole blob: the blob restarts on the wire and
        // the first `offset` bytes (already written and hashed) are dropped here.
        // pipeline (not pipe) so a broken body errors the returned stream instead of hanging it.
        const skipped = skipBytes(offset);
        pipeline(res.body, skipped, () => {});
        return skipped;
      }
      return res.body;
    }
    if (res.status === 416 && offset >= d.size) {
      await res.dump();
      return R.from([]);
    }
    throw await this.registry.fail(res, { action: 'fetching blob', subject: `${this.subject()}@${d.digest}`, notFound: 'blob not found' });
  }

  /**
   * All tags, following `Link` pagination (Quay/GHCR/Hub page; ACR adds orderby). A registry
   * whose `next` link points at a page already fetched, or whose `last` does not move, or that is
   * still paging after MAX_TAG_PAGES pages (`maxPages`), is a pagination loop: E_REGISTRY, never a hang.
   */
  async listTags(signal?: AbortSignal, opts: { maxPages?: number; pageSize?: number } = {}): Promise<string[]> {
    const maxPages = opts.maxPages ?? MAX_TAG_PAGES;
    const tags: string[] = [];
    const what = `tag list of ${this.subject()}`;
    let url: URL | undefined = this.registry.url(`/v2/${this.name}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`);
    const seen = new Set<string>();
    for (let page = 1; url; page++) {
      seen.add(url.href);
      const res: HttpResponse = await this.registry.request({ method: 'GET', url, signal, scopes: this.scopes, small: { max: MAX_TAG_PAGE_BYTES, what } });
      seen.add(res.url.href); // as fetched: after the scheme choice (http for --plain-http) and redirects
      if (res.status !== 200) throw await this.registry.fail(res, { action: 'listing tags', subject: this.subject() });
      const text = (await smallBody(res, MAX_TAG_PAGE_BYTES, what)).toString('utf8');
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        throw new FerryError('E_REGISTRY', `${this.subject()}: tag list is not valid JSON: ${(e as Error).message}`);
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        throw new FerryError('E_REGISTRY', `${this.subject()}: tag list is not a JSON object`);
      }
      const list = (doc as { tags?: unknown }).tags;
      // Nexus has returned null entries and Artifactory digests; skip both (containers/image does).
      for (const t of Array.isArray(list) ? list : []) {
        if (typeof t === 'string' && t !== '' && !isDigest(t)) tags.push(t);
      }
      const next = nextLink(res.header('link'), res.url);
      if (!next) break;
      const lastNow = url.searchParams.get('last');
      if (seen.has(next.href) || (lastNow !== null && next.searchParams.get('last') === lastNow)) {
        throw new FerryError('E_REGISTRY', `${this.subject()}: registry returned a pagination loop at ${redactUrl(next)} (page ${page} links back to a page already read)`, {
          url: redactUrl(next), hint: 'the registry\'s tag-list paging is broken; report it to the registry operator',
        });
      }
      if (page >= maxPages) {
        throw new FerryError('E_REGISTRY', `${this.subject()}: registry returned a pagination loop at ${redactUrl(next)} (still paging after ${maxPages} pages, ${tags.length} tags)`, {
          url: redactUrl(next), hint: 'the registry\'s tag-list paging never ends; report it to the registry operator',
        });
      }
      url = next;
    }
    return tags;
  }
}

/** The bytes of a 2xx answer to a `small` request (read, retried and capped by the retry layer;
 * read here only for a stack without one, e.g. tests composing their own). */
async function smallBody(res: HttpResponse, max: number, what: string): Promise<Buffer> {
  if (res.bytes) return res.bytes;
  try {
    return await readBounded(res.body, max, what);
  } catch (e) {
    throw bodyReadError(e, res.url, what);
  }
}

function manifestCtx(repo: RepositoryClient, ref: string, res?: HttpResponse, rl?: RateLimit): Omit<ErrorContext, 'hadCredentials' | 'secrets'> {
  const registry = repo.registry.opts.registry;
  const subject = `${registry}/${repo.name}${isDigest(ref) ? '@' : ':'}${ref}`;
  return {
    action: 'fetching manifest', subject,
    notFound: isDigest(ref) ? 'manifest not found' : `tag "${ref}" not found`,
    notFoundHint: `list the available tags with: ferry tags ${registry}/${repo.name}`,
    ...(res?.status === 429 ? { rateLimit: rateLimitContext(repo.registry, res, rl) } : {}),
  };
}

/** What a 429 on a manifest says about the limit and when it resets (worded in rate-limit.ts). */
function rateLimitContext(client: RegistryClient, res: HttpResponse, rl: RateLimit | undefined): NonNullable<ErrorContext['rateLimit']> {
  const registry = client.opts.registry;
  const anonymous = rl?.anonymous ?? !(client.opts.hasCredentials?.() ?? false);
  const budget = rl ? `${rl.remaining} of ${rl.limit} pulls left${rl.source ? ` for ${rl.source}` : ''}; ` : '';
  return {
    detail: `${budget}${describeReset(registry, rl, parseResetAt((n) => res.header(n)))}`,
    hint: rateLimitHint(registry, anonymous),
  };
}

function bodyMediaType(bytes: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown };
    return typeof v.mediaType === 'string' ? v.mediaType : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 8288 `Link: <url>; rel="next"`, resolved against the request URL; a next link that is no
 * http(s) URL is the registry's fault (E_REGISTRY), never a TypeError. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!m || !/;\s*rel="?next"?/i.test(m[2]!)) continue;
    let u: URL | undefined;
    try {
      u = new URL(m[1]!, base);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'https:' && u.protocol !== 'http:')) {
      throw new FerryError('E_REGISTRY', `registry sent an unusable Link header for the next page of tags: ${JSON.stringify(redactUrl(m[1]!).slice(0, 200))}`, { url: redactUrl(base) });
    }
    return u;
  }
  return undefined;
}

function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (left <= 0) return cb(null, chunk);
      if (chunk.length <= left) {
        left -= chunk.length;
        return cb();
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
}
