import { redactHeaders, redactUrl } from '../util/redact.js';
import type { DebugLog, Middleware } from './types.js';

/** --debug: one line per request and per response, secrets redacted (never the raw headers). */
export function loggingMiddleware(log: DebugLog | undefined): Middleware {
  if (!log) return (next) => next;
  return (next) => async (req) => {
    const t0 = performance.now();
    log(`→ ${req.method} ${redactUrl(req.url)} ${JSON.stringify(redactHeaders(req.headers))}`);
    try {
      const res = await next(req);
      const keep: Record<string, string | string[] | undefined> = {};
      for (const k of ['content-type', 'content-length', 'docker-content-digest', 'location', 'www-authenticate', 'retry-after', 'range', 'link', 'ratelimit-remaining']) {
        if (res.headers[k] !== undefined) keep[k] = res.headers[k];
      }
      if (keep['location']) keep['location'] = redactUrl(new URL(String(keep['location']), res.url));
      log(`← ${res.status} ${req.method} ${redactUrl(res.url)}${res.proxy ? ` via proxy ${res.proxy}` : ''} (${Math.round(performance.now() - t0)}ms) ${JSON.stringify(keep)}`);
      return res;
    } catch (e) {
      log(`✗ ${req.method} ${redactUrl(req.url)} (${Math.round(performance.now() - t0)}ms): ${(e as Error).message}`);
      throw e;
    }
  };
}
