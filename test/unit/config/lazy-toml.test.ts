/** The TOML parser is loaded only when a registries.conf file exists (start-up cost of every command). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';

const state = vi.hoisted(() => ({ loads: 0 }));
vi.mock('smol-toml', async (importOriginal) => {
  state.loads++;
  return await importOriginal();
});

const { loadNetworkConfig } = await import('../../../src/config/index.js');

it('loads smol-toml only once there is a file to parse', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-lazy-'));
  try {
    const env = { HOME: join(root, 'home'), FERRY_SYSCONF_ROOT: join(root, 'sys') };
    const none = await loadNetworkConfig({}, env);
    expect(none.registries.files).toEqual([]);
    expect(state.loads).toBe(0);
    mkdirSync(join(root, 'sys/etc/containers'), { recursive: true });
    writeFileSync(join(root, 'sys/etc/containers/registries.conf'), 'unqualified-search-registries = ["quay.io"]\n');
    const some = await loadNetworkConfig({}, env);
    expect(some.registries.search?.registries).toEqual(['quay.io']);
    expect(state.loads).toBe(1);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
