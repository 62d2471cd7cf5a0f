import { Session, type SessionOptions } from '../registry/session.js';
import { VERSION } from '../version.js';

/** Everything an operation needs besides its own arguments; built by the CLI or a library user.
 * The session settings (credentials bound to registry hosts and sides, per-side authfiles, TLS,
 * logging) plus the run's abort signal. There is no "credential for every registry": a library
 * caller binds each credential to the host (and side) it belongs to, as src/cli/credentials.ts does. */
export type OpContext = Omit<SessionOptions, 'userAgent' | 'retry'> & { signal?: AbortSignal };

export function createSession(ctx: OpContext): Session {
  const { signal: _signal, ...settings } = ctx;
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
