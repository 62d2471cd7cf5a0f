import type { Credential } from '../auth/credential.js';
import { Session } from '../registry/session.js';
import type { DebugLog } from '../http/types.js';
import { VERSION } from '../version.js';

/** Everything an operation needs besides its own arguments; built by the CLI or a library user. */
export interface OpContext {
  credential?: Credential;
  plainHttp?: boolean;
  tlsVerify?: boolean;
  debug?: DebugLog;
  warn?: (msg: string) => void;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export function createSession(ctx: OpContext): Session {
  return new Session({
    userAgent: `ferry/${VERSION}`,
    ...(ctx.credential ? { credential: ctx.credential } : {}),
    ...(ctx.plainHttp !== undefined ? { plainHttp: ctx.plainHttp } : {}),
    ...(ctx.tlsVerify !== undefined ? { tlsVerify: ctx.tlsVerify } : {}),
    ...(ctx.debug ? { debug: ctx.debug } : {}),
    ...(ctx.warn ? { warn: ctx.warn } : {}),
    ...(ctx.env ? { env: ctx.env } : {}),
  });
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
