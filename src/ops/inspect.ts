import { FerryError } from '../errors.js';
import type { Descriptor } from '../oci/descriptor.js';
import { parseImageConfig, parseManifest, type ImageConfig } from '../oci/manifest.js';
import { isManifestType } from '../oci/media-types.js';
import { choosePlatform, formatPlatform, hostPlatform, type Platform } from '../oci/platform.js';
import { readBounded } from '../util/bounded.js';
import { verifyBytes } from '../util/verify-stream.js';
import { formatLocation, openSource, parseLocation, type ImageSource } from '../transports/index.js';
import { type OpContext, withSession } from './context.js';

const MAX_CONFIG = 8 * 1024 * 1024;

export interface InspectOptions {
  /** Pick this platform from an index (otherwise an index is described as such). */
  platform?: Platform;
  /** The config blob is needed (for --config, or an image's details). */
  wantConfig?: boolean;
}

export interface InspectResult {
  reference: string;
  digest: string;
  mediaType: string;
  size: number;
  /** When --platform picked an image out of an index. */
  index?: { digest: string; mediaType: string; size: number };
  manifests?: Array<{ digest: string; mediaType: string; size: number; platform: string }>;
  platform?: string;
  created?: string;
  config?: { digest: string; mediaType: string; size: number };
  layers?: Array<{ digest: string; mediaType: string; size: number }>;
  totalSize?: number;
  entrypoint?: string[] | null;
  cmd?: string[] | null;
  env?: string[];
  labels?: Record<string, string>;
  workingDir?: string;
  user?: string;
  /** Raw bytes, for --raw / --config (not part of the JSON document). */
  rawManifest: Uint8Array;
  rawConfig?: Uint8Array;
}

export async function inspect(location: string, opts: InspectOptions, ctx: OpContext): Promise<InspectResult> {
  const loc = parseLocation(location);
  return withSession(ctx, async (session) => {
    const src = openSource(loc, session);
    try {
      const root = await src.resolve(ctx.signal);
      let desc = root;
      let bytes = await src.fetchManifest(root, ctx.signal);
      let m = parseManifest(bytes, root.mediaType, `manifest of ${src.description}`);
      let index: InspectResult['index'];
      if (m.kind === 'index' && (opts.platform || opts.wantConfig)) {
        const wanted = opts.platform ?? hostPlatform();
        const child = choosePlatform(m.manifests.filter((x) => isManifestType(x.mediaType)), wanted);
        if (!child) {
          // Exit 4 is the registry's answer only; a local index without the platform is bad input.
          throw new FerryError(loc.transport === 'docker' ? 'E_NOT_FOUND' : 'E_LOCAL_NOT_FOUND', `${src.description}: no image for platform ${formatPlatform(wanted)}`, {
            hint: `available: ${m.manifests.map((x) => formatPlatform(x.platform)).join(', ')}`,
          });
        }
        index = { digest: root.digest, mediaType: m.mediaType, size: root.size };
        desc = child;
        bytes = await src.fetchManifest(child, ctx.signal);
        m = parseManifest(bytes, child.mediaType, `manifest ${child.digest}`);
      }
      const result: InspectResult = { reference: formatLocation(loc), digest: desc.digest, mediaType: m.mediaType, size: desc.size, rawManifest: bytes };
      if (index) result.index = index;
      if (m.kind === 'index') {
        result.manifests = m.manifests.map((x) => ({ digest: x.digest, mediaType: x.mediaType, size: x.size, platform: formatPlatform(x.platform) }));
        return result;
      }
      result.config = pick(m.config);
      result.layers = m.layers.map(pick);
      result.totalSize = m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
      const raw = await readConfig(src, m.config, ctx.signal);
      result.rawConfig = raw;
      describeConfig(result, parseImageConfig(raw));
      return result;
    } finally {
      await src.close();
    }
  });
}

function pick(d: Descriptor) {
  return { digest: d.digest, mediaType: d.mediaType, size: d.size };
}

async function readConfig(src: ImageSource, d: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
  if (d.size > MAX_CONFIG) throw new FerryError('E_SIZE_MISMATCH', `image config ${d.digest} is ${d.size} bytes, over the ${MAX_CONFIG}-byte limit`);
  const bytes = await readBounded(await src.fetchBlob(d, signal ? { signal } : {}), MAX_CONFIG, `config ${d.digest}`);
  verifyBytes(bytes, d, `image config ${d.digest}`);
  return bytes;
}

function describeConfig(r: InspectResult, c: ImageConfig): void {
  if (c.os || c.architecture) r.platform = formatPlatform({ os: c.os ?? 'unknown', architecture: c.architecture ?? 'unknown', ...(c.variant ? { variant: c.variant } : {}) });
  if (c.created) r.created = c.created;
  const cc = c.config ?? {};
  r.entrypoint = cc.Entrypoint ?? null;
  r.cmd = cc.Cmd ?? null;
  r.env = cc.Env ?? [];
  r.labels = cc.Labels ?? {};
  if (cc.WorkingDir) r.workingDir = cc.WorkingDir;
  if (cc.User) r.user = cc.User;
}
