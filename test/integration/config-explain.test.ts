/**
 * `ferry config explain` as built: registries.conf (main file, drop-ins, alias cache) and
 * daemon.json found through a temp HOME, CONTAINERS_REGISTRIES_CONF and FERRY_SYSCONF_ROOT (the
 * real /etc is never read), text and --json output, and exit status 9 for a blocked registry.
 * Sends nothing over the network.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';
import { expectFailure, ferryJson, ferryOk } from './support.js';
import { expectDocument, expectErrorDocument } from './json-contract.js';

let root: string;
let env: NodeJS.ProcessEnv;
const D = `sha256:${'c'.repeat(64)}`;

function put(p: string, text: string): string {
  const f = join(root, p);
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(f, text);
  return f;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-config-explain-'));
  put('conf/registries.conf', `unqualified-search-registries = ["quay.io", "docker.io"]

[[registry]]
prefix = "docker.io"
location = "docker.io"

[[registry.mirror]]
location = "hub-cache.internal:5000"

[[registry.mirror]]
location = "digests.internal/hub"
pull-from-mirror = "digest-only"

[[registry]]
location = "blocked.example"
blocked = true
`);
  put('conf/registries.conf.d/50-corp.conf', `[[registry]]
prefix = "ghcr.io/corp"
location = "registry.corp.example/ghcr-corp"
insecure = true
`);
  put('home/.cache/containers/short-name-aliases.conf', '[aliases]\n"tool" = "ghcr.io/corp/tool"\n');
  put('sys/etc/docker/daemon.json', '{\n  "registry-mirrors": ["https://mirror.gcr.io"]\n}\n');
  env = { HOME: join(root, 'home'), CONTAINERS_REGISTRIES_CONF: join(root, 'conf/registries.conf'), FERRY_SYSCONF_ROOT: join(root, 'sys') };
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('ferry config explain', () => {
  it('a Hub image by tag: registries.conf mirrors serving tags, then daemon.json, then the origin; push the origin only', async () => {
    const conf = join(root, 'conf/registries.conf');
    const doc = await ferryJson(['config', 'explain', 'docker.io/library/alpine:3.20'], { env });
    expectDocument(doc, 'config explain');
    expect(doc).toMatchObject({
      source: 'docker.io/library/alpine:3.20',
      files: [conf, join(root, 'conf/registries.conf.d/50-corp.conf'), join(root, 'home/.cache/containers/short-name-aliases.conf'), join(root, 'sys/etc/docker/daemon.json')],
      rule: { prefix: 'docker.io', origin: `${conf}:3` },
      shortName: { rationale: 'qualified' },
    });
    const pull = (doc.pull as { endpoints: Array<Record<string, unknown>> }).endpoints;
    expect(pull.map((e) => [e.reference, e.mirror, e.origin])).toEqual([
      ['hub-cache.internal:5000/library/alpine:3.20', true, `${conf}:7`],
      ['mirror.gcr.io/library/alpine:3.20', true, `${join(root, 'sys/etc/docker/daemon.json')}:2`],
      ['docker.io/library/alpine:3.20', false, `${conf}:3`],
    ]);
    expect((doc.push as { endpoints: unknown[] }).endpoints).toEqual([
      { registry: 'docker.io', repository: 'library/alpine', reference: 'docker.io/library/alpine:3.20', insecure: false, mirror: false, origin: `${conf}:3` },
    ]);
  });

  it('by digest the digest-only mirror joins; --no-mirrors leaves the origin', async () => {
    const doc = await ferryJson(['config', 'explain', `alpine@${D}`, '--short-name-mode', 'disabled'], { env });
    expect((doc.pull as { endpoints: Array<{ registry: string }> }).endpoints.map((e) => e.registry)).toEqual(['hub-cache.internal:5000', 'digests.internal', 'mirror.gcr.io', 'docker.io']);
    const none = await ferryJson(['config', 'explain', `docker.io/library/alpine@${D}`, '--no-mirrors'], { env });
    expect((none.pull as { endpoints: Array<{ registry: string }> }).endpoints.map((e) => e.registry)).toEqual(['docker.io']);
  });

  it('text: short-name candidates in order, the drop-in rewrite with its insecure line, --mirror first', async () => {
    const r = await ferryOk(['config', 'explain', 'app:1'], { env });
    expect(r.stdout).toContain('Reference:   app:1 → quay.io/app:1 (unqualified-search-registries at');
    expect(r.stdout).toContain('Short names: mode permissive (the default); tried in order: quay.io/app:1, docker.io/library/app:1');
    const corp = join(root, 'conf/registries.conf.d/50-corp.conf');
    const t = await ferryOk(['config', 'explain', 'tool:2', '--mirror', 'cache.example/ghcr'], { env });
    expect(t.stdout).toContain(`alias at ${join(root, 'home/.cache/containers/short-name-aliases.conf')}:2`);
    expect(t.stdout).toMatch(/^Pull: {8}1\. cache\.example\/ghcr\/corp\/tool:2 +mirror, from --mirror$/m);
    expect(t.stdout).toMatch(new RegExp(`^ {13}2\\. registry\\.corp\\.example/ghcr-corp/tool:2 +origin, from ${corp.replace(/[.]/g, '\\.')}:1, insecure \\(${corp.replace(/[.]/g, '\\.')}:1\\)$`, 'm'));
    expect(t.stdout).toMatch(/^Push: {8}1\. ghcr\.io\/corp\/tool:2 +origin, from .*50-corp\.conf:1, insecure/m);
  });

  it('certs.d: every client pair of a host, in the order offered, with its CA (JSON and text)', async () => {
    const d = join(root, 'home/.config/containers/certs.d/ghcr.io');
    for (const f of ['ca.crt', 'b-second.cert', 'b-second.key', 'a-first.cert', 'a-first.key']) put(`home/.config/containers/certs.d/ghcr.io/${f}`, 'PEM\n');
    const tenv = { ...env, FERRY_SYSTEM_CERTS_D: '' };
    const doc = await ferryJson(['config', 'explain', 'ghcr.io/org/app:1'], { env: tenv });
    expectDocument(doc, 'config explain');
    expect(doc.tls).toEqual([{
      registry: 'ghcr.io', dir: d, caFiles: [join(d, 'ca.crt')],
      clientCertificates: [{ cert: join(d, 'a-first.cert'), key: join(d, 'a-first.key') }, { cert: join(d, 'b-second.cert'), key: join(d, 'b-second.key') }],
    }]);
    const t = await ferryOk(['config', 'explain', 'ghcr.io/org/app:1'], { env: tenv });
    expect(t.stdout).toContain(`TLS:         ghcr.io (${d}): CA ${join(d, 'ca.crt')}; client pair 1: ${join(d, 'a-first.cert')} + ${join(d, 'a-first.key')}; client pair 2: ${join(d, 'b-second.cert')} + ${join(d, 'b-second.key')}`);
    const none = await ferryJson(['config', 'explain', 'quay.io/org/app:1'], { env: tenv });
    expect(none.tls).toEqual([]);
  });

  it('enforcing with two search registries is exit 2 asking to qualify', async () => {
    const r = await runCli(['config', 'explain', 'app', '--short-name-mode', 'enforcing'], { env });
    expectFailure(r, 2, 'short name "app" is ambiguous', 'hint: qualify it');
  });

  it('a blocked registry is E_BLOCKED, exit 9, naming the file and line', async () => {
    const r = await runCli(['config', 'explain', 'blocked.example/team/app:1'], { env });
    expectFailure(r, 9, `blocked.example/team/app is blocked by ${join(root, 'conf/registries.conf')}:16`);
    const j = await runCli(['config', 'explain', '--json', 'blocked.example/team/app:1'], { env });
    expect(j.code).toBe(9);
    expectErrorDocument(j.stdout, 'config explain', 'E_BLOCKED', 9);
  });

  it('a malformed drop-in is exit 2 naming it and the line; --registries-conf overrides the variable', async () => {
    const bad = put('bad/registries.conf.d/10-bad.conf', '[[registry]]\nlocation = "x.example"\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "sometimes"\n');
    const main = put('bad/registries.conf', '');
    const r = await runCli(['config', 'explain', 'x.example/a', '--registries-conf', main], { env });
    expectFailure(r, 2, `${bad}:5: "pull-from-mirror" is "sometimes"`);
    const daemon = put('bad/daemon.json', '{\n  "registry-mirrors": [\n    "https://a.example",\n  ]\n}\n');
    expectFailure(await runCli(['config', 'explain', 'alpine', '--daemon-config', daemon], { env }), 2, `${daemon}:4: not valid JSON`);
  });
});
