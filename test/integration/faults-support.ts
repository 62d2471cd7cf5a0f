/**
 * The set-up the fault-injection suites share: a generated image pushed (skopeo) to a real
 * registry, the fault proxy in front of it, temp directories for sources and outputs, and the
 * blob list and byte count the assertions need.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import { makeTempDir, type TempDir } from '../helpers/binaries.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';
import { readBlob } from './support.js';

export interface FaultImage {
  reg: RealRegistry;
  proxy: FaultProxy;
  src: TempDir;
  work: TempDir;
  image: OciLayoutResult;
  /** config + layers */
  blobs: string[];
  /** bytes of config + layers */
  imageBytes: number;
  /** The image's reference through the proxy (`host/repo:v1`). */
  ref: string;
  /** A new path under the work directory. */
  fresh(name?: string): string;
  stop(): Promise<void>;
}

export async function faultImage(o: { name: string; mode: 'open' | 'token'; repo: string; layers: number; layerSize: number }): Promise<FaultImage> {
  const src = makeTempDir(`${o.name}-src`);
  const work = makeTempDir(`${o.name}-work`);
  const image = await makeOciLayout(src.path, { tag: 'v1', layers: o.layers, layerSize: o.layerSize, seed: o.name });
  const reg = await startRegistry(o.mode);
  expect(await pushWithSkopeo(src.path, 'v1', reg, o.repo)).toBe(image.digest);
  const proxy = await startFaultProxy(o.mode === 'token' ? { upstream: reg.url, tokenServer: reg.tokenServer! } : { upstream: reg.url });
  const m = image.manifests[0]!;
  const blobs = [m.configDigest, ...m.layerDigests];
  let n = 0;
  return {
    reg, proxy, src, work, image, blobs,
    imageBytes: blobs.reduce((s, d) => s + readBlob(src.path, d).length, 0),
    ref: `${proxy.host}/${o.repo}:v1`,
    fresh: (name = 'out') => join(work.path, `${name}-${++n}`),
    stop: async () => {
      await proxy.stop();
      await reg.stop();
      src.remove();
      work.remove();
    },
  };
}
