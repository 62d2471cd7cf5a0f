/**
 * Small answers (manifests, tokens, tag pages) whose body breaks after the headers: undici's
 * "other side closed" must be retried by re-issuing the request (http/retry.ts `small`), and end
 * as E_NETWORK naming what was read and where — never as "unexpected error" (E_INTERNAL).
 * A raw node:net server (test/helpers/raw-http.ts) sends Content-Length: N and fewer bytes.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRawServer, type RawReply, type RawRequest, type RawServer } from '../../helpers/raw-http.js';
import { runCli } from '../../helpers/run-cli.js';
import { seedImage } from '../../helpers/mem-registry.js';
import { newSession, pullToLayout, rejection, repoOf, sha256, startRecordingProxy, startReg, tempDir } from './support.js';
import { existsSync } from 'node:fs';
import { FERRY_BIN } from '../../helpers/run-cli.js';
import { join, dirname } from 'node:path';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const CONFIG = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [] } });
const MANIFEST = JSON.stringify({
  schemaVersion: 2, mediaType: OCI,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(CONFIG), size: Buffer.byteLength(CONFIG) },
  layers: [],
});

let servers: RawServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

/** A registry on the raw server: `/v2/` 200, manifests and the config blob; `cut(req, n)` says
 * whether the n-th request on that path (1-based) is cut after 10 bytes. */
async function registry(cut: (req: RawRequest, n: number) => boolean, extra?: (req: RawRequest) => RawReply | undefined): Promise<RawServer> {
  const counts = new Map<string, number>();
  const s = await startRawServer((req) => {
    const n = (counts.get(req.path) ?? 0) + 1;
    counts.set(req.path, n);
    const own = extra?.(req);
    const reply = own ?? (
      req.path === '/v2/' ? { body: '{}' }
        : /\/manifests\//.test(req.path)
          ? req.method === 'HEAD' ? { status: 404 } : { headers: { 'Content-Type': OCI }, body: MANIFEST }
          : req.path.endsWith(`/blobs/${sha256(CONFIG)}`) ? { body: CONFIG }
            : { status: 404, body: '{"errors":[{"code":"NAME_UNKNOWN"}]}' });
    return req.method !== 'HEAD' && cut(req, n) ? { ...reply, cutAfter: 10 } : reply;
  });
  servers.push(s);
  return s;
}

const gets = (s: RawServer, re: RegExp) => s.requests.filter((r) => r.method === 'GET' && re.test(r.path));

describe('a manifest body cut below its Content-Length', () => {
  it('every attempt cut → E_NETWORK naming the manifest and host, after the policy\'s 4 attempts', async () => {
    const s = await registry((r) => /manifests/.test(r.path));
    const { session } = newSession();
    const e = await rejection(repoOf(session, s.host, 'app', 'v1').client.getManifest('v1'));
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`network error reading manifest ${s.host}/app:v1 from http://${s.host}`);
    expect(e.message).toContain('gave up after 4 attempts');
    expect(e.message).not.toContain('unexpected');
    expect(gets(s, /manifests/)).toHaveLength(4);
  });

  it('first attempt cut, second whole → the manifest, verified (2 GETs)', async () => {
    const s = await registry((r, n) => /manifests/.test(r.path) && n === 1);
    const { session, lines } = newSession();
    const got = await repoOf(session, s.host, 'app', 'v1').client.getManifest('v1');
    expect(got.descriptor).toEqual({ mediaType: OCI, digest: sha256(MANIFEST), size: Buffer.byteLength(MANIFEST) });
    expect(got.bytes.toString()).toBe(MANIFEST);
    expect(gets(s, /manifests/)).toHaveLength(2);
    expect(lines.some((l) => /^retry 1\/3 after \d+ms: network error reading manifest/.test(l))).toBe(true);
  });

  it('a body over the cap is refused from Content-Length alone (E_SIZE_MISMATCH, no retry)', async () => {
    const s = await registry(() => false, (r) => (/manifests/.test(r.path) && r.method === 'GET' ? { body: 'x'.repeat(4 * 1024 * 1024 + 1), cutAfter: 10 } : undefined));
    const { session } = newSession();
    const e = await rejection(repoOf(session, s.host, 'app', 'v1').client.getManifest('v1'));
    expect(e.code).toBe('E_SIZE_MISMATCH');
    expect(gets(s, /manifests/)).toHaveLength(1);
  });
});

describe('tag lists and tokens cut mid-body', () => {
  it('a tag page cut once is fetched again', async () => {
    const s = await registry((r, n) => /tags\/list/.test(r.path) && n === 1, (r) => (/tags\/list/.test(r.path) ? { body: '{"name":"app","tags":["a","b"]}' } : undefined));
    const { session } = newSession();
    expect(await repoOf(session, s.host, 'app').client.listTags()).toEqual(['a', 'b']);
    expect(gets(s, /tags\/list/)).toHaveLength(2);
  });

  it('a tag page cut every time → E_NETWORK naming the tag list', async () => {
    const s = await registry((r) => /tags\/list/.test(r.path), (r) => (/tags\/list/.test(r.path) ? { body: '{"name":"app","tags":["a","b"]}' } : undefined));
    const { session } = newSession();
    const e = await rejection(repoOf(session, s.host, 'app').client.listTags());
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`tag list of ${s.host}/app`);
  });

  const tokenRegistry = (cutToken: (n: number) => boolean) => {
    let host = '';
    let tokens = 0;
    return registry(() => false, (r): RawReply | undefined => {
      if (r.path.startsWith('/token')) {
        tokens++;
        return { headers: { 'Content-Type': 'application/json' }, body: '{"token":"tok-123456789","expires_in":300}', ...(cutToken(tokens) ? { cutAfter: 10 } : {}) };
      }
      if (r.headers['authorization'] !== 'Bearer tok-123456789' && r.path.startsWith('/v2/')) {
        return { status: 401, headers: { 'WWW-Authenticate': `Bearer realm="http://${host}/token",service="raw"` }, body: '{"errors":[{"code":"UNAUTHORIZED"}]}' };
      }
      return undefined;
    }).then((s) => {
      host = s.host;
      return s;
    });
  };

  it('a token body cut once is fetched again and the manifest arrives', async () => {
    const s = await tokenRegistry((n) => n === 1);
    const { session } = newSession();
    const got = await repoOf(session, s.host, 'app', 'v1').client.getManifest('v1');
    expect(got.descriptor.digest).toBe(sha256(MANIFEST));
    expect(gets(s, /^\/token/)).toHaveLength(2);
  });

  it('a token body cut every time → E_NETWORK naming the token host (not "not a JSON object")', async () => {
    const s = await tokenRegistry(() => true);
    const { session } = newSession();
    const e = await rejection(repoOf(session, s.host, 'app', 'v1').client.getManifest('v1'));
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`network error reading token response from http://${s.host}`);
    expect(gets(s, /^\/token/)).toHaveLength(4);
  });
});

describe('any other body', () => {
  it('a blob stream cut mid-way fails with E_NETWORK, not undici\'s SocketError', async () => {
    const s = await registry((r) => /blobs/.test(r.path));
    const { session } = newSession();
    const { client } = repoOf(session, s.host, 'app', 'v1');
    const body = await client.getBlob({ mediaType: 'application/octet-stream', digest: sha256(CONFIG) as never, size: CONFIG.length });
    const e = await rejection((async () => {
      for await (const _ of body) { /* drain */ }
    })());
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`from http://${s.host}`);
  });
});

describe('a blob cut on every attempt', () => {
  it('ends as E_NETWORK naming the host (not E_IO or a raw SocketError) after the resume attempts', async () => {
    const reg = await startReg();
    const seeded = seedImage(reg, 'app', 'v1', { layers: 1, layerSize: 256 * 1024 });
    const layer = seeded.blobs[0]!;
    const proxy = await startRecordingProxy(reg.host, { cut: { path: new RegExp(`/blobs/${layer}$`), afterBytes: 1000, pauseMs: 5, times: 99 } });
    const { session } = newSession();
    const e = await rejection(pullToLayout(session, proxy.host, 'app', 'v1', tempDir(), { jobs: 1 }));
    expect(e.code).toBe('E_NETWORK');
    expect(e.message).toContain(`from http://${proxy.host}`);
    expect(proxy.requests.filter((q) => q.url.endsWith(layer)).length).toBeGreaterThanOrEqual(5);
  });
});

describe('ferry inspect against a registry that cuts manifest bodies', () => {
  beforeAll(() => {
    if (!existsSync(join(dirname(FERRY_BIN), '..', 'dist', 'ferry.mjs'))) throw new Error('build first: npm run build');
  });

  it('cut every time → exit 5 with a network message, no "bug in ferry"', async () => {
    const s = await registry((r) => /manifests/.test(r.path));
    const r = await runCli(['inspect', '--plain-http', `${s.host}/app:v1`]);
    expect(r.stderr).toContain(`ferry: network error reading manifest ${s.host}/app:v1 from http://${s.host}: other side closed`);
    expect(r.stderr).toContain('gave up after 5 attempts');
    expect(r.stderr).not.toMatch(/unexpected error|bug in ferry/);
    expect(r.code).toBe(5);
    expect(gets(s, /manifests/)).toHaveLength(5);
  }, 30_000);

  it('cut once → exit 0 and the image described', async () => {
    const s = await registry((r, n) => /manifests/.test(r.path) && n === 1);
    const r = await runCli(['inspect', '--plain-http', '--json', `${s.host}/app:v1`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).digest).toBe(sha256(MANIFEST));
  }, 30_000);
});
