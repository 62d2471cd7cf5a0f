/** Shared by the blob-cache integration tests (cache.test.ts, cache-commands.test.ts). */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { CountingRelay } from '../helpers/counting-relay.js';
import { makeOciLayout, type MakeOciLayoutOptions, type OciLayoutResult } from '../helpers/images.js';
import type { RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';

/** Builds an OCI layout in `dir`, pushes it to `reg` as `<repo>:v1` with ferry, and returns it
 * with the total size of its blobs (config and layers). */
export async function pushedImage(reg: RealRegistry, dir: string, repo: string, opts: MakeOciLayoutOptions): Promise<{ image: OciLayoutResult; bytes: number }> {
  const image = await makeOciLayout(dir, { tag: 'v1', ...opts });
  const push = await runCli(['copy', `oci:${image.dir}:v1`, `${reg.host}/${repo}:v1`]);
  expect(push.code, push.stderr).toBe(0);
  const m = image.manifests[0]!;
  const bytes = [m.configDigest, ...m.layerDigests].reduce((n, d) => n + statSync(join(image.dir, 'blobs', 'sha256', d.slice(7))).size, 0);
  return { image, bytes };
}

/** The blob GETs the relay saw. */
export const blobGets = (relay: CountingRelay): string[] => relay.requests.filter((l) => /^GET \S+\/blobs\/sha256:/.test(l));

/** Every blob of an OCI layout hashes to its name; returns how many there are. */
export function verifyLayout(dir: string): number {
  const blobs = readdirSync(join(dir, 'blobs', 'sha256'));
  for (const b of blobs) expect(createHash('sha256').update(readFileSync(join(dir, 'blobs', 'sha256', b))).digest('hex'), `${dir} ${b}`).toBe(b);
  return blobs.length;
}
