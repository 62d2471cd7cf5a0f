import { describe, expect, it } from 'vitest';
import type { Descriptor } from '../../../src/oci/descriptor.js';
import { parseReference } from '../../../src/ref/index.js';
import { fullReference, selectEntry } from '../../../src/transports/layout-names.js';

const REF = 'org.opencontainers.image.ref.name';
const CTR = 'io.containerd.image.name';
const dig = (c: string) => `sha256:${c.repeat(64)}` as Descriptor['digest'];
const entry = (c: string, annotations?: Record<string, string>): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: dig(c), size: 100, ...(annotations ? { annotations } : {}),
});
const fail = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string; hint?: string };
  }
  throw new Error('did not throw');
};

describe('selectEntry: which index.json entry a selector names', () => {
  // ferry's oci-archive (podman save style): both names are the full reference.
  const ferry = entry('a', { [REF]: 'docker.io/library/alpine:3.20', [CTR]: 'docker.io/library/alpine:3.20' });
  // docker save ≥ 25 / ctr export: ref.name is the tag, the full name is beside it.
  const docker = entry('b', { [REF]: '3.20', [CTR]: 'ghcr.io/o/app:3.20' });
  // skopeo / ferry oci: layouts: the tag only.
  const skopeo = entry('c', { [REF]: 'v1' });

  it('a plain tag matches ref.name or the tag of either full name', () => {
    expect(selectEntry([ferry, skopeo], '3.20', 'x')).toBe(ferry);
    expect(selectEntry([docker, skopeo], '3.20', 'x')).toBe(docker);
    expect(selectEntry([ferry, skopeo], 'v1', 'x')).toBe(skopeo);
  });

  it('a full name matches in any spelling (familiar or canonical), from either annotation', () => {
    expect(selectEntry([ferry, docker], 'docker.io/library/alpine:3.20', 'x')).toBe(ferry);
    expect(selectEntry([ferry, docker], 'alpine:3.20', 'x')).toBe(ferry);
    expect(selectEntry([ferry, docker], 'ghcr.io/o/app:3.20', 'x')).toBe(docker);
    expect(selectEntry([entry('d', { [REF]: 'alpine:3.20' })], 'docker.io/library/alpine:3.20', 'x').digest).toBe(dig('d'));
  });

  it('a digest selects by digest; no selector needs exactly one image', () => {
    expect(selectEntry([ferry, docker], dig('b'), 'x')).toBe(docker);
    expect(selectEntry([skopeo], undefined, 'x')).toBe(skopeo);
    const e = fail(() => selectEntry([ferry, skopeo, entry('e')], undefined, 'oci-archive:/t.tar'));
    expect(e).toMatchObject({ code: 'E_BAD_REFERENCE', message: expect.stringContaining('holds 3 images') });
    expect(e.hint).toBe(`available: docker.io/library/alpine:3.20, v1, ${dig('e')}`);
  });

  it('two different images carrying the same tag (ctr export a b) → ambiguity error listing both with digests', () => {
    const a = entry('1', { [REF]: 'v1', [CTR]: 'docker.io/library/alpine:v1' });
    const b = entry('2', { [REF]: 'v1', [CTR]: 'docker.io/library/busybox:v1' });
    const e = fail(() => selectEntry([a, b], 'v1', 'oci-archive:/t.tar'));
    expect(e.code).toBe('E_BAD_REFERENCE');
    expect(e.message).toBe('oci-archive:/t.tar: "v1" is ambiguous: it names 2 different images');
    expect(e.hint).toBe(`name one by full name or digest: docker.io/library/alpine:v1 (${dig('1')}), docker.io/library/busybox:v1 (${dig('2')})`);
    expect(selectEntry([a, b], 'busybox:v1', 'x')).toBe(b);
    expect(selectEntry([a, b], 'docker.io/library/alpine:v1', 'x')).toBe(a);
    // Also when only the tags of full ref names collide (ferry multi-image oci-archive).
    const c = entry('3', { [REF]: 'docker.io/library/alpine:v1' });
    const d = entry('4', { [REF]: 'ghcr.io/o/alpine:v1' });
    expect(fail(() => selectEntry([c, d], 'v1', 'x')).message).toContain('ambiguous');
  });

  it('one image listed under two matching names is not ambiguous', () => {
    const a = entry('1', { [REF]: 'v1' });
    const a2 = entry('1', { [REF]: 'docker.io/library/alpine:v1' });
    expect(selectEntry([a, a2], 'v1', 'x').digest).toBe(dig('1'));
  });

  it('no match → E_LOCAL_NOT_FOUND (exit 2: a local miss, never the registry 4) listing the names; an empty index → holds no images', () => {
    const e = fail(() => selectEntry([ferry, skopeo], 'v9', 'oci:/d'));
    expect(e).toMatchObject({ code: 'E_LOCAL_NOT_FOUND', message: 'oci:/d: no image tagged "v9"', hint: 'available: docker.io/library/alpine:3.20, v1' });
    expect(fail(() => selectEntry([skopeo], 'alpine:v1', 'x')).code).toBe('E_LOCAL_NOT_FOUND'); // a tag is not a repository
    expect(fail(() => selectEntry([], undefined, 'oci:/d')).message).toContain('holds no images');
  });
});

describe('fullReference: the full name recorded beside a destination name', () => {
  const base = parseReference('localhost:5000/app:v1');
  it('a plain tag takes the source repository; a reference stands for itself', () => {
    expect(fullReference('v2', base)).toBe('localhost:5000/app:v2');
    expect(fullReference('v2', undefined)).toBeUndefined();
    expect(fullReference('alpine:3.20', base)).toBe('docker.io/library/alpine:3.20');
    expect(fullReference('ghcr.io/o/x:1', undefined)).toBe('ghcr.io/o/x:1');
    expect(fullReference('ghcr.io/o/x', base)).toBeUndefined(); // no tag: not a name to load under
    expect(fullReference('Bad Name', base)).toBeUndefined();
  });
});
