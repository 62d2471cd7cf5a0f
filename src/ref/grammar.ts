/**
 * The image-reference grammar of github.com/distribution/reference (regexp.go), re-expressed as
 * small validators that say *what* is wrong instead of only "invalid reference format".
 * Each `*Error` function returns a reason string, or undefined when the value is valid.
 *
 *   reference   := name [ ":" tag ] [ "@" digest ]
 *   name        := [domain "/"] path
 *   domain      := host [":" port]            host := domain-name | "[" IPv6 "]"
 *   path        := component ("/" component)*
 *   component   := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
 *   tag         := [\w][\w.-]{0,127}
 *   digest      := algorithm ":" hex{32,}      (then checked per algorithm, as go-digest does)
 */
import { digestError } from '../oci/digest.js';

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_LEGACY = 'index.docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';
export const OFFICIAL_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';

/** Upstream (since v0.6.0) limits the path only; the domain is not counted. */
export const NAME_MAX = 255;
export const TAG_MAX = 128;

const DOMAIN_COMPONENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^\w[\w.-]{0,127}$/;
const REF_DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
/** A bare 64-hex string is an image ID; docker refuses it as a repository name. */
export const IDENTIFIER_RE = /^[a-f0-9]{64}$/;

/** Algorithms docker's reference parser accepts (go-digest with sha256 + sha512 linked in). */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export function domainError(domain: string): string | undefined {
  if (DOMAIN_RE.test(domain)) return undefined;
  const q = JSON.stringify(domain);
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']');
    if (close < 0 || !/^\[[a-fA-F0-9:]+\]$/.test(domain.slice(0, close + 1))) {
      return `registry host ${q} is not a valid bracketed IPv6 address (zones and IPv4-mapped forms are not allowed)`;
    }
    host = domain.slice(0, close + 1);
    const tail = domain.slice(close + 1);
    if (tail !== '' && !tail.startsWith(':')) return `registry host ${q} has junk after ']'`;
    port = tail === '' ? undefined : tail.slice(1);
  } else {
    const colons = domain.split(':').length - 1;
    if (colons > 1) return `registry host ${q} looks like an IPv6 address; put it in brackets, e.g. "[::1]:5000"`;
    if (colons === 1) [host, port] = domain.split(':') as [string, string];
  }
  if (port !== undefined && !/^[0-9]+$/.test(port)) {
    return `registry host ${q} has an invalid port ${JSON.stringify(port)}`;
  }
  if (host === '') return `registry host ${q} has an empty host name`;
  return `registry host ${q} is not a valid host name (letters, digits, inner '-', separated by '.')`;
}

/** Validates a repository path (without domain). */
export function pathError(path: string): string | undefined {
  if (path === '') return 'repository name is empty';
  if (path.length > NAME_MAX) {
    return `repository name is longer than ${NAME_MAX} characters (${path.length})`;
  }
  if (path.toLowerCase() !== path) return 'repository name must be lowercase';
  for (const component of path.split('/')) {
    const why = componentError(component);
    if (why) return why;
  }
  return undefined;
}

function componentError(c: string): string | undefined {
  if (PATH_COMPONENT_RE.test(c)) return undefined;
  if (c === '') return "repository name has an empty path component (leading, trailing or doubled '/')";
  const bad = /[^a-z0-9._-]/.exec(c);
  if (bad) return `repository name contains invalid character ${JSON.stringify(bad[0])}`;
  if (/^[._-]|[._-]$/.test(c)) {
    return `repository name component "${c}" must start and end with a lowercase letter or digit`;
  }
  return `repository name component "${c}" has an invalid separator (use one '.', one or two '_', or dashes)`;
}

export function tagError(tag: string): string | undefined {
  if (TAG_RE.test(tag)) return undefined;
  if (tag === '') return "tag is empty (nothing after ':')";
  if (tag.length > TAG_MAX) {
    const shown = tag.length > 200 ? `${tag.slice(0, 200)}…` : tag;
    return `tag "${shown}" is longer than ${TAG_MAX} characters (${tag.length})`;
  }
  return `invalid tag "${tag}": tags may contain only letters, digits, '_', '.' and '-', and must not start with '.' or '-'`;
}

/** Reference grammar (hex, at least 32) + go-digest (known algorithm, exact length) + digestError. */
export function refDigestError(digest: string): string | undefined {
  if (digest === '') return "digest is empty (nothing after '@')";
  if (!REF_DIGEST_RE.test(digest)) {
    return `invalid digest: ${digestError(digest) ?? 'not of the form algorithm:hex'}`;
  }
  const colon = digest.indexOf(':');
  const alg = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const want = DIGEST_HEX_LENGTH[alg];
  if (want === undefined) return `invalid digest: unsupported digest algorithm "${alg}"`;
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) {
    return `invalid digest: a ${alg} digest needs exactly ${want} lowercase hex characters`;
  }
  const why = digestError(digest);
  return why === undefined ? undefined : `invalid digest: ${why}`;
}

export interface DomainSplit {
  /** Canonical domain (index.docker.io → docker.io). */
  domain: string;
  /** Everything after the domain: path[:tag][@digest], with `library/` added on Docker Hub. */
  remainder: string;
  /** Offset in the input where the path as typed begins (0 when no domain was given). */
  pathOffset: number;
}

/** normalize.go splitDockerDomain: decides whether the first component is a registry host. */
export function splitDockerDomain(name: string): DomainSplit {
  const slash = name.indexOf('/');
  if (slash < 0) return { domain: DOCKER_HUB, remainder: OFFICIAL_PREFIX + name, pathOffset: 0 };
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let remainder: string;
  let pathOffset = slash + 1;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    domain = first === DOCKER_HUB_LEGACY ? DOCKER_HUB : first;
    remainder = rest;
  } else {
    domain = DOCKER_HUB;
    remainder = name;
    pathOffset = 0;
  }
  if (domain === DOCKER_HUB && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, remainder, pathOffset };
}

/** Canonical (domain, path) for an already-split name: Docker Hub aliases and `library/`. */
export function canonicalName(domain: string, path: string): { domain: string; path: string } {
  const d = domain === DOCKER_HUB_LEGACY ? DOCKER_HUB : domain;
  const p = d === DOCKER_HUB && !path.includes('/') ? OFFICIAL_PREFIX + path : path;
  return { domain: d, path: p };
}
