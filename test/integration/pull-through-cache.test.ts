/**
 * The REAL distribution registry in proxy (pull-through cache) mode, in front of a real upstream
 * registry with token auth over https: ferry pulls through the cache by its own name (what a
 * cluster does when the cache is the registry it is told to use); once cached, images still pull
 * with the upstream stopped; pushes to the cache are refused with the registry's own answer.
 * (Using the cache as a *mirror* of the upstream's name, from registries.conf / daemon.json /
 * --mirror, builds on this fixture.)
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { expectFailure, ferryImage, layoutEntry, readBlob, sha256Of } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('openssl') && requireBinary('perl');

describe.skipIf(!has)('a real pull-through cache in front of a token-auth upstream', () => {
  let work: TempDir;
  let upstream: RealRegistry;
  let cache: RealRegistry;
  let image: OciLayoutResult;
  let env: Record<string, string>;
  beforeAll(async () => {
    work = makeTempDir('pull-through');
    upstream = await startRegistry('token', { tls: true });
    env = { NODE_EXTRA_CA_CERTS: upstream.caFile! };
    image = await makeOciLayout(join(work.path, 'src'), { tag: 'v1', layers: 2, layerSize: 64 * 1024, seed: 'pull-through' });
    const pushed = await ferryImage(['push', '-q', '--creds', `alice:${upstream.users['alice']!}`, `oci:${join(work.path, 'src')}:v1`, `${upstream.host}/team/app:v1`], { env });
    expect(pushed.digest).toBe(image.digest);
    cache = await startRegistry('open', { proxy: { remoteUrl: upstream.url, username: 'alice', password: upstream.users['alice']!, caFile: upstream.caFile! } });
  }, 90_000);
  afterAll(async () => {
    await cache?.stop();
    await upstream?.stop();
    work?.remove();
  });

  it('pulls through the cache (which fetched from the upstream as its own user), then from the cache alone with the upstream stopped', async () => {
    const out1 = join(work.path, 'out1');
    const first = await ferryImage(['pull', '-q', `${cache.host}/team/app:v1`, `oci:${out1}:v1`]);
    expect(first.digest).toBe(image.digest);
    expect(layoutEntry(out1, 'v1').digest).toBe(image.digest);
    const layer = image.manifests[0]!.layerDigests[1]!;
    expect(sha256Of(readBlob(out1, layer))).toBe(layer);
    // the upstream's token server saw the cache's user, not ferry (which sent no credentials)
    expect(upstream.tokenServer!.requests.some((q) => q.user === 'alice' && q.scopes.includes('repository:team/app:pull'))).toBe(true);

    await upstream.stop();
    const out2 = join(work.path, 'out2');
    const second = await ferryImage(['pull', '-q', `${cache.host}/team/app@${image.digest}`, `oci:${out2}:v1`]);
    expect(second.digest).toBe(image.digest);
    expect(readBlob(out2, layer).equals(readBlob(out1, layer))).toBe(true);
  });

  it('a push to the cache is refused with the registry\'s answer (unsupported, exit 7), nothing stack-traced', async () => {
    const r = await runCli(['push', '-q', `oci:${join(work.path, 'src')}:v1`, `${cache.host}/team/other:v1`]);
    expectFailure(r, 7, /does not support|UNSUPPORTED/i);
  });
});
