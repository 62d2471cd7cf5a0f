import type { Descriptor } from '../oci/descriptor.js';
import { parseImageConfig, parseManifest, type ImageConfig } from '../oci/manifest.js';
import { formatPlatform, hostPlatform, type Platform } from '../oci/platform.js';
import { checkImagePlatform, pickPlatform, readConfig } from '../copy/platform-select.js';
import type { RateLimit } from '../registry/rate-limit.js';
import { formatLocation, openSource, parseLocation } from '../transports/index.js';
import { qualifyShortName } from './short-name.js';
import { type OpContext, throughCache, withSession } from './context.js';

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
  /** The rate limit the registry announced on the manifest requests (Docker Hub), if it did. */
  rateLimit?: RateLimit;
  /** Raw bytes, for --raw / --config (not part of the JSON document). */
  rawManifest: Uint8Array;
  rawConfig?: Uint8Array;
}

export async function inspect(location: string, opts: InspectOptions, ctx: OpContext): Promise<InspectResult> {
  const parsed = parseLocation(location);
  return withSession(ctx, async (session) => {
    const loc = parsed.transport === 'docker' ? { ...parsed, ref: await qualifyShortName(location, parsed.ref, session, ctx) } : parsed;
    const src = throughCache(openSource(loc, session), ctx);
    const withRateLimit = (r: InspectResult): InspectResult => {
      const rl = loc.transport === 'docker' ? session.rateLimits.get(loc.ref.registry) : undefined;
      if (rl) r.rateLimit = rl;
      return r;
    };
    try {
      const root = await src.resolve(ctx.signal);
      let desc = root;
      let bytes = await src.fetchManifest(root, ctx.signal);
      let m = parseManifest(bytes, root.mediaType, `manifest of ${src.description}`);
      let index: InspectResult['index'];
      if (m.kind === 'index' && (opts.platform || opts.wantConfig)) {
        const child = pickPlatform(src.description, m, opts.platform ?? hostPlatform(), !src.origin);
        index = { digest: root.digest, mediaType: m.mediaType, size: root.size };
        desc = child;
        bytes = await src.fetchManifest(child, ctx.signal);
        m = parseManifest(bytes, child.mediaType, `manifest ${child.digest}`);
      }
      const result: InspectResult = { reference: formatLocation(loc), digest: desc.digest, mediaType: m.mediaType, size: desc.size, rawManifest: bytes };
      if (index) result.index = index;
      if (m.kind === 'index') {
        result.manifests = m.manifests.map((x) => ({ digest: x.digest, mediaType: x.mediaType, size: x.size, platform: formatPlatform(x.platform) }));
        return withRateLimit(result);
      }
      result.config = pick(m.config);
      result.layers = m.layers.map(pick);
      result.totalSize = m.config.size + m.layers.reduce((a, l) => a + l.size, 0);
      const raw = await readConfig(src, m.config, ctx.signal);
      if (opts.platform) checkImagePlatform(src.description, raw, [opts.platform], !src.origin);
      result.rawConfig = raw;
      describeConfig(result, parseImageConfig(raw));
      return withRateLimit(result);
    } finally {
      await src.close();
    }
  });
}

function pick(d: Descriptor) {
  return { digest: d.digest, mediaType: d.mediaType, size: d.size };
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
