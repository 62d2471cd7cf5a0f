import { Session, type SessionOptions } from '../registry/session.js';
import { BlobStore } from '../store/index.js';
import { CachedSource } from '../transports/cached-source.js';
import type { ImageSource } from '../transports/index.js';
import { VERSION } from '../version.js';

/** Everything an operation needs besides its own arguments; built by the CLI or a library user.
 * The session settings (credentials bound to registry hosts and sides, per-side authfiles, TLS,
 * logging) plus the run's abort signal. There is no "credential for every registry": a library
 * caller binds each credential to the host (and side) it belongs to, as src/cli/credentials.ts does. */
export type OpContext = Omit<SessionOptions, 'userAgent' | 'retry'> & {
  signal?: AbortSignal;
  /** The blob cache's directory (src/store); undefined: no cache. */
  cacheDir?: string;
};

export function createSession(ctx: OpContext): Session {
  const { signal: _signal, cacheDir: _cacheDir, ...settings } = ctx;
  return new Session({ ...settings, userAgent: `ferry/${VERSION}` });
}

/** Runs `fn` with a session that is always closed afterwards. */
export async function withSession<T>(ctx: OpContext, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = createSession(ctx);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

const stores = new Map<string, BlobStore>();

/** `src` read through the blob cache when the context has one and `src` reads a registry
 * (local sources are files already). */
export function throughCache(src: ImageSource, ctx: OpContext): ImageSource {
  if (!ctx.cacheDir || !src.origin) return src;
  let store = stores.get(ctx.cacheDir);
  if (!store) stores.set(ctx.cacheDir, (store = new BlobStore(ctx.cacheDir)));
  return new CachedSource(src, store, ctx.debug ? { onWait: (o) => ctx.debug!(`cache: waiting for ${o ? `${o.host} pid ${o.pid}` : 'another process'} to finish a blob`) } : {});
}
