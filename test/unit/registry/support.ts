/** Shared set-up for the push-side unit tests: an in-process registry and a client for it. */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { afterEach } from 'vitest';
import type { Credential } from '../../../src/auth/credential.js';
import type { Digest } from '../../../src/oci/digest.js';
import { parseReference } from '../../../src/ref/index.js';
import { compose } from '../../../src/http/compose.js';
import { schemeMiddleware } from '../../../src/http/scheme.js';
import { createSend } from '../../../src/http/send.js';
import type { HttpRequest, Middleware } from '../../../src/http/types.js';
import { RegistryClient, type RepositoryClient } from '../../../src/registry/client.js';
import { Session } from '../../../src/registry/session.js';
import { startMemRegistry, type MemRegistry, type MemRegistryOptions } from '../../helpers/mem-registry.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export const sha256 = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

export interface Env {
  reg: MemRegistry;
  session: Session;
  repo: (name: string) => RepositoryClient;
}

/** Starts a registry and a Session for `user` (basic credentials; anonymous when omitted). */
export async function setup(opts: MemRegistryOptions = {}, user?: [string, string]): Promise<Env> {
  const reg = await startMemRegistry(opts);
  cleanup.push(() => reg.stop());
  return { reg, ...client(reg, user) };
}

/** Another Session (other credentials) against the same registry. */
export function client(reg: MemRegistry, user?: [string, string]): { session: Session; repo: (name: string) => RepositoryClient } {
  const credential: Credential = user ? { kind: 'basic', username: user[0], password: user[1] } : { kind: 'anonymous' };
  const session = new Session({
    userAgent: 'ferry-test', credentials: [{ registry: reg.host, credential }], plainHttp: true,
    retry: { attempts: 4, baseMs: 2, maxMs: 10, maxRetryAfterMs: 1000 },
  });
  cleanup.push(() => session.close());
  const repo = (name: string) => {
    const ref = parseReference(`${reg.host}/${name}:latest`);
    return session.registry(ref).repository(ref.repository);
  };
  return { session, repo };
}

/** `open(offset)` over an in-memory buffer, emitting small pieces; records every offset opened. */
export function opener(bytes: Uint8Array, piece = 4096): { open: (offset: number) => Promise<Readable>; opened: number[] } {
  const opened: number[] = [];
  return {
    opened,
    open: async (offset) => {
      opened.push(offset);
      const buf = Buffer.from(bytes).subarray(offset);
      const parts: Buffer[] = [];
      for (let i = 0; i < buf.length; i += piece) parts.push(buf.subarray(i, i + piece));
      return Readable.from(parts, { objectMode: false });
    },
  };
}

/** Requests of `method` whose path is an upload session (not the POST that opens one). */
export function uploadRequests(reg: MemRegistry, method: string) {
  return reg.requests.filter((r) => r.method === method && /\/blobs\/uploads\/[^/]+$/.test(r.path));
}

export function imageManifest(config: Uint8Array, layers: Uint8Array[]): Uint8Array {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER, digest: sha256(l), size: l.length })),
  }, null, 3));
}

/**
 * A RegistryClient whose stack records every request as ferry hands it to the wire (headers as
 * sent, body kind), over plain http, no auth.
 */
export function recordingRepo(reg: MemRegistry, name: string): { repo: RepositoryClient; sent: HttpRequest[] } {
  const sent: HttpRequest[] = [];
  const agent = new Agent();
  cleanup.push(() => agent.close());
  const record: Middleware = (next) => async (req) => {
    sent.push(req);
    return next(req);
  };
  const send = compose([schemeMiddleware({ scheme: 'http', tlsVerify: true }, reg.host), record], createSend(() => agent));
  const client = new RegistryClient({ send, registry: reg.host, apiHost: reg.host });
  return { repo: client.repository(name), sent };
}
