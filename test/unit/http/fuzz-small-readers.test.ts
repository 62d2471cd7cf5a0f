/**
 * Deterministic fuzzing (seeded PRNG) of the small readers: manifests (registry client + the
 * manifest parser, as inspect uses them), token JSON (fetchToken), tag pages (listTags with
 * garbled Link headers) and WWW-Authenticate challenges. Bodies are truncated, byte-flipped,
 * spliced with junk or replaced by JSON of the wrong shape, and some streams break mid-way with
 * undici's errors. Every case must end in a result or a FerryError whose code is not E_INTERNAL,
 * never a TypeError or a raw network error.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { challengeScopes, parseWwwAuthenticate, pickChallenge, resolveRealm } from '../../../src/auth/challenge.js';
import { fetchToken, type TokenTransport } from '../../../src/auth/token.js';
import { isFerryError } from '../../../src/errors.js';
import { compose } from '../../../src/http/compose.js';
import { retryMiddleware } from '../../../src/http/retry.js';
import { wrapResponse } from '../../../src/http/send.js';
import type { Send } from '../../../src/http/types.js';
import { parseManifest } from '../../../src/oci/manifest.js';
import { choosePlatform, formatPlatform } from '../../../src/oci/platform.js';
import { RegistryClient } from '../../../src/registry/client.js';
import { sha256 } from './support.js';

/** mulberry32: a tiny seeded PRNG, so every run feeds the same cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const JUNK = ['', 'null', '0', '-1', '1e999', 'true', '"x"', '[]', '{}', '[null]', '{"a":', '\u0000', '\ud800', '💥', '<html>', '\\', '"', ',', '}', ']', ':', 'NaN'];

/** Wrong-shape values for the fields readers look at. */
const WRONG: unknown[] = [null, 0, -1, 1.5, 2 ** 60, '', 'x', [], [null], {}, { a: 1 }, true, 'sha256:zz', [1, 2], { digest: 1 }];

function mutate(rand: () => number, base: string, fields: string[]): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const kind = Math.floor(rand() * 6);
  const buf = Buffer.from(base);
  switch (kind) {
    case 0: // truncated
      return buf.subarray(0, Math.floor(rand() * buf.length)).toString('utf8');
    case 1: { // bytes flipped
      const b = Buffer.from(buf);
      for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      return b.toString('latin1');
    }
    case 2: { // junk spliced in
      const at = Math.floor(rand() * base.length);
      return base.slice(0, at) + pick(JUNK) + base.slice(at + Math.floor(rand() * 3));
    }
    case 3: // pure junk
      return pick(JUNK) + (rand() < 0.5 ? pick(JUNK) : '');
    default: { // valid JSON, wrong shapes
      const doc = JSON.parse(base) as Record<string, unknown>;
      for (let i = 0, n = 1 + Math.floor(rand() * 3); i < n; i++) {
        const f = pick(fields);
        const parts = f.split('.');
        let o: Record<string, unknown> = doc;
        for (const p of parts.slice(0, -1)) {
          const next = o[p];
          if (typeof next !== 'object' || next === null) break;
          o = next as Record<string, unknown>;
        }
        o[parts.at(-1)!] = pick(WRONG);
      }
      return rand() < 0.2 ? JSON.stringify(pick(WRONG)) : JSON.stringify(doc);
    }
  }
}

/** undici-like body errors for a stream that breaks mid-way. */
function socketError(rand: () => number): Error {
  const [code, message] = [
    ['UND_ERR_SOCKET', 'other side closed'],
    ['ECONNRESET', 'read ECONNRESET'],
    ['UND_ERR_BODY_TIMEOUT', 'Body Timeout Error'],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'Response body length does not match content-length header'],
  ][Math.floor(rand() * 4)]!;
  return Object.assign(new Error(message), { name: code === 'UND_ERR_SOCKET' ? 'SocketError' : 'Error', code });
}

/** A body stream: `text`, or its first part then a network error. */
function bodyOf(text: string, rand: () => number, breakIt: boolean): Readable {
  const b = Buffer.from(text);
  if (!breakIt) return Readable.from([b], { objectMode: false });
  const cut = Math.floor(rand() * (b.length + 1));
  const err = socketError(rand);
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(b.subarray(0, cut));
      setImmediate(() => this.destroy(err));
    },
  });
}

/** The outcome must be a value or a FerryError with a non-internal code. */
async function expectClean(what: string, f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    if (!isFerryError(e) || e.code === 'E_INTERNAL') {
      throw new Error(`${what}: not a clean FerryError: ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
    }
    expect(e.message.split('\n')).toHaveLength(1);
    return e.code;
  }
}

const FAST = { attempts: 2, baseMs: 0, maxMs: 0, maxRetryAfterMs: 0 };
const HOST = 'reg.fuzz.invalid';

/** A RegistryClient over a fake wire whose answers `answer(url)` gives, behind the real retry layer. */
function clientOver(answer: (url: URL) => { status?: number; headers?: Record<string, string>; body: Readable }): RegistryClient {
  const wire: Send = async (req) => {
    const a = answer(req.url);
    return wrapResponse(req.url, a.status ?? 200, { ...(a.headers ?? {}) }, a.body);
  };
  return new RegistryClient({ send: compose([retryMiddleware(FAST)], wire), registry: HOST, apiHost: HOST });
}

const CONFIG = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('{}'), size: 2 };
const IMAGE = JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: CONFIG,
  layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('l'), size: 1 }],
  subject: CONFIG, annotations: { a: 'b' },
});
const INDEX = JSON.stringify({
  schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(IMAGE), size: IMAGE.length, platform: { os: 'linux', architecture: 'amd64' } }],
});
const MANIFEST_FIELDS = ['mediaType', 'schemaVersion', 'config', 'config.digest', 'config.size', 'config.mediaType', 'layers', 'subject', 'annotations', 'manifests', 'artifactType'];
const CTYPES = [undefined, 'application/json', 'text/plain', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'garbage/;;;'];

describe('fuzz: small readers end in FerryErrors', () => {
  it('manifests: 400 garbled or cut bodies through getManifest + parseManifest', async () => {
    const rand = prng(0x5eed01);
    const codes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const base = rand() < 0.5 ? IMAGE : INDEX;
      const text = mutate(rand, base, [...MANIFEST_FIELDS, 'manifests']);
      const ct = CTYPES[Math.floor(rand() * CTYPES.length)];
      const breakIt = rand() < 0.25;
      const byDigest = rand() < 0.3;
      const headers: Record<string, string> = ct ? { 'content-type': ct } : {};
      const client = clientOver(() => ({ headers, body: bodyOf(text, rand, breakIt) }));
      const code = await expectClean(`case ${i} ${JSON.stringify(text).slice(0, 80)}`, async () => {
        const ref = byDigest ? sha256(base) : 'v1';
        const got = await client.repository('app').getManifest(ref);
        const m = parseManifest(got.bytes, got.descriptor.mediaType, 'manifest');
        if (m.kind === 'index') {
          m.manifests.map((x) => formatPlatform(x.platform));
          choosePlatform(m.manifests, { os: 'linux', architecture: 'amd64' });
        }
      });
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    // The generator reaches every kind of outcome (so the test is not vacuous).
    expect([...codes.keys()]).toEqual(expect.arrayContaining(['ok', 'E_BAD_MANIFEST', 'E_NETWORK', 'E_DIGEST_MISMATCH']));
  });

  it('tag pages: 300 garbled bodies, garbled Link headers and cut streams through listTags', async () => {
    const rand = prng(0x5eed02);
    const LINKS = ['</v2/app/tags/list?last=b>; rel="next"', '<http://[::1>; rel=next', '<>; rel="next"', '<//x y>; rel=next', '<javascript:alert(1)>; rel="next"',
      '<http://%zz/>; rel=next', 'rel="next"', '<', '<http://a:99999/>; rel="next"', '</v2/app/tags/list?last=b>; rel="next", <x>; rel="prev"'];
    const codes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const text = mutate(rand, JSON.stringify({ name: 'app', tags: ['a', 'b', null, 'sha256:' + 'a'.repeat(64)] }), ['name', 'tags']);
      const link = rand() < 0.5 ? LINKS[Math.floor(rand() * LINKS.length)] : undefined;
      const breakIt = rand() < 0.2;
      let n = 0;
      const client = clientOver(() => (++n > 3
        ? { body: bodyOf('{"tags":[]}', rand, false) }
        : { headers: link ? { link } : ({} as Record<string, string>), body: bodyOf(text, rand, breakIt) }));
      const code = await expectClean(`case ${i} ${link} ${JSON.stringify(text).slice(0, 60)}`, () => client.repository('app').listTags());
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect([...codes.keys()]).toEqual(expect.arrayContaining(['ok', 'E_REGISTRY', 'E_NETWORK']));
  });

  it('tokens: 400 garbled token answers (any status) and failing transports through fetchToken', async () => {
    const rand = prng(0x5eed03);
    const base = JSON.stringify({ token: 'tok', access_token: 'acc', expires_in: 300, issued_at: '2026-01-01T00:00:00Z', refresh_token: 'r' });
    const statuses = [200, 200, 200, 201, 400, 401, 403, 404, 405, 500, 302];
    const creds = [
      { kind: 'anonymous' as const },
      { kind: 'basic' as const, username: 'u', password: 'pw-secret-1' },
      { kind: 'identity-token' as const, token: 'idtok-secret-2' },
    ];
    const codes = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const body = mutate(rand, base, ['token', 'access_token', 'expires_in', 'issued_at', 'refresh_token', 'errors', 'details']);
      const status = statuses[Math.floor(rand() * statuses.length)]!;
      const throws = rand() < 0.1 ? socketError(rand) : undefined;
      const transport: TokenTransport = async () => {
        if (throws) throw throws;
        return { status, headers: {}, body };
      };
      const credential = creds[Math.floor(rand() * creds.length)]!;
      const code = await expectClean(`case ${i} ${status} ${JSON.stringify(body).slice(0, 60)}`, async () => {
        const t = await fetchToken(transport, { realm: 'https://auth.fuzz.invalid/token', service: 's', scopes: ['repository:app:pull'], credential });
        expect(typeof t.token).toBe('string');
        expect(Number.isFinite(t.expiresInSec)).toBe(true);
      }).catch((e: Error) => {
        throw e;
      });
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect([...codes.keys()]).toEqual(expect.arrayContaining(['ok', 'E_UNAUTHORIZED', 'E_DENIED', 'E_NETWORK']));
  });

  it('challenges: 500 garbled WWW-Authenticate values never throw; realms resolve or fail as E_REGISTRY', async () => {
    const rand = prng(0x5eed04);
    const samples = [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
      'Basic realm="Registry Realm", Bearer realm="https://quay.io/v2/auth",service="quay.io"',
      'Bearer realm="/token",error="insufficient_scope",scope="repository:a:pull repository:b:push"',
      'Negotiate abc==, Bearer realm=https://x/y',
    ];
    const outcomes = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const s = samples[Math.floor(rand() * samples.length)]!;
      const kind = Math.floor(rand() * 3);
      const b = Buffer.from(s);
      const h = kind === 0 ? s.slice(0, Math.floor(rand() * s.length))
        : kind === 1 ? (() => { for (let k = 0; k < 3; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256); return b.toString('latin1'); })()
          : s.replace(/"[^"]*"/, JUNK[Math.floor(rand() * JUNK.length)]!);
      const header = rand() < 0.3 ? [h, s] : h;
      const code = await expectClean(`case ${i} ${JSON.stringify(header)}`, async () => {
        const cs = parseWwwAuthenticate(header);
        const c = pickChallenge(cs);
        if (!c) return;
        challengeScopes(c);
        if (c.params['realm'] !== undefined) resolveRealm(c.params['realm'], `https://${HOST}/v2/`);
      });
      outcomes.add(code);
    }
    expect(outcomes.has('ok')).toBe(true);
  });
});
