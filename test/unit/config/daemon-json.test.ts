import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonInsecure, loadDaemonJson, parseDaemonJson } from '../../../src/config/index.js';
import { thrown } from './helpers.js';

describe('daemon.json', () => {
  it('reads registry-mirrors (scheme and trailing slash dropped) and insecure-registries with their lines', () => {
    const d = parseDaemonJson('{\n  "debug": true,\n  "registry-mirrors": [\n    "https://mirror.gcr.io",\n    "http://10.0.0.9:5000/"\n  ],\n  "insecure-registries": ["reg.lan:5000", "192.168.0.0/16", "fd00::/8"]\n}\n', '/etc/docker/daemon.json');
    expect(d.mirrors).toEqual([
      { location: 'mirror.gcr.io', insecure: false, origin: { file: '/etc/docker/daemon.json', line: 4 } },
      { location: '10.0.0.9:5000', insecure: true, origin: { file: '/etc/docker/daemon.json', line: 5 } },
    ]);
    expect(d.insecure.map((i) => [i.entry, i.origin.line])).toEqual([['reg.lan:5000', 7], ['192.168.0.0/16', 7], ['fd00::/8', 7]]);
  });

  it.each([
    ['reg.lan:5000', true],
    ['reg.lan', false], // exact host[:port], as docker
    ['reg.lan:5001', false],
    ['192.168.3.4', true],
    ['192.168.3.4:5000', true],
    ['192.169.0.1:5000', false],
    ['[fd12::1]:5000', true],
    ['[fe80::1]:5000', false],
    ['name.in.192.168.example', false], // names are not resolved
  ])('insecure-registries covers %s: %s', (reg, want) => {
    const d = parseDaemonJson('{"insecure-registries": ["reg.lan:5000", "192.168.0.0/16", "fd00::/8"]}', '/d.json');
    expect(daemonInsecure(reg, d) !== undefined).toBe(want);
  });

  it.each([
    ['JSON syntax', '{\n  "registry-mirrors": [\n    "https://a.example",\n  ]\n}\n', 4, 'not valid JSON'],
    ['missing comma', '{\n  "debug": true\n  "registry-mirrors": []\n}', 3, 'not valid JSON'],
    ['unquoted key', '{\n\n  registry-mirrors: []\n}', 3, 'not valid JSON'],
    ['not an object', '[1]', 1, 'must be a JSON object'],
    ['mirrors not strings', '{\n"registry-mirrors": [1]\n}', 2, '"registry-mirrors" must be an array of strings'],
    ['mirror with a path', '{\n"registry-mirrors": [\n"https://m.example/v2/hub"]\n}', 3, 'without a path'],
    ['mirror with another scheme', '{"registry-mirrors": ["ftp://m.example"]}', 1, 'must be an http(s) URL'],
    ['bad CIDR', '{\n\n"insecure-registries": ["10.0.0.0/99"]}', 3, 'neither a host[:port] nor a CIDR'],
  ])('%s → E_BAD_CONFIG naming the file and line', (_w, text, line, why) => {
    const e = thrown(() => parseDaemonJson(text, '/etc/docker/daemon.json'));
    expect(e.code).toBe('E_BAD_CONFIG');
    expect(e.message).toMatch(new RegExp(`^/etc/docker/daemon\\.json:${line}: `));
    expect(e.message).toContain(why);
  });

  it('found under FERRY_SYSCONF_ROOT; --daemon-config must exist', () => {
    const root = mkdtempSync(join(tmpdir(), 'ferry-daemon-'));
    try {
      expect(loadDaemonJson({ FERRY_SYSCONF_ROOT: root })).toEqual({ mirrors: [], insecure: [] });
      const f = join(root, 'my.json');
      writeFileSync(f, '{"registry-mirrors": ["m.example"]}');
      expect(loadDaemonJson({ FERRY_SYSCONF_ROOT: root }, f).mirrors[0]?.location).toBe('m.example');
      const e = thrown(() => loadDaemonJson({}, join(root, 'nope.json')));
      expect(e.code).toBe('E_NO_SUCH_FILE');
      expect(e.message).toContain('nope.json');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
