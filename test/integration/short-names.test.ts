/**
 * Short names through the built CLI against two REAL registries, configured by registries.conf
 * (CONTAINERS_REGISTRIES_CONF): unqualified-search-registries in order (the first that has the
 * image wins and names it), [aliases], enforcing mode, disabled mode (docker's rule), and a name
 * no search registry has.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { freePort, startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { expectFailure, ferryImage, ferryJson, readLayoutIndex } from './support.js';

const has = requireBinary('docker-registry');

describe.skipIf(!has)('short names, by registries.conf, against real registries', () => {
  let work: TempDir;
  let empty: RealRegistry;
  let full: RealRegistry;
  let image: OciLayoutResult;
  let n = 0;
  const conf = (toml: string): Record<string, string> => {
    const f = join(work.path, `registries-${++n}.conf`);
    writeFileSync(f, toml);
    return { CONTAINERS_REGISTRIES_CONF: f };
  };
  beforeAll(async () => {
    work = makeTempDir('short-names');
    [empty, full] = await Promise.all([startRegistry('open'), startRegistry('open')]);
    image = await makeOciLayout(join(work.path, 'src'), { tag: 'v1', layers: 1, layerSize: 4096, seed: 'short-names' });
    await ferryImage(['push', '-q', `oci:${join(work.path, 'src')}:v1`, `${full.host}/team/app:v1`]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([empty?.stop(), full?.stop()]);
    work?.remove();
  });

  it('search registries in order: the first that has it wins, and names the image', async () => {
    const env = conf(`unqualified-search-registries = ["${empty.host}", "${full.host}"]\n`);
    const out = join(work.path, 'out-search');
    const r = await runCli(['pull', '--debug', 'team/app:v1', `oci:${out}`], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`short name team/app:v1 → ${full.host}/team/app:v1 (unqualified-search-registries at ${env['CONTAINERS_REGISTRIES_CONF']}:1; tried ${empty.host}/team/app:v1`);
    const entry = readLayoutIndex(out).manifests[0]!;
    expect(entry.digest).toBe(image.digest);
    expect(entry.annotations?.['io.containerd.image.name']).toBe(`${full.host}/team/app:v1`);
    const insp = await ferryJson<{ digest: string; source: string }>(['inspect', 'team/app:v1'], { env });
    expect(insp.source).toBe(`${full.host}/team/app:v1`);
  });

  it('search registries are asked through their mirrors: one whose origin is down resolves by its mirror (a real pull-through cache)', async () => {
    const mirror = await startRegistry('open', { proxy: { remoteUrl: full.url } });
    try {
      const down = `127.0.0.1:${await freePort()}`;
      const env = conf(`unqualified-search-registries = ["${empty.host}", "${down}"]\n\n[[registry]]\nlocation = "${down}"\n\n[[registry.mirror]]\nlocation = "${mirror.host}"\n`);
      const r = await runCli(['inspect', '--json', '--debug', 'team/app:v1'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`short name team/app:v1 → ${down}/team/app:v1`);
      expect(JSON.parse(r.stdout)).toMatchObject({ digest: image.digest, source: `${down}/team/app:v1` });
      expect(r.stderr).toMatch(new RegExp(`manifest ${down.replace(/\./g, '\\.')}/team/app:v1 sha256:[0-9a-f]{64} served by mirror ${mirror.host.replace(/\./g, '\\.')}/team/app`));
    } finally {
      await mirror.stop();
    }
  });

  it('an alias wins over the search list', async () => {
    const env = conf(`unqualified-search-registries = ["${empty.host}"]\n[aliases]\n"myapp" = "${full.host}/team/app"\n`);
    const insp = await ferryJson<{ digest: string }>(['inspect', 'myapp:v1'], { env });
    expect(insp.digest).toBe(image.digest);
  });

  it('enforcing with several search registries: exit 2 before any request, naming the candidates', async () => {
    const env = conf(`unqualified-search-registries = ["${empty.host}", "${full.host}"]\nshort-name-mode = "enforcing"\n`);
    const r = await runCli(['inspect', 'team/app:v1'], { env });
    expectFailure(r, 2, /ambiguous/, new RegExp(`${full.host.replace(/\./g, '\\.')}/team/app:v1`));
  });

  it('nobody has it: exit 4 listing what was tried; disabled: docker\'s rule (docker.io, a closed local port here)', async () => {
    const env = conf(`unqualified-search-registries = ["${empty.host}", "${full.host}"]\n`);
    const none = await runCli(['inspect', 'team/nothing:v1'], { env });
    expectFailure(none, 4, /none of the search registries has it/, new RegExp(empty.host.replace(/\./g, '\\.')));
    const closed = `registry-1.docker.io:443:127.0.0.1:${await freePort()}`;
    const off = await runCli(['inspect', '--short-name-mode', 'disabled', '--resolve', closed, 'team/app:v1'], { env });
    expectFailure(off, 5, /registry-1\.docker\.io/);
  });
});

describe.skipIf(!has)('--creds with a short name: bound to the registry it resolves to (real htpasswd registries)', () => {
  let work: TempDir;
  let a: RealRegistry;
  let b: RealRegistry;
  let image: OciLayoutResult;
  let n = 0;
  const conf = (toml: string): Record<string, string> => {
    const f = join(work.path, `registries-${++n}.conf`);
    writeFileSync(f, toml);
    return { CONTAINERS_REGISTRIES_CONF: f };
  };
  beforeAll(async () => {
    work = makeTempDir('short-names-creds');
    [a, b] = await Promise.all([
      startRegistry('htpasswd', { htpasswdUsers: { anna: 'pw-anna' } }),
      startRegistry('htpasswd', { htpasswdUsers: { bert: 'pw-bert' } }),
    ]);
    image = await makeOciLayout(join(work.path, 'src'), { tag: 'v1', layers: 1, layerSize: 2048, seed: 'short-names-creds' });
    await ferryImage(['push', '-q', '--creds', 'anna:pw-anna', `oci:${join(work.path, 'src')}:v1`, `${a.host}/team/app:v1`]);
    await ferryImage(['push', '-q', '--creds', 'bert:pw-bert', `oci:${join(work.path, 'src')}:v1`, `${b.host}/team/app:v1`]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    work?.remove();
  });

  it('one search registry: --creds goes to it (not to docker.io, as the name parses) for inspect and pull', async () => {
    const env = conf(`unqualified-search-registries = ["${a.host}"]\n`);
    const r = await runCli(['inspect', '--json', '--debug', '--creds', 'anna:pw-anna', 'team/app:v1'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ digest: image.digest, source: `${a.host}/team/app:v1` });
    expect(r.stderr).toContain(`credentials for ${a.host} (any side): basic (command line (--creds))`);
    expect(r.stderr).not.toMatch(/docker\.io/);
    const pulled = await ferryImage(['pull', '-q', '--creds', 'anna:pw-anna', 'team/app:v1', `oci:${join(work.path, 'pulled-a')}:v1`], { env });
    expect(pulled.digest).toBe(image.digest);
  });

  it('an alias: --creds goes to the alias target', async () => {
    const env = conf(`unqualified-search-registries = ["${a.host}"]\n[aliases]\n"bapp" = "${b.host}/team/app"\n`);
    const insp = await ferryJson<{ digest: string; source: string }>(['inspect', '--creds', 'bert:pw-bert', 'bapp:v1'], { env });
    expect(insp).toMatchObject({ digest: image.digest, source: `${b.host}/team/app:v1` });
  });

  it('several search registries: exit 2 before any request or stdin read, asking to qualify the name', async () => {
    const env = conf(`unqualified-search-registries = ["${a.host}", "${b.host}"]\n`);
    const before = [readFileSync(a.logFile, 'utf8').length, readFileSync(b.logFile, 'utf8').length];
    const r = await runCli(['inspect', '--creds', 'anna:pw-anna', 'team/app:v1'], { env });
    expectFailure(r, 2, `--creds: short name team/app:v1 may resolve to any of ${a.host}, ${b.host}`, 'credentials go to one registry only', `qualify the name (${a.host}/team/app:v1)`);
    expect(r.stderr).not.toContain('pw-anna');
    const s = await runCli(['pull', '--username', 'anna', '--password-stdin', 'team/app:v1', `oci:${join(work.path, 'never')}`], { env, stdin: 'pw-anna\n' });
    expectFailure(s, 2, '--username: short name team/app:v1 may resolve to any of');
    expect([readFileSync(a.logFile, 'utf8').length, readFileSync(b.logFile, 'utf8').length]).toEqual(before);
  });
});
