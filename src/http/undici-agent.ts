import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import type { Agent, Pool, ProxyAgent, buildConnector } from 'undici';

const require = createRequire(import.meta.url);

/** The parts of undici ferry uses, packed into one file by scripts/bundle.mjs. */
interface Lean {
  Agent: typeof Agent;
  Dispatcher: { prototype: Record<string, unknown> };
  api: Record<string, unknown>;
  buildConnector: typeof buildConnector;
  ProxyAgent: typeof ProxyAgent;
  Pool?: typeof Pool;
}
let lean: Lean | null | undefined;
/**
 * dist/undici-lean.cjs, built by `npm run build` beside the bundle (dist/ferry.mjs, which bin/ferry
 * runs): one file to read and compile instead of ~30 found, read and compiled one by one through
 * the CommonJS loader at every start (docs/performance.md: `ferry inspect` CPU 0.42 → 0.35 s).
 * Looked for beside this module only, so only the bundle uses it; tsc's dist/http/ and src/
 * (the library entry, the unit tests) load undici's own files. Absent or unusable: those too.
 */
function loadLean(): Lean | null {
  if (lean !== undefined) return lean;
  lean = null;
  const path = fileURLToPath(new URL('./undici-lean.cjs', import.meta.url));
  if (existsSync(path)) {
    try {
      const m = require(path) as Lean;
      if (typeof m.Agent === 'function' && typeof m.buildConnector === 'function' && m.Dispatcher?.prototype) lean = m;
    } catch {
      // unusable: undici's own files instead
    }
  }
  return lean;
}

/** Node built-ins undici's Agent loads (and a few it may load on first use). */
const UNDICI_BUILTINS = [
  'node:assert', 'node:async_hooks', 'node:buffer', 'node:crypto', 'node:diagnostics_channel', 'node:dns', 'node:events',
  'node:http', 'node:http2', 'node:net', 'node:perf_hooks', 'node:querystring', 'node:stream', 'node:stream/promises',
  'node:string_decoder', 'node:tls', 'node:url', 'node:util', 'node:util/types', 'node:worker_threads', 'node:zlib',
];
let flagSet = false;

/**
 * undici parses HTTP with llhttp compiled to WebAssembly. V8's optimising tier for it costs ~35 MB
 * of peak memory and ~0.1 s of CPU at every start, for no measurable gain on ferry's traffic
 * (bodies are passed through, not parsed): with Liftoff only, `ferry inspect` went 98 → 62 MB and
 * 0.28 → 0.20 s, and a 1 GiB pull was no slower.
 *
 * The flag is set here, just before undici is loaded, and not at process start: changing any V8
 * flag makes node's built-in code cache unusable (the cache is keyed on the flags), so every
 * built-in loaded afterwards is compiled from source, ~3× slower (http2+tls+crypto+zlib+
 * child_process 7 → 25 ms). The built-ins undici needs are loaded first for that reason. Measured
 * against setting it at start: `ferry inspect` 0.148 → 0.130 s; a 1 GiB pull to an OCI layout
 * 1.84 → 1.68 s (medians of 7 interleaved runs).
 */
function liftoffOnly(): void {
  if (flagSet) return;
  flagSet = true;
  for (const m of UNDICI_BUILTINS) require(m);
  setFlagsFromString('--liftoff-only');
}

/**
 * undici's `Agent` without undici's index, which also loads fetch, WebSocket, EventSource, the
 * caches and the mock agents: measured 0.29 s → 0.24 s for a whole `ferry inspect` (every command
 * pays it at start). The index does exactly two things ferry needs: it exports Agent and mixes the
 * request API into Dispatcher.prototype; this does the same from the package's own files. If a
 * future undici moves them (or adds an `exports` map), the full index is loaded instead.
 */
export function loadAgent(): typeof Agent {
  liftoffOnly();
  const l = loadLean();
  if (l) {
    if (typeof l.Dispatcher.prototype['request'] !== 'function') Object.assign(l.Dispatcher.prototype, l.api);
    if (typeof (l.Agent.prototype as unknown as Record<string, unknown>)['request'] === 'function') return l.Agent;
  }
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

/**
 * undici's `ProxyAgent`, also without the index (loadAgent first: it sets up the request API the
 * proxy agent inherits). Loaded only when a request actually goes through a proxy.
 */
export function loadProxyAgent(): typeof ProxyAgent {
  loadAgent();
  if (lean && typeof lean.ProxyAgent === 'function') return lean.ProxyAgent;
  try {
    const Lean = require('undici/lib/dispatcher/proxy-agent.js') as typeof ProxyAgent;
    if (typeof Lean === 'function' && typeof (Lean.prototype as unknown as Record<string, unknown>)['request'] === 'function') return Lean;
  } catch {
    // moved or not exported: fall through
  }
  return (require('undici') as typeof import('undici')).ProxyAgent;
}

/** undici's connector factory (`buildConnector`), also without the index. Loaded only when
 * `--resolve` is given: the agents otherwise build their own. */
export function loadBuildConnector(): typeof buildConnector {
  loadAgent();
  if (lean) return lean.buildConnector;
  try {
    const Lean = require('undici/lib/core/connect.js') as typeof buildConnector;
    if (typeof Lean === 'function') return Lean;
  } catch {
    // moved or not exported: fall through
  }
  return (require('undici') as typeof import('undici')).buildConnector;
}

/** undici's `Pool`, also without the index: the pools of ferry's proxy agents (connector.ts). */
export function loadPool(): typeof Pool {
  loadAgent();
  // From the same copy of undici as the ProxyAgent it serves (the packed file, when loaded).
  if (lean && typeof lean.Pool === 'function') return lean.Pool;
  try {
    const Lean = require('undici/lib/dispatcher/pool.js') as typeof Pool;
    if (typeof Lean === 'function' && typeof (Lean.prototype as unknown as Record<string, unknown>)['request'] === 'function') return Lean;
  } catch {
    // moved or not exported: fall through
  }
  return (require('undici') as typeof import('undici')).Pool;
}
