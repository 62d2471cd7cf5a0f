import { describe, expect, it } from 'vitest';
import { parseShortNameMode, resolveShortName, type ShortNameMode } from '../../../src/config/index.js';
import { conf, thrown } from './helpers.js';

const SEARCH = 'unqualified-search-registries = ["registry.fedoraproject.org", "quay.io"]\n[aliases]\n"fedora" = "registry.fedoraproject.org/fedora"\n"team/tool" = "ghcr.io/team/tool"\n';
const names = (input: string, text: string, mode?: ShortNameMode) => resolveShortName(input, conf(text), mode).candidates.map(String);

describe('short names', () => {
  it.each([
    // [input, config, mode, candidates]
    ['alpine', '', undefined, ['docker.io/library/alpine:latest']],
    ['user/app:1', '', 'enforcing', ['docker.io/user/app:1']],
    ['ghcr.io/o/a', SEARCH, 'enforcing', ['ghcr.io/o/a:latest']],
    ['localhost/a', SEARCH, undefined, ['localhost/a:latest']],
    ['fedora:40', SEARCH, 'permissive', ['registry.fedoraproject.org/fedora:40']],
    ['fedora:40', SEARCH, 'enforcing', ['registry.fedoraproject.org/fedora:40']],
    ['fedora', SEARCH, 'disabled', ['docker.io/library/fedora:latest']],
    ['team/tool@sha256:' + 'e'.repeat(64), SEARCH, undefined, ['ghcr.io/team/tool@sha256:' + 'e'.repeat(64)]],
    ['alpine:3', SEARCH, 'permissive', ['registry.fedoraproject.org/alpine:3', 'quay.io/alpine:3']],
    ['alpine:3', SEARCH, 'disabled', ['docker.io/library/alpine:3']],
    ['alpine', 'unqualified-search-registries = ["docker.io"]\n', 'enforcing', ['docker.io/library/alpine:latest']],
    ['alpine', 'unqualified-search-registries = []\n', 'enforcing', ['docker.io/library/alpine:latest']],
  ] as Array<[string, string, ShortNameMode | undefined, string[]]>)('%s (%s mode %s)', (input, text, mode, want) => {
    expect(names(input, text, mode)).toEqual(want);
  });

  it('says why: alias, search or docker, with the line', () => {
    expect(resolveShortName('fedora', conf(SEARCH))).toMatchObject({ rationale: 'alias', origin: '/c/0.conf:3', mode: 'permissive', modeOrigin: 'default' });
    expect(resolveShortName('x', conf(SEARCH))).toMatchObject({ rationale: 'search', origin: '/c/0.conf:1' });
    expect(resolveShortName('x', conf(''))).toMatchObject({ rationale: 'docker' });
    expect(resolveShortName('x.io/y', conf(SEARCH))).toMatchObject({ rationale: 'qualified' });
  });

  it('enforcing with several search registries and no alias is E_USAGE asking to qualify', () => {
    const e = thrown(() => resolveShortName('alpine', conf(`short-name-mode = "enforcing"\n${SEARCH}`)));
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain('short name "alpine" is ambiguous');
    expect(e.message).toContain('/c/0.conf:1');
    expect(e.hint).toContain('registry.fedoraproject.org/alpine:latest or quay.io/alpine:latest');
  });

  it('the flag overrides the file\'s mode', () => {
    const c = conf(`short-name-mode = "enforcing"\n${SEARCH}`);
    expect(resolveShortName('alpine', c, 'permissive')).toMatchObject({ modeOrigin: '--short-name-mode', candidates: [expect.anything(), expect.anything()] });
  });

  it('an invalid short name is E_BAD_REFERENCE; a bad mode is E_USAGE', () => {
    expect(thrown(() => resolveShortName('Alpine!', conf(SEARCH))).code).toBe('E_BAD_REFERENCE');
    expect(thrown(() => parseShortNameMode('strict')).code).toBe('E_USAGE');
  });
});
