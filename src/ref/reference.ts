/**
 * Image references, parsed and normalised exactly like docker (distribution/reference
 * ParseNormalizedNamed): `ubuntu` → `docker.io/library/ubuntu:latest`. Unlike ParseDockerRef a
 * reference with both a tag and a digest keeps both; `reference()` then returns the digest.
 */
import { FerryError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import {
  DEFAULT_TAG,
  DOCKER_HUB,
  DOCKER_HUB_API,
  DOCKER_HUB_CONFIG_KEY,
  IDENTIFIER_RE,
  OFFICIAL_PREFIX,
  canonicalName,
  domainError,
  pathError,
  refDigestError,
  splitDockerDomain,
  tagError,
} from './grammar.js';

export interface ParseReferenceOptions {
  /** Add tag `latest` when the input has neither tag nor digest (default true). */
  defaultTag?: boolean;
}

/** A validated, canonical image reference. Build one with parseReference/parseRepository. */
export class ImageReference {
  /** Canonical domain: 'docker.io', 'ghcr.io', 'localhost:5000', '[::1]:5000'. */
  readonly registry: string;
  /** Repository path, e.g. 'library/ubuntu'. */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;

  /**
   * Validates every part (throws E_BAD_REFERENCE) and canonicalises the name: 'index.docker.io'
   * becomes 'docker.io' and a one-component Docker Hub path gets 'library/'. No default tag here.
   */
  constructor(registry: string, repository: string, tag?: string, digest?: Digest) {
    const { domain, path } = canonicalName(registry, repository);
    const why =
      domainError(domain) ??
      pathError(path) ??
      (tag === undefined ? undefined : tagError(tag)) ??
      (digest === undefined ? undefined : refDigestError(digest));
    if (why !== undefined) {
      const shown = `${domain}/${path}${tag === undefined ? '' : `:${tag}`}${digest === undefined ? '' : `@${digest}`}`;
      throw badReference(shown, why);
    }
    this.registry = domain;
    this.repository = path;
    this.tag = tag;
    this.digest = digest;
  }

  /** 'docker.io/library/ubuntu:latest', 'host:5000/ns/repo:tag@sha256:…'. */
  toString(): string {
    return this.name() + this.suffix();
  }

  /** docker's familiar form: 'ubuntu:latest', 'user/app:1', 'ghcr.io/x/y@sha256:…'. */
  familiar(): string {
    if (this.registry !== DOCKER_HUB) return this.toString();
    let path = this.repository;
    if (path.startsWith(OFFICIAL_PREFIX) && !path.slice(OFFICIAL_PREFIX.length).includes('/')) {
      path = path.slice(OFFICIAL_PREFIX.length);
    }
    return path + this.suffix();
  }

  /** registry + '/' + repository. */
  name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** The manifest reference for /v2/<repo>/manifests/<x>: digest, else tag, else 'latest'. */
  reference(): string {
    return this.digest ?? this.tag ?? DEFAULT_TAG;
  }

  /** Host to talk HTTP to ('registry-1.docker.io' for Docker Hub). */
  apiHost(): string {
    return this.registry === DOCKER_HUB ? DOCKER_HUB_API : this.registry;
  }

  /** Key in docker's config.json "auths" ('https://index.docker.io/v1/' for Docker Hub). */
  configKey(): string {
    return this.registry === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : this.registry;
  }

  /** Same repository with `tag` (validated); any digest is dropped. */
  withTag(tag: string): ImageReference {
    return new ImageReference(this.registry, this.repository, tag);
  }

  /** Same repository and tag, pinned to `d` (validated). */
  withDigest(d: Digest): ImageReference {
    return new ImageReference(this.registry, this.repository, this.tag, d);
  }

  private suffix(): string {
    return (this.tag === undefined ? '' : `:${this.tag}`) + (this.digest === undefined ? '' : `@${this.digest}`);
  }
}

const SKOPEO_PREFIX = 'docker://';

/**
 * Parses `[docker://][domain/]path[:tag][@digest]` the way docker does. Throws E_BAD_REFERENCE
 * naming the input and the specific problem.
 */
export function parseReference(input: string, opts: ParseReferenceOptions = {}): ImageReference {
  const fail = (what: string, hint?: string): FerryError => badReference(input, what, hint);
  if (input === '') throw fail('reference is empty', 'expected e.g. "ubuntu:24.04" or "ghcr.io/owner/app:1.0"');
  if (input.trim() !== input) throw fail('leading or trailing whitespace');
  if (/\s/.test(input)) throw fail('reference contains whitespace');

  const s = input.startsWith(SKOPEO_PREFIX) ? input.slice(SKOPEO_PREFIX.length) : input;
  if (s === '') throw fail(`nothing after "${SKOPEO_PREFIX}"`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(s);
  if (scheme) {
    throw fail(`a reference is not a URL (remove "${scheme[1]}://")`, 'write HOST/REPO[:TAG], e.g. "ghcr.io/owner/app:1.0"');
  }
  if (IDENTIFIER_RE.test(s)) {
    throw fail(
      'cannot use a 64-character hexadecimal string as a repository name (it looks like an image ID)',
      'to pin content, use NAME@sha256:<hex>',
    );
  }

  const { domain, remainder, pathOffset } = splitDockerDomain(s);
  const at = remainder.indexOf('@');
  const nameAndTag = at < 0 ? remainder : remainder.slice(0, at);
  const digest = at < 0 ? undefined : remainder.slice(at + 1);
  const colon = nameAndTag.indexOf(':');
  const path = colon < 0 ? nameAndTag : nameAndTag.slice(0, colon);
  const tag = colon < 0 ? undefined : nameAndTag.slice(colon + 1);

  if (/^(?:$|[:@])/.test(s.slice(pathOffset))) throw fail('repository name is empty');
  // docker checks case before anything else, with its own message.
  if (path.toLowerCase() !== path) {
    throw fail('repository name must be lowercase', lowercaseHint(input, s, pathOffset));
  }
  const domainWhy = domainError(domain);
  if (domainWhy !== undefined) {
    const badPort = domainWhy.includes('invalid port');
    throw fail(
      domainWhy,
      `"${domain}" comes before the first '/' and contains '.' or ':' (or capitals), so it is read as a ` +
        `registry host like "ghcr.io" or "localhost:5000"${badPort ? "; tags cannot contain '/'" : ''}`,
    );
  }
  const pathWhy = pathError(path);
  if (pathWhy !== undefined) throw fail(pathWhy);
  if (tag !== undefined) {
    const tagWhy = tagError(tag);
    if (tagWhy !== undefined) throw fail(tagWhy);
  }
  if (digest !== undefined) {
    if (digest.includes('@')) throw fail("more than one '@'");
    const digestWhy = refDigestError(digest);
    if (digestWhy !== undefined) {
      throw fail(digestWhy, digest === '' ? 'write NAME@sha256:<64 hex>, or drop the "@"' : undefined);
    }
  }
  const defaultTag = opts.defaultTag !== false && tag === undefined && digest === undefined;
  return new ImageReference(domain, path, defaultTag ? DEFAULT_TAG : tag, digest as Digest | undefined);
}

/**
 * For `ferry tags REPO`: a repository name with neither tag nor digest ('ubuntu',
 * 'host:5000/ns/x'). The result has tag and digest undefined.
 */
export function parseRepository(input: string): ImageReference {
  const ref = parseReference(input, { defaultTag: false });
  if (ref.tag === undefined && ref.digest === undefined) return ref;
  let what = ref.digest !== undefined
    ? `expected a repository without a digest, got "@${ref.digest}"`
    : `expected a repository without a tag, got ":${ref.tag}"`;
  const bare = ref.repository.slice(OFFICIAL_PREFIX.length);
  if (ref.digest === undefined && !input.includes('/') && /^[0-9]+$/.test(ref.tag ?? '') &&
      (bare === 'localhost' || bare.includes('.'))) {
    what += ` (a registry host alone is not a repository; write e.g. "${bare}:${ref.tag}/NAME")`;
  }
  throw badReference(input, what, 'tags takes a repository, not a tag');
}

function lowercaseHint(input: string, s: string, pathOffset: number): string {
  const rest = s.slice(pathOffset);
  const end = rest.search(/[:@]/);
  const rawPath = end < 0 ? rest : rest.slice(0, end);
  const suggestion =
    input.slice(0, input.length - s.length) + s.slice(0, pathOffset) + rawPath.toLowerCase() + rest.slice(rawPath.length);
  try {
    parseReference(suggestion);
    return `repository names must be lowercase; did you mean "${suggestion}"?`;
  } catch {
    return 'repository names must be lowercase';
  }
}

function badReference(input: string, what: string, hint?: string): FerryError {
  const shown = input.length > 300 ? `${input.slice(0, 300)}…` : input;
  return new FerryError('E_BAD_REFERENCE', `invalid reference ${JSON.stringify(shown)}: ${what}`, hint === undefined ? {} : { hint });
}
