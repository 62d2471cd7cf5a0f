import type { Middleware, Send } from './types.js';

/**
 * Composes middleware outermost-first. The registry stack is, in this order:
 *   auth → user-agent → retry → scheme → logging → send
 * Auth sits outside retry so a 401 never loops through backoff; logging sits inside scheme so
 * each wire attempt (https then http fallback, every retry) is logged once.
 */
export function compose(middleware: Middleware[], send: Send): Send {
  return middleware.reduceRight<Send>((next, mw) => mw(next), send);
}
