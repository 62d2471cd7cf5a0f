import type { Middleware } from './types.js';

export function userAgentMiddleware(userAgent: string): Middleware {
  return (next) => (req) => next({ ...req, headers: { 'user-agent': userAgent, ...req.headers } });
}
