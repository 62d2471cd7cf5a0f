import { describe, it, expect } from 'vitest';
import type { Digest } from '../../../src/oci/digest.js';
import {
  DOCKER_HUB,
  DOCKER_HUB_API,
  DOCKER_HUB_CONFIG_KEY,
  ImageReference,
  isLoopbackRegistry,
  parseReference,
  parseRepository,
} from '../../../src/ref/index.js';

const HEX = 'e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582';
const D = `sha256:${HEX}` as Digest;
const D512 = `sha512:${'ab'.repeat(64)}` as Digest;
const D384 = `sha384:${'cd'.repeat(48)}` as Digest;

interface Want {
  registry: string;
  repository: string;
  tag: string | undefined;
  digest?: Digest;
  str: string;
  familiar: string;
  apiHost?: string;
  configKey?: string;
}

const hub = (repository: string, tag: string | undefined, familiar: string, digest?: Digest): Want => ({
  registry: 'docker.io',
  repository,
  tag,
  digest,
  str: `docker.io/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`,
  familiar,
  apiHost: 'registry-1.docker.io',
  configKey: 'https://index.docker.io/v1/',
});

const at = (registry: string, repository: string, tag: string | undefined, digest?: Digest): Want => {
  const str = `${registry}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, tag, digest, str, familiar: str, apiHost: registry, configKey: registry };
};

const valid: Array<[string, string, Want]> = [
  ['bare official name', 'ubuntu', hub('library/ubuntu', 'latest', 'ubuntu:latest')],
  ['official name with tag', 'ubuntu:24.04', hub('library/ubuntu', '24.04', 'ubuntu:24.04')],
  ['explicit library/', 'library/ubuntu', hub('library/ubuntu', 'latest', 'ubuntu:latest')],
  ['docker.io without library/', 'docker.io/ubuntu', hub('library/ubuntu', 'latest', 'ubuntu:latest')],
  ['fully qualified hub', 'docker.io/library/busybox:latest', hub('library/busybox', 'latest', 'busybox:latest')],
  ['index.docker.io alias', 'index.docker.io/busybox', hub('library/busybox', 'latest', 'busybox:latest')],
  ['index.docker.io user repo', 'index.docker.io/user/app:1', hub('user/app', '1', 'user/app:1')],
  ['user repo on hub', 'user/app:1', hub('user/app', '1', 'user/app:1')],
  ['nested hub path keeps library/', 'docker.io/library/foo/bar', hub('library/foo/bar', 'latest', 'library/foo/bar:latest')],
  ['digest only: no default tag', `busybox@${D}`, hub('library/busybox', undefined, `busybox@${D}`, D)],
  ['tag and digest both kept', `busybox:1.36@${D}`, hub('library/busybox', '1.36', `busybox:1.36@${D}`, D)],
  ['sha512 digest', `alpine@${D512}`, hub('library/alpine', undefined, `alpine@${D512}`, D512)],
  ['sha384 digest', `alpine@${D384}`, hub('library/alpine', undefined, `alpine@${D384}`, D384)],
  ['ghcr with tag', 'ghcr.io/owner/app:v1.2.3', at('ghcr.io', 'owner/app', 'v1.2.3')],
  ['ghcr no library/ added', 'ghcr.io/app', at('ghcr.io', 'app', 'latest')],
  ['gcr keeps library/', `gcr.io/library/busybox:latest@${D}`, at('gcr.io', 'library/busybox', 'latest', D)],
  ['localhost is a domain', 'localhost/foo', at('localhost', 'foo', 'latest')],
  ['localhost with port', 'localhost:5000/ns/repo:tag', at('localhost:5000', 'ns/repo', 'tag')],
  ['IPv4 with port', '127.0.0.1:5000/debian', at('127.0.0.1:5000', 'debian', 'latest')],
  ['IPv6 in brackets with port', '[::1]:5000/foo:dev', at('[::1]:5000', 'foo', 'dev')],
  ['IPv6 without port', '[fc00:1:2:3:4:5:6:7]/library/debian', at('[fc00:1:2:3:4:5:6:7]', 'library/debian', 'latest')],
  ['host with port, tag and digest', `host:5000/ns/repo:tag@${D}`, at('host:5000', 'ns/repo', 'tag', D)],
  ['uppercase first component is a domain', 'LOCALDOMAIN/foo', at('LOCALDOMAIN', 'foo', 'latest')],
  ['punycode host', 'xn--n3h.com:18080/foo', at('xn--n3h.com:18080', 'foo', 'latest')],
  ['underscore namespace is not a domain', 'test_com/foo', hub('test_com/foo', 'latest', 'test_com/foo:latest')],
  ['separators: dashes, dots, double underscore', 'my--org/a.b__c-d', hub('my--org/a.b__c-d', 'latest', 'my--org/a.b__c-d:latest')],
  ['single-character components', 'd/t', hub('d/t', 'latest', 'd/t:latest')],
  ['uppercase and underscore tag', 'foo:V1_2-rc.3', hub('library/foo', 'V1_2-rc.3', 'foo:V1_2-rc.3')],
  ['128-character tag', `foo:${'a'.repeat(128)}`, hub('library/foo', 'a'.repeat(128), `foo:${'a'.repeat(128)}`)],
  ['host:port without slash is name:tag', 'localhost:5000', hub('library/localhost', '5000', 'localhost:5000')],
  ['64-hex path under an explicit domain', `docker.io/${HEX}`, hub(`library/${HEX}`, 'latest', `${HEX}:latest`)],
  ['skopeo docker:// prefix', 'docker://quay.io/podman/hello:latest', at('quay.io', 'podman/hello', 'latest')],
  ['skopeo prefix on a familiar name', 'docker://alpine', hub('library/alpine', 'latest', 'alpine:latest')],
  ['255-character path', `ghcr.io/${'a'.repeat(255)}`, at('ghcr.io', 'a'.repeat(255), 'latest')],
];

describe('parseReference: valid', () => {
  it.each(valid)('%s (%s)', (_name, input, want) => {
    const r = parseReference(input);
    expect(r.registry).toBe(want.registry);
    expect(r.repository).toBe(want.repository);
    expect(r.tag).toBe(want.tag);
    expect(r.digest).toBe(want.digest);
    expect(r.toString()).toBe(want.str);
    expect(r.familiar()).toBe(want.familiar);
    expect(r.name()).toBe(`${want.registry}/${want.repository}`);
    expect(r.reference()).toBe(want.digest ?? want.tag);
    if (want.apiHost !== undefined) expect(r.apiHost()).toBe(want.apiHost);
    if (want.configKey !== undefined) expect(r.configKey()).toBe(want.configKey);
    expect(parseReference(r.toString())).toEqual(r);
  });
});

const invalid: Array<[string, string, string]> = [
  ['empty', '', 'reference is empty'],
  ['leading whitespace', ' ubuntu', 'leading or trailing whitespace'],
  ['trailing newline', 'ubuntu\n', 'leading or trailing whitespace'],
  ['inner space', 'ubuntu :latest', 'contains whitespace'],
  ['uppercase repository', 'Ubuntu', 'repository name must be lowercase'],
  ['uppercase after namespace', 'docker/Docker', 'repository name must be lowercase'],
  ['uppercase path under a domain', 'docker.io/docker/Docker', 'repository name must be lowercase'],
  ['URL with scheme', 'https://github.com/docker/docker', 'a reference is not a URL'],
  ['bare 64-hex identifier', HEX, 'cannot use a 64-character hexadecimal string'],
  ['empty tag', 'ubuntu:', "tag is empty (nothing after ':')"],
  ['tag starting with dash', 'ubuntu:-rc', 'invalid tag "-rc"'],
  ['tag with bad character', 'ubuntu:a+b', 'invalid tag "a+b"'],
  ['tag of 129 characters', `ubuntu:${'t'.repeat(129)}`, `tag "${'t'.repeat(129)}" is longer than 128 characters`],
  ['two tags', 'ubuntu:a:b', 'invalid tag "a:b"'],
  ['@ without digest', 'ubuntu@', "digest is empty (nothing after '@')"],
  ['short sha256', 'ubuntu@sha256:abc', 'invalid digest: a sha256 digest needs exactly 64 lowercase hex characters'],
  ['uppercase sha256 hex', `ubuntu@sha256:${HEX.toUpperCase()}`, 'invalid digest: a sha256 digest needs exactly 64 lowercase hex'],
  ['digest without algorithm', `ubuntu@${HEX}`, 'invalid digest: not of the form algorithm:hex'],
  ['unsupported algorithm', `ubuntu@md5:${'0'.repeat(32)}`, 'unsupported digest algorithm "md5"'],
  ['two digests', `ubuntu@${D}@${D}`, "more than one '@'"],
  ['trailing slash', 'docker/', 'empty path component'],
  ['triple slash', 'docker///docker', 'empty path component'],
  ['leading dash', '-docker', 'must start and end with a lowercase letter or digit'],
  ['trailing dash in namespace', 'docker-/docker', 'must start and end with a lowercase letter or digit'],
  ['only underscores', '____/____', 'must start and end'],
  ['double dot', 'docker/dock..er', 'invalid separator'],
  ['double dot in first component is a bad host', 'dock..er/docker', 'registry host "dock..er" is not a valid host name'],
  ['underscore-dot', 'docker/dock_.er', 'invalid separator'],
  ['triple underscore', 'a___b', 'invalid separator'],
  ['bad character in path', 'ghcr.io/own!er/app', 'invalid character "!"'],
  ['domain starting with dash', '-docker.io/docker/docker', 'is not a valid host name'],
  ['underscore in domain', 'my_host.com/app', 'registry host "my_host.com" is not a valid host name'],
  ['non-numeric port', 'localhost:abc/foo', 'invalid port "abc"'],
  ['tag with a slash looks like a host', 'ubuntu:feature/x', 'invalid port "feature"'],
  ['unbracketed IPv6', 'fc00::1:5000/debian', 'put it in brackets'],
  ['IPv6 zone', '[fe80::1%eth0]:5000/debian', 'not a valid bracketed IPv6 address'],
  ['IPv4-mapped IPv6', '[2001:db8:3:4::192.0.2.33]:5000/debian', 'not a valid bracketed IPv6 address'],
  ['bracketed IPv6 host only', '[fc00::1]:5000', 'invalid character "["'],
  ['host only with slash', 'ghcr.io/', 'repository name is empty'],
  ['docker.io only with slash', 'docker.io/', 'repository name is empty'],
  ['tag without a name', ':latest', 'repository name is empty'],
  ['digest without a name', `@${D}`, 'repository name is empty'],
  ['path longer than 255', `ghcr.io/${'a'.repeat(256)}`, 'name is longer than 255 characters'],
  ['hub path longer than 255 after library/', 'a'.repeat(250), 'name is longer than 255 characters'],
  ['nothing after docker://', 'docker://', 'nothing after "docker://"'],
  ['unicode letter', 'ubüntu', 'invalid character "ü"'],
];

describe('parseReference: invalid', () => {
  it.each(invalid)('%s (%j)', (_name, input, fragment) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'FerryError', code: 'E_BAD_REFERENCE' });
    const message = (err as Error).message;
    expect(message).toContain(`invalid reference ${JSON.stringify(input.length > 300 ? `${input.slice(0, 300)}…` : input)}: `);
    expect(message).toContain(fragment);
  });
});

describe('hints', () => {
  const hintOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return (e as { hint?: string }).hint;
    }
    throw new Error('expected a throw');
  };
  it.each([
    ['uppercase image', 'Ubuntu:Latest', 'did you mean "ubuntu:Latest"?'],
    ['uppercase path under a host', 'ghcr.io/Owner/App@' + D, `did you mean "ghcr.io/owner/app@${D}"?`],
    ['uppercase with docker:// kept', 'docker://Alpine', 'did you mean "docker://alpine"?'],
    ['uppercase plus another error: no suggestion', 'Ubuntu!', 'repository names must be lowercase'],
    ['slash in a tag', 'ubuntu:feature/x', "tags cannot contain '/'"],
    ['underscore host', 'my_host.com/app', 'is read as a registry host'],
  ])('%s', (_name, input, hint) => {
    expect(hintOf(() => parseReference(input))).toContain(hint);
  });
  it('uppercase hint without a valid suggestion has no "did you mean"', () => {
    expect(hintOf(() => parseReference('Ubuntu!'))).not.toContain('did you mean');
  });
});

describe('defaultTag option and reference()', () => {
  it('defaultTag: false leaves tag undefined', () => {
    const r = parseReference('ubuntu', { defaultTag: false });
    expect(r.tag).toBeUndefined();
    expect(r.toString()).toBe('docker.io/library/ubuntu');
    expect(r.familiar()).toBe('ubuntu');
    expect(r.reference()).toBe('latest');
  });
  it('digest wins in reference()', () => {
    expect(parseReference(`ubuntu:22.04@${D}`).reference()).toBe(D);
  });
});

describe('withTag / withDigest / constructor', () => {
  const base = parseReference(`ghcr.io/o/app:1@${D}`);
  it('withTag replaces the tag and drops the digest', () => {
    const r = base.withTag('2');
    expect(r.toString()).toBe('ghcr.io/o/app:2');
    expect(r.digest).toBeUndefined();
  });
  it('withTag validates', () => {
    expect(() => base.withTag('-bad')).toThrow(/invalid tag "-bad"/);
    expect(() => base.withTag('')).toThrow(/tag is empty/);
  });
  it('withDigest keeps the tag', () => {
    const r = parseReference('busybox:1.36').withDigest(D);
    expect(r.toString()).toBe(`docker.io/library/busybox:1.36@${D}`);
    expect(r.familiar()).toBe(`busybox:1.36@${D}`);
  });
  it('withDigest validates', () => {
    expect(() => base.withDigest('sha256:abc' as Digest)).toThrow(/a sha256 digest needs exactly 64/);
  });
  it('constructor canonicalises Docker Hub names', () => {
    const r = new ImageReference('index.docker.io', 'ubuntu', 'latest');
    expect(r).toEqual(parseReference('ubuntu'));
  });
  it('constructor validates', () => {
    expect(() => new ImageReference('ghcr.io', 'Bad')).toThrow(/repository name must be lowercase/);
    expect(() => new ImageReference('bad host', 'x')).toThrow(/not a valid host name/);
  });
});

describe('parseRepository', () => {
  it.each([
    ['familiar', 'ubuntu', 'docker.io', 'library/ubuntu'],
    ['host with port', 'host:5000/ns/x', 'host:5000', 'ns/x'],
    ['docker:// prefix', 'docker://ghcr.io/o/app', 'ghcr.io', 'o/app'],
  ])('%s', (_name, input, registry, repository) => {
    const r = parseRepository(input);
    expect(r).toMatchObject({ registry, repository, tag: undefined, digest: undefined });
  });
  it.each([
    ['tag', 'ubuntu:latest', 'expected a repository without a tag, got ":latest"'],
    ['digest', `ghcr.io/o/app@${D}`, 'expected a repository without a digest'],
    ['bare registry host', 'localhost:5000', 'a registry host alone is not a repository'],
    ['invalid name', 'Ubuntu', 'repository name must be lowercase'],
  ])('rejects %s', (_name, input, fragment) => {
    expect(() => parseRepository(input)).toThrow(fragment);
    try {
      parseRepository(input);
    } catch (e) {
      expect(e).toMatchObject({ code: 'E_BAD_REFERENCE' });
      if (_name !== 'invalid name') expect((e as { hint?: string }).hint).toBe('tags takes a repository, not a tag');
    }
  });
});

describe('isLoopbackRegistry', () => {
  it.each([
    ['localhost', true], ['localhost:5000', true], ['LOCALHOST:5000', true], ['127.0.0.1', true],
    ['127.0.0.1:5000', true], ['127.255.1.2:80', true], ['[::1]:5000', true], ['[::1]', true], ['::1', true],
    ['[0:0:0:0:0:0:0:1]:5000', true], ['[0::1]', true],
    ['docker.io', false], ['128.0.0.1', false], ['127.0.0.256', false], ['127.0.0.1.example.com', false],
    ['localhost.example.com:5000', false], ['[::2]:5000', false], ['[fc00::1]', false], ['localhost:abc', false],
    ['::', false], ['[::1]x', false],
  ])('%s → %s', (registry, want) => {
    expect(isLoopbackRegistry(registry)).toBe(want);
  });
});

describe('constants', () => {
  it('match docker', () => {
    expect(DOCKER_HUB).toBe('docker.io');
    expect(DOCKER_HUB_API).toBe('registry-1.docker.io');
    expect(DOCKER_HUB_CONFIG_KEY).toBe('https://index.docker.io/v1/');
  });
});
