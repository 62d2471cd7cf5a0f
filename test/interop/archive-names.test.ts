/**
 * The names consumers give the images in ferry's archives: `podman load` (containers/common
 * libimage: io.containerd.image.name, else ref.name, for oci-archive; RepoTags for docker-archive)
 * must name the image by its full reference, not `localhost/<tag>:latest`; skopeo still selects
 * `oci-archive:FILE:<tag>`; and a multi-image archive whose images share a tag (what
 * `ctr export a b` writes) is an ambiguity error for `:tag` in ferry. ctr import reads
 * io.containerd.image.name too, but containerd needs a running daemon, so that annotation is
 * checked directly (here and in pull-archives.test.ts).
 *
 * podman runs rootless-free and daemonless: vfs storage, cgroupfs, root/runroot in a temp dir.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { pushWithSkopeo, skopeo } from '../helpers/skopeo.js';
import { CONTAINERD_NAME, entryJson, readTar, type OciIndexDoc } from '../integration/archive-support.js';
import { expectFailure, ferryJson, ferryOk, type InspectDoc } from '../integration/support.js';
import { runCli } from '../helpers/run-cli.js';

const REF = 'org.opencontainers.image.ref.name';
const has = requireBinary('docker-registry') && requireBinary('skopeo');
const hasPodman = has && requireBinary('podman');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', env }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}\n${err.message}` : stderr });
    });
  });
}

describe.skipIf(!has)('image names in ferry archives, as consumers read them', { timeout: 180_000 }, () => {
  let reg: RealRegistry;
  let src: TempDir;
  let work: TempDir;
  let a: OciLayoutResult;
  let b: OciLayoutResult;
  let app: string;
  let n = 0;
  const file = (ext = 'tar') => join(work.path, `out-${++n}.${ext}`);

  beforeAll(async () => {
    src = makeTempDir('names-src');
    work = makeTempDir('names-work');
    a = await makeOciLayout(src.path, { tag: 'v1', layers: 1, layerSize: 4096, seed: 'names-a' });
    const srcB = join(src.path, 'b');
    b = await makeOciLayout(srcB, { tag: 'v1', layers: 1, layerSize: 4096, seed: 'names-b' });
    reg = await startRegistry('open');
    app = `${reg.host}/library/app`;
    await pushWithSkopeo(src.path, 'v1', reg, 'library/app');
    await pushWithSkopeo(srcB, 'v1', reg, 'team/other');
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
    work?.remove();
  });

  it('an oci-archive carries the tag in ref.name and the full reference in io.containerd.image.name; skopeo selects it by tag', async () => {
    const out = file();
    await ferryOk(['pull', '-q', '--format', 'oci-archive', `${app}:v1`, '-o', out]);
    const idx = entryJson<OciIndexDoc>(await readTar(out), 'index.json');
    expect(idx.manifests.map((m) => m.annotations)).toEqual([{ [REF]: 'v1', [CONTAINERD_NAME]: `${app}:v1` }]);
    const r = await skopeo(['inspect', `oci-archive:${out}:v1`]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { Digest: string }).Digest).toBe(a.digest);
    // ferry selects it by the full name, by its tag alone, or (one image) without a selector.
    for (const sel of [`:${app}:v1`, ':v1', '']) expect((await ferryJson<InspectDoc>(['inspect', `oci-archive:${out}${sel}`])).digest).toBe(a.digest);
  });

  it('two images carrying the same tag in one oci-archive (ctr export a b): ":v1" is ambiguous and lists both; full names select', async () => {
    const both = file();
    await ferryOk(['pull', '-q', '--format', 'oci-archive', `${app}:v1`, `${reg.host}/team/other:v1`, '-o', both]);
    const r = await runCli(['inspect', `oci-archive:${both}:v1`]);
    expectFailure(r, 2, 'ambiguous', `${app}:v1 (${a.digest})`, `${reg.host}/team/other:v1 (${b.digest})`);
    expect((await ferryJson<InspectDoc>(['inspect', `oci-archive:${both}:${reg.host}/team/other:v1`])).digest).toBe(b.digest);

    // The same with containerd's own layout: ref.name is the bare tag on both entries (ferry
    // names several images in one archive by their familiar references).
    const ctr = file();
    const idx = entryJson<OciIndexDoc>(await readTar(both), 'index.json');
    const tarDir = makeTempDir('names-ctr');
    try {
      await run('tar', ['-xf', both, '-C', tarDir.path]);
      idx.manifests = idx.manifests.map((m) => ({ ...m, annotations: { [REF]: 'v1', [CONTAINERD_NAME]: m.annotations![CONTAINERD_NAME]! } }));
      writeFileSync(join(tarDir.path, 'index.json'), JSON.stringify(idx));
      expect((await run('tar', ['-cf', ctr, '-C', tarDir.path, 'oci-layout', 'index.json', 'blobs'])).code).toBe(0);
    } finally {
      tarDir.remove();
    }
    expectFailure(await runCli(['inspect', `oci-archive:${ctr}:v1`]), 2, 'ambiguous', `${app}:v1 (${a.digest})`);
    expect((await ferryJson<InspectDoc>(['inspect', `oci-archive:${ctr}:${app}:v1`])).digest).toBe(a.digest);
  });

  describe.skipIf(!hasPodman)('podman load', () => {
    let store: TempDir;
    let podmanArgs: string[];
    const env = (): NodeJS.ProcessEnv => {
      const conf = join(store.path, 'registries.conf');
      writeFileSync(conf, 'unqualified-search-registries = []\n');
      return { ...process.env, CONTAINERS_REGISTRIES_CONF: conf, XDG_RUNTIME_DIR: join(store.path, 'xdg') };
    };
    beforeAll(() => {
      store = makeTempDir('names-podman');
      podmanArgs = ['--storage-driver', 'vfs', '--root', join(store.path, 'root'), '--runroot', join(store.path, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'];
    });
    afterAll(() => store?.remove());

    async function podmanLoad(archive: string): Promise<string[]> {
      const r = await run('podman', [...podmanArgs, 'load', '-q', '-i', archive], env());
      expect(r.code, `podman load:\n${r.stderr}\n${r.stdout}`).toBe(0);
      const images = await run('podman', [...podmanArgs, 'images', '--format', '{{.Repository}}:{{.Tag}} {{.Digest}}'], env());
      expect(images.code, images.stderr).toBe(0);
      return images.stdout.trim().split('\n');
    }

    it('names a ferry oci-archive and a ferry docker-archive by the full reference (not localhost/<tag>)', async () => {
      const oci = file();
      await ferryOk(['pull', '-q', '--format', 'oci-archive', `${app}:v1`, '-o', oci]);
      expect(await podmanLoad(oci)).toContain(`${app}:v1 ${a.digest}`);

      const docker = file();
      await ferryOk(['pull', '-q', `${reg.host}/team/other:v1`, '-o', docker]);
      const listed = await podmanLoad(docker);
      expect(listed.some((l) => l.startsWith(`${reg.host}/team/other:v1 `)), listed.join('\n')).toBe(true);
      expect(listed.some((l) => l.startsWith('localhost/')), listed.join('\n')).toBe(false);
    });

    it('an oci-archive named with a bare tag loads as that tag of the source repository; with only the tag recorded (as before) podman made it localhost/<tag>', async () => {
      const tagged = file();
      await ferryOk(['pull', '-q', `${app}:v1`, `oci-archive:${tagged}:mine`]);
      const idx = entryJson<OciIndexDoc>(await readTar(tagged), 'index.json');
      expect(idx.manifests[0]!.annotations).toEqual({ [REF]: 'mine', [CONTAINERD_NAME]: `${app}:mine` });
      expect(await podmanLoad(tagged)).toContain(`${app}:mine ${a.digest}`);

      // The archive ferry wrote before this change: ref.name only.
      const old = file();
      const dir = makeTempDir('names-old');
      try {
        await run('tar', ['-xf', tagged, '-C', dir.path]);
        idx.manifests[0]!.annotations = { [REF]: 'old' };
        writeFileSync(join(dir.path, 'index.json'), JSON.stringify(idx));
        expect((await run('tar', ['-cf', old, '-C', dir.path, 'oci-layout', 'index.json', 'blobs'])).code).toBe(0);
      } finally {
        dir.remove();
      }
      expect(await podmanLoad(old)).toContain(`localhost/old:latest ${a.digest}`);
    });
  });
});
