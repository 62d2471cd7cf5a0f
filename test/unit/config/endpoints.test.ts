import { describe, expect, it } from 'vitest';
import { blockedError, endpointsFor, parseDaemonJson, parseMirrorFlag, type Operation } from '../../../src/config/index.js';
import { parseReference } from '../../../src/ref/index.js';
import { rules, thrown } from './helpers.js';

const D = `sha256:${'d'.repeat(64)}`;
const list = (ref: string, text: string, operation: Operation = 'pull', extra: Parameters<typeof endpointsFor>[2] extends infer O ? Partial<O> : never = {}) =>
  endpointsFor(parseReference(ref), rules(text), { operation, ...extra }).endpoints.map((e) => `${e.reference}${e.mirror ? ' (mirror)' : ''}`);

const MIRRORS = `
[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "all.example"

[[registry.mirror]]
location = "digest.example/hub"
pull-from-mirror = "digest-only"

[[registry.mirror]]
location = "tag.example"
pull-from-mirror = "tag-only"
`;

describe('endpointsFor', () => {
  it('no configuration: the reference itself', () => {
    const p = endpointsFor(parseReference('alpine'), rules(''), { operation: 'pull' });
    expect(p).toEqual({ endpoints: [{ registry: 'docker.io', repository: 'library/alpine', reference: 'docker.io/library/alpine:latest', insecure: false, mirror: false, origin: 'reference' }] });
  });

  it.each([
    // [operation, reference, expected endpoints]
    ['pull', 'alpine:3.20', ['all.example/library/alpine:3.20 (mirror)', 'tag.example/library/alpine:3.20 (mirror)', 'docker.io/library/alpine:3.20']],
    ['pull', `alpine@${D}`, [`all.example/library/alpine@${D} (mirror)`, `digest.example/hub/library/alpine@${D} (mirror)`, `docker.io/library/alpine@${D}`]],
    ['pull', `alpine:3.20@${D}`, [`all.example/library/alpine:3.20@${D} (mirror)`, `digest.example/hub/library/alpine:3.20@${D} (mirror)`, `docker.io/library/alpine:3.20@${D}`]],
    ['inspect', 'alpine:3.20', ['all.example/library/alpine:3.20 (mirror)', 'tag.example/library/alpine:3.20 (mirror)', 'docker.io/library/alpine:3.20']],
    ['copy-source', 'alpine:3.20', ['all.example/library/alpine:3.20 (mirror)', 'tag.example/library/alpine:3.20 (mirror)', 'docker.io/library/alpine:3.20']],
    ['push', 'alpine:3.20', ['docker.io/library/alpine:3.20']],
    ['copy-destination', 'alpine:3.20', ['docker.io/library/alpine:3.20']],
    ['tag', 'alpine:3.20', ['docker.io/library/alpine:3.20']],
    ['delete', `alpine@${D}`, [`docker.io/library/alpine@${D}`]],
    ['tags', 'alpine', ['docker.io/library/alpine:latest']],
  ] as Array<[Operation, string, string[]]>)('pull-from-mirror: %s %s', (op, ref, want) => {
    expect(list(ref, MIRRORS, op)).toEqual(want);
  });

  it('mirror-by-digest-only: mirrors serve by-digest references only', () => {
    const t = '[[registry]]\nlocation = "quay.io"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"\n';
    expect(list('quay.io/org/app:1', t)).toEqual(['quay.io/org/app:1']);
    expect(list(`quay.io/org/app@${D}`, t)).toEqual([`m.example/org/app@${D} (mirror)`, `quay.io/org/app@${D}`]);
    const p = endpointsFor(parseReference(`quay.io/org/app@${D}`), rules(t), { operation: 'pull' });
    expect(p.endpoints[0]).toMatchObject({ pullFromMirror: 'digest-only', origin: '/c/0.conf:4' });
  });

  it.each([
    // location rewrites: the matched prefix is replaced, the rest kept
    ['example.com/foo/app:1', '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal.example/bar"\n', ['internal.example/bar/app:1']],
    ['example.com/foo/app:1', '[[registry]]\nprefix = "example.com"\nlocation = "internal.example:5000"\n', ['internal.example:5000/foo/app:1']],
    ['docker.io/library/alpine:1', '[[registry]]\nprefix = "docker.io/library"\nlocation = "hub.internal/official"\n', ['hub.internal/official/alpine:1']],
    ['example.com/app:1', '[[registry]]\nprefix = "example.com/app:1"\nlocation = "internal.example/pinned:1.0.1"\n', ['internal.example/pinned:1.0.1']],
    ['example.com/foobar/app:1', '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal.example/bar"\n', ['example.com/foobar/app:1']],
    ['x.corp.example/app:1', '[[registry]]\nprefix = "*.corp.example"\n[[registry.mirror]]\nlocation = "cache.corp.example/proxy"\n', ['cache.corp.example/proxy/app:1 (mirror)', 'x.corp.example/app:1']],
  ])('rewrite: %s', (ref, text, want) => {
    expect(list(ref, text)).toEqual(want);
  });

  it('a location that rewrites to an invalid reference is E_BAD_CONFIG naming the rule', () => {
    const e = thrown(() => endpointsFor(parseReference('example.com/app:1'), rules('[[registry]]\nprefix = "example.com"\n\n[[registry.mirror]]\nlocation = "mirror.example/UPPER"\n'), { operation: 'pull' }));
    expect(e.code).toBe('E_BAD_CONFIG');
    expect(e.message).toBe('/c/0.conf:4: location "mirror.example/UPPER" rewrites example.com/app:1 to "mirror.example/UPPER/app:1", which is not a valid reference');
  });

  it('rewrites apply to pulls only; push goes to the reference as written', () => {
    expect(list('example.com/foo/app:1', '[[registry]]\nprefix = "example.com/foo"\nlocation = "internal.example/bar"\n', 'push')).toEqual(['example.com/foo/app:1']);
  });

  it('blocked: no origin, with the file and line of blocked = true; mirrors still serve pulls', () => {
    const t = '[[registry]]\nlocation = "docker.io"\n\nblocked = true\n[[registry.mirror]]\nlocation = "m.example"\n';
    const pull = endpointsFor(parseReference('alpine'), rules(t), { operation: 'pull' });
    expect(pull.blocked).toEqual({ file: '/c/0.conf', line: 4 });
    expect(pull.endpoints.map((e) => e.reference)).toEqual(['m.example/library/alpine:latest']);
    const push = endpointsFor(parseReference('alpine'), rules(t), { operation: 'push' });
    expect(push).toMatchObject({ endpoints: [], blocked: { line: 4 } });
    const e = blockedError(parseReference('alpine'), push.blocked!, push);
    expect(e.code).toBe('E_BLOCKED');
    expect(e.exitCode).toBe(9);
    expect(e.message).toBe('docker.io/library/alpine is blocked by /c/0.conf:4');
    expect(blockedError(parseReference('alpine'), pull.blocked!, pull).hint).toContain('m.example');
  });

  it('a location rewritten onto a blocked registry is blocked there', () => {
    const t = '[[registry]]\nprefix = "example.com"\nlocation = "internal.example"\n[[registry]]\nlocation = "internal.example"\nblocked = true\n';
    expect(endpointsFor(parseReference('example.com/a:1'), rules(t), { operation: 'pull' })).toMatchObject({ endpoints: [], blocked: { line: 6 } });
  });

  it('a mirror whose own location is blocked by another rule is left out', () => {
    const t = '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "bad.example"\n[[registry.mirror]]\nlocation = "good.example"\n[[registry]]\nlocation = "bad.example"\nblocked = true\n';
    expect(list('alpine', t)).toEqual(['good.example/library/alpine:latest (mirror)', 'docker.io/library/alpine:latest']);
  });

  it('insecure: from the rule, the mirror, or daemon.json, with where it came from', () => {
    const daemon = parseDaemonJson('{\n  "insecure-registries": ["10.0.0.0/8", "plain.example:5000"]\n}\n', '/d/daemon.json');
    const t = '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "10.1.2.3:5000"\n[[registry.mirror]]\nlocation = "safe.example"\n[[registry.mirror]]\nlocation = "lax.example"\ninsecure = true\n[[registry]]\nlocation = "quay.io"\ninsecure = true\n';
    const p = endpointsFor(parseReference('alpine'), rules(t, daemon), { operation: 'pull' });
    expect(p.endpoints.map((e) => [e.registry, e.insecure, e.insecureOrigin])).toEqual([
      ['10.1.2.3:5000', true, '/d/daemon.json:2'],
      ['safe.example', false, undefined],
      ['lax.example', true, '/c/0.conf:7'],
      ['docker.io', false, undefined],
    ]);
    expect(endpointsFor(parseReference('quay.io/a/b'), rules(t, daemon), { operation: 'push' }).endpoints[0]).toMatchObject({ insecure: true, insecureOrigin: '/c/0.conf:10' });
    expect(endpointsFor(parseReference('plain.example:5000/a'), rules(t, daemon), { operation: 'tags' }).endpoints[0]!.insecure).toBe(true);
    expect(endpointsFor(parseReference('plain.example/a'), rules(t, daemon), { operation: 'tags' }).endpoints[0]!.insecure).toBe(false);
  });

  it('daemon.json registry-mirrors apply to Docker Hub only, after registries.conf mirrors', () => {
    const daemon = parseDaemonJson('{"registry-mirrors": ["https://hub-cache.example", "http://plain-cache.example:5000/"]}', '/d/daemon.json');
    const t = '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "conf.example"\n';
    const hub = endpointsFor(parseReference('user/app:1'), rules(t, daemon), { operation: 'pull' }).endpoints;
    expect(hub.map((e) => [e.reference, e.origin, e.insecure])).toEqual([
      ['conf.example/user/app:1', '/c/0.conf:3', false],
      ['hub-cache.example/user/app:1', '/d/daemon.json:1', false],
      ['plain-cache.example:5000/user/app:1', '/d/daemon.json:1', true],
      ['docker.io/user/app:1', '/c/0.conf:1', false],
    ]);
    expect(endpointsFor(parseReference('ghcr.io/o/a:1'), rules('', daemon), { operation: 'pull' }).endpoints.map((e) => e.reference)).toEqual(['ghcr.io/o/a:1']);
    expect(endpointsFor(parseReference('user/app:1'), rules('', daemon), { operation: 'push' }).endpoints.map((e) => e.reference)).toEqual(['docker.io/user/app:1']);
  });

  it('--mirror comes first, for any source registry, as HOST/PATH/<repository>; --no-mirrors drops every mirror', () => {
    const extraMirrors = [parseMirrorFlag('cache.example:5000/ghcr'), parseMirrorFlag('http://plain.example')];
    expect(list('ghcr.io/org/app:1', MIRRORS, 'pull', { extraMirrors })).toEqual(['cache.example:5000/ghcr/org/app:1 (mirror)', 'plain.example/org/app:1 (mirror)', 'ghcr.io/org/app:1']);
    expect(list('alpine:1', MIRRORS, 'pull', { extraMirrors }).slice(0, 3)).toEqual(['cache.example:5000/ghcr/library/alpine:1 (mirror)', 'plain.example/library/alpine:1 (mirror)', 'all.example/library/alpine:1 (mirror)']);
    expect(list('alpine:1', MIRRORS, 'push', { extraMirrors })).toEqual(['docker.io/library/alpine:1']);
    expect(list('alpine:1', MIRRORS, 'pull', { extraMirrors, noMirrors: true })).toEqual(['docker.io/library/alpine:1']);
    const p = endpointsFor(parseReference('ghcr.io/o/a'), rules(''), { operation: 'pull', extraMirrors });
    expect(p.endpoints[1]).toMatchObject({ origin: '--mirror', insecure: true, pullFromMirror: 'all' });
  });

  it.each(['', 'https://', 'a b', 'host/UPPER', '*.example.com', 'host?x=1'])('--mirror %j is E_USAGE', (v) => {
    expect(thrown(() => parseMirrorFlag(v)).code).toBe('E_USAGE');
  });
});
