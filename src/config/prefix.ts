/**
 * registries.conf prefix rules (containers-registries.conf(5)), on the canonical reference string
 * (`docker.io/library/alpine:latest`, `host:5000/ns/app@sha256:…`):
 * - a plain prefix matches itself or itself followed by `/` (a path-component boundary), `@`, or
 *   `:` when the prefix has a path (a tag; a bare host never matches another port of that host —
 *   containers/image lets `example.com` match `example.com:5000`, calling it unintended);
 * - `*.example.com` matches any subdomain at any depth (`a.example.com`, `a.b.example.com:5000`),
 *   never `example.com` itself, and the registry part only.
 * The longest match wins (for a wildcard, the length of the host it matched).
 */
import type { RegistryRule } from './types.js';

/** Why `prefix` is not a valid prefix, or undefined. */
export function prefixError(prefix: string): string | undefined {
  if (prefix === '') return 'is empty';
  if (/\s/.test(prefix)) return 'contains whitespace';
  if (prefix.includes('://')) return 'has a URI scheme (write host[:port][/path] only)';
  if (prefix.includes('*')) {
    if (!prefix.startsWith('*.') || prefix.indexOf('*', 1) >= 0) return 'has a wildcard in the wrong place (only a leading "*." is allowed, as in "*.example.com")';
    if (/[/:@]/.test(prefix)) return 'is a wildcard with a port, path, tag or digest (only "*.domain" is allowed)';
    if (prefix.length === 2) return 'is a wildcard without a domain';
  }
  return undefined;
}

/** Why `location` is not a valid location, or undefined. */
export function locationError(location: string): string | undefined {
  if (location === '') return 'is empty';
  if (/\s/.test(location)) return 'contains whitespace';
  if (location.includes('://')) return 'has a URI scheme (write host[:port][/path] only)';
  if (location.includes('*')) return 'contains a wildcard';
  return undefined;
}

/** containers/image strips one trailing slash from prefixes and locations. */
export const trimSlash = (s: string): string => (s.endsWith('/') ? s.slice(0, -1) : s);

/** Length of the part of `ref` that `prefix` matches, or -1. */
export function matchLength(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const suffix = prefix.slice(1); // '.example.com'
    const hostEnd = ref.search(/[/@]/);
    const hostPort = hostEnd < 0 ? ref : ref.slice(0, hostEnd);
    const host = hostPort.replace(/:\d+$/, '');
    return host.endsWith(suffix) && host.length > suffix.length ? hostPort.length : -1;
  }
  if (!ref.startsWith(prefix)) return -1;
  if (ref.length === prefix.length) return prefix.length;
  const c = ref[prefix.length];
  if (c === '/' || c === '@') return prefix.length;
  if (c === ':' && prefix.includes('/')) return prefix.length;
  return -1;
}

/** The rule with the longest matching prefix (the first of equals), and the matched length. */
export function findRule(ref: string, rules: readonly RegistryRule[]): { rule: RegistryRule; length: number } | undefined {
  let best: { rule: RegistryRule; length: number } | undefined;
  for (const rule of rules) {
    const n = matchLength(ref, rule.prefix);
    if (n >= 0 && (!best || n > best.length)) best = { rule, length: n };
  }
  return best;
}
