/**
 * Shared set-up for the http / copy / transports unit tests (not a test file itself).
 * Builds sessions and registry clients the way the app does (src/registry/session.ts) against the
 * in-process registry, and tears everything down after each test.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import type { Credential } from '../../../src/auth/credential.js';
import { copyImage, type CopyPlan, type CopyResult } from '../../../src/copy/engine.js';
import { parseReference } from '../../../src/ref/index.js';
import type { RepositoryClient } from '../../../src/registry/client.js';
import { Session } from '../../../src/registry/session.js';
import { OciLayoutDestination } from '../../../src/transports/oci-layout.js';
import { RegistrySource } from '../../../src/transports/registry.js';
import { startMemRegistry, type MemRegistry, type MemRegistryOptions } from '../../helpers/mem-registry.js';

export const RETRY = { attempts: 4, baseMs: 5, maxMs: 20, maxRetryAfterMs: 2000 };
export const LINUX_AMD64 = { os: 'linux', architecture: 'amd64' };

export const sha256 = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const hexOf = (digest: string): string => digest.slice(digest.indexOf(':') + 1);

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  const fns = cleanups.splice(0).reverse();
  for (const f of fns) await f();
});

/** A registry that is stopped after the test. */
export async function startReg(opts?: MemRegistryOptions): Promise<MemRegistry> {
  const reg = await startMemRegistry(opts);
  cleanups.push(() => reg.stop());
  return reg;
}

/** A fresh temp dir removed after the test. */
export function tempDir(prefix = 'ferry-unit-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface TestSession {
  session: Session;
  /** --debug lines (already redacted by ferry). */
  lines: string[];
}

/**
 * A Session as the app builds one: plain http, fast retry policy, debug lines captured. A
 * `credential` is bound to `registry` (host:port) only. Without a credential the environment
 * points at an empty HOME so no real docker config is read.
 */
export function newSession(opts: { credential?: Credential; registry?: string; retry?: typeof RETRY } = {}): TestSession {
  const lines: string[] = [];
  const home = tempDir('ferry-home-');
  const session = new Session({
    userAgent: 'ferry-test',
    plainHttp: true,
    retry: opts.retry ?? RETRY,
    debug: (l) => lines.push(l),
    env: { HOME: home, DOCKER_CONFIG: join(home, '.docker'), PATH: '' },
    warn: () => {},
    ...(opts.credential ? { credentials: [{ registry: opts.registry ?? '', credential: opts.credential }] } : {}),
  });
  cleanups.push(() => session.close());
  return { session, lines };
}

export const basicCred = (username: string, password: string): Credential => ({ kind: 'basic', username, password });

/** `host/repo:tag` → repository client of the session (as openSource does). */
export function repoOf(session: Session, host: string, repo: string, tag = 'latest'): { client: RepositoryClient; source: RegistrySource } {
  const ref = parseReference(`${host}/${repo}:${tag}`);
  const client = session.registry(ref).repository(ref.repository);
  return { client, source: new RegistrySource(client, ref) };
}

/** A full pull into an OCI layout, as `ferry pull` does it (`refName` null: an unnamed root). */
export async function pullToLayout(
  session: Session, host: string, repo: string, tag: string, dir: string, plan: Partial<CopyPlan> = {}, refName: string | null = tag,
): Promise<CopyResult> {
  const { source } = repoOf(session, host, repo, tag);
  return copyImage(source, new OciLayoutDestination(dir), { platforms: [LINUX_AMD64], jobs: 4, ...plan }, refName ? { refName } : {});
}

/** Every file below `dir`, relative, sorted (hidden temp files included). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p, rel ? `${rel}/${e}` : e);
      else out.push(rel ? `${rel}/${e}` : e);
    }
  };
  walk(dir, '');
  return out.sort();
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * A transparent HTTP proxy in front of `target` (host:port) that records every request's headers
 * (the mem registry only records whether an Authorization header was present). `mutateResponse`
 * may add response headers (e.g. Set-Cookie); `dropRequestHeaders` are not forwarded (e.g. `range`,
 * to play a server that ignores Range).
 */
export async function startRecordingProxy(
  target: string,
  opts: {
    mutateResponse?: (headers: http.OutgoingHttpHeaders) => void;
    dropRequestHeaders?: string[];
    /** Stall-then-drop: for matching requests (`times` of them), forward `afterBytes` of the body,
     * wait `pauseMs`, then destroy the connection. */
    cut?: { path: RegExp; afterBytes: number; pauseMs: number; times: number };
  } = {},
): Promise<{ host: string; requests: RecordedRequest[] }> {
  const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers } });
    const fwd: http.OutgoingHttpHeaders = { ...req.headers, host: target };
    for (const h of opts.dropRequestHeaders ?? []) delete fwd[h];
    const up = http.request({ host: thost, port: tport, method: req.method, path: req.url, headers: fwd }, (ur) => {
      const headers: http.OutgoingHttpHeaders = { ...ur.headers };
      opts.mutateResponse?.(headers);
      res.writeHead(ur.statusCode ?? 502, headers);
      const cut = opts.cut;
      if (cut && cut.times > 0 && cut.path.test(req.url ?? '')) {
        cut.times--;
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= cut.afterBytes) return;
          const part = c.subarray(0, cut.afterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= cut.afterBytes) {
            ur.destroy();
            setTimeout(() => res.socket?.destroy(), cut.pauseMs);
          }
        });
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  }));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** Runs `p` and returns what it rejected with (fails the test if it resolved). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; hint?: string; status?: number; registryCodes?: string[] }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection, but the promise resolved');
}
