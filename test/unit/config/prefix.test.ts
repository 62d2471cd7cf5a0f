import { describe, expect, it } from 'vitest';
import { findRule, matchLength, prefixError } from '../../../src/config/index.js';
import { conf } from './helpers.js';

describe('prefix matching', () => {
  it.each([
    // [reference, prefix, matches]
    ['docker.io/library/alpine:latest', 'docker.io', true],
    ['docker.io/library/alpine:latest', 'docker.io/library', true],
    ['docker.io/library/alpine:latest', 'docker.io/library/alpine', true],
    ['docker.io/library/alpine:latest', 'docker.io/library/alpine:latest', true],
    ['docker.io/library/alpine:latest', 'docker.io/library/alp', false], // not at a path boundary
    ['docker.io/library/alpine:latest', 'docker.io/alpine', false], // library/ is added before matching
    ['example.com/foo/bar:1', 'example.com/foo', true],
    ['example.com/foobar/x:1', 'example.com/foo', false],
    ['example.com:5000/x:1', 'example.com', false], // a bare host is not another port of it
    ['example.com:5000/x:1', 'example.com:5000', true],
    ['example.com/x@sha256:' + 'a'.repeat(64), 'example.com/x', true],
    ['a.example.com/x:1', '*.example.com', true],
    ['a.b.example.com/x:1', '*.example.com', true],
    ['a.example.com:5000/x:1', '*.example.com', true],
    ['example.com/x:1', '*.example.com', false], // subdomains only
    ['badexample.com/x:1', '*.example.com', false],
    ['evil.com/a.example.com/x:1', '*.example.com', false], // the registry part only
  ])('%s against prefix %s: %s', (ref, prefix, ok) => {
    expect(matchLength(ref, prefix) >= 0).toBe(ok);
  });

  it('the longest prefix wins, whatever the order of the file', () => {
    const c = conf(`
[[registry]]
prefix = "example.com/foo/bar"
location = "three.example"
[[registry]]
prefix = "example.com"
location = "one.example"
[[registry]]
prefix = "example.com/foo"
location = "two.example"
[[registry]]
prefix = "*.example.com"
`);
    const loc = (r: string) => findRule(r, c.registries)?.rule.location;
    expect(loc('example.com/foo/bar/baz:1')).toBe('three.example');
    expect(loc('example.com/foo/baz:1')).toBe('two.example');
    expect(loc('example.com/other:1')).toBe('one.example');
    expect(findRule('x.example.com/a:1', c.registries)?.rule.prefix).toBe('*.example.com');
    expect(findRule('quay.io/a:1', c.registries)).toBeUndefined();
  });

  it.each([
    ['*.example.com', undefined],
    ['example.com/ns', undefined],
    ['example.*.com', 'wildcard in the wrong place'],
    ['*example.com', 'wildcard in the wrong place'],
    ['*.example.com/ns', 'is a wildcard with a port, path'],
    ['*.*.example.com', 'wildcard in the wrong place'],
    ['https://example.com', 'URI scheme'],
    ['', 'is empty'],
  ])('prefix %j: %s', (p, why) => {
    if (why === undefined) expect(prefixError(p)).toBeUndefined();
    else expect(prefixError(p)).toContain(why);
  });
});
