import { createRequire } from 'node:module';
import type { Agent } from 'undici';

const require = createRequire(import.meta.url);

/**
 * undici's `Agent` without undici's index, which also loads fetch, WebSocket, EventSource, the
 * caches and the mock agents: measured 0.29 s → 0.24 s for a whole `ferry inspect` (every command
 * pays it at start). The index does exactly two things ferry needs: it exports Agent and mixes the
 * request API into Dispatcher.prototype; this does the same from the package's own files. If a
 * future undici moves them (or adds an `exports` map), the full index is loaded instead.
 */
export function loadAgent(): typeof Agent {
  try {
    const Lean = require('undici/lib/dispatcher/agent.js') as typeof Agent;
    const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: Record<string, unknown> };
    if (typeof Dispatcher.prototype['request'] !== 'function') Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));
    if (typeof Lean === 'function' && typeof (Lean.prototype as unknown as Record<string, unknown>)['request'] === 'function') return Lean;
  } catch {
    // moved or not exported: fall through
  }
  return (require('undici') as typeof import('undici')).Agent;
}
