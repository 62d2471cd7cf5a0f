/**
 * A chunked push whose 3rd PATCH keeps losing its connection mid-body, against the real
 * distribution registry behind a small relay in this file: ferry resumes in the same session from
 * the offset the registry reports instead of uploading the blob again.
 *
 * The relay buffers each PATCH body before forwarding it (as nginx does by default,
 * `proxy_request_buffering on`), so a cut body never reaches the registry. Without buffering,
 * distribution 2.8 stores the part it got and then cancels the session on the next request that
 * carries the previous `_state` (GET included: "upload resumed at wrong offset"), so a session cut
 * that way cannot be resumed; ferry then uploads the blob again in a new session (second test).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { inspectDigest } from '../helpers/skopeo.js';
import { getBlob } from './push-support.js';
import { ferryImage, readBlob, sha256Of } from './support.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const CHUNK = 256 * 1024;
/** ferry's retry middleware makes 5 attempts per request (util/backoff.ts DEFAULT_BACKOFF). */
const RETRY_ATTEMPTS = 5;

interface RelayOptions {
  /** Cut the connection half-way through the body of this many PATCHes whose Content-Range starts here. */
  cutAt: number;
  cuts: number;
  /** Forward PATCH bodies as they arrive (the registry sees the part before the cut) instead of buffering them. */
  streaming?: boolean;
}

interface Relay {
  host: string;
  /** PATCH body bytes received from ferry, and forwarded to the registry. */
  patchIn: number;
  patchOut: number;
  cutsLeft: number;
  requests: Array<{ method: string; url: string; status: number }>;
  stop(): Promise<void>;
}

/** An HTTP relay to `target` that keeps the Host header (so Locations point back at the relay). */
async function startRelay(target: string, opts: RelayOptions): Promise<Relay> {
  const [host, port] = [target.split(':')[0]!, Number(target.split(':')[1])];
  const server = http.createServer((req, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', status: 0 };
    relay.requests.push(entry);
    const isPatch = req.method === 'PATCH';
    const length = Number(req.headers['content-length'] ?? 0);
    const cut = isPatch && relay.cutsLeft > 0 && Number(/^(\d+)-/.exec(String(req.headers['content-range']))?.[1]) === opts.cutAt;
    if (cut) relay.cutsLeft--;
    const forward = (body?: Buffer): http.ClientRequest => {
      const up = http.request({ host, port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        entry.status = ur.statusCode ?? 0;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      if (body) {
        relay.patchOut += body.length;
        up.end(body);
      }
      return up;
    };
    if (!isPatch) {
      req.pipe(forward());
      return;
    }
    const up = opts.streaming ? forward() : undefined;
    const parts: Buffer[] = [];
    let got = 0;
    let dead = false;
    req.on('data', (c: Buffer) => {
      if (dead) return;
      if (cut && got + c.length >= length / 2) {
        dead = true;
        const part = c.subarray(0, Math.max(0, Math.floor(length / 2) - got));
        relay.patchIn += part.length;
        got += part.length;
        if (up) {
          relay.patchOut += part.length;
          up.write(part, () => up.destroy());
        }
        req.socket.destroy(); // mid-body: ferry sees the connection drop
        return;
      }
      relay.patchIn += c.length;
      got += c.length;
      if (up) {
        relay.patchOut += c.length;
        up.write(c);
      } else parts.push(c);
    });
    req.on('end', () => {
      if (dead) return;
      if (up) up.end();
      else forward(Buffer.concat(parts));
    });
    req.on('error', () => up?.destroy());
  });
  const closeAll = (s: http.Server) => new Promise<void>((r) => {
    s.closeAllConnections();
    s.close(() => r());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const relay: Relay = {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    patchIn: 0, patchOut: 0, cutsLeft: opts.cuts, requests: [],
    stop: () => closeAll(server),
  };
  return relay;
}

const uploads = (r: Relay, method: string) => r.requests.filter((q) => q.method === method && /\/blobs\/uploads\//.test(q.url));

describe.skipIf(!has)('chunked push resumed after connections cut mid-PATCH (real registry)', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let layout: OciLayoutResult;
  let layer: Buffer;
  let config: Buffer;
  const relays: Relay[] = [];

  beforeAll(async () => {
    src = makeTempDir('resume-src');
    layout = await makeOciLayout(src.path, { tag: 'v1', layers: 1, layerSize: 5 * CHUNK + 1234, seed: 'upload-resume' });
    const m = layout.manifests[0]!;
    layer = readBlob(src.path, m.layerDigests[0]!);
    config = readBlob(src.path, m.configDigest);
    reg = await startRegistry('open');
  });
  afterAll(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await reg?.stop();
    src?.remove();
  });

  it(`the 3rd PATCH cut ${RETRY_ATTEMPTS + 1} times (beyond the retries): resumed in the same session, not restarted`, async () => {
    const relay = await startRelay(reg.host, { cutAt: 2 * CHUNK, cuts: RETRY_ATTEMPTS + 1 });
    relays.push(relay);
    const doc = await ferryImage(['push', '-q', '--jobs', '1', '--chunk-size', String(CHUNK), `oci:${src.path}:v1`, `${relay.host}/resume/app:v1`]);
    expect(doc).toMatchObject({ digest: layout.digest });
    expect(relay.cutsLeft).toBe(0);
    expect(await inspectDigest(reg, 'resume/app', 'v1')).toBe(layout.digest);
    expect(sha256Of(await getBlob(reg, 'resume/app', layout.manifests[0]!.layerDigests[0]!))).toBe(layout.manifests[0]!.layerDigests[0]);
    const total = layer.length + config.length;
    // One session per blob (a restart would POST again), and the registry was asked where it stood.
    expect(relay.requests.filter((q) => q.method === 'POST')).toHaveLength(2);
    expect(uploads(relay, 'GET').map((q) => q.status)).toEqual([204]);
    // Every byte reached the registry once; ferry re-sent only the halves of the cut chunk.
    expect(relay.patchOut).toBe(total);
    expect(relay.patchOut).toBeLessThan(total + 2 * CHUNK);
    expect(relay.patchIn).toBe(total + (RETRY_ATTEMPTS + 1) * (CHUNK / 2));
  }, 60_000);

  it('a cut whose first half reached distribution (no buffering): the session is gone, the blob goes again in a new one', async () => {
    const relay = await startRelay(reg.host, { cutAt: 2 * CHUNK, cuts: 1, streaming: true });
    relays.push(relay);
    const doc = await ferryImage(['push', '-q', '--jobs', '1', '--chunk-size', String(CHUNK), `oci:${src.path}:v1`, `${relay.host}/resume/streamed:v1`]);
    expect(doc).toMatchObject({ digest: layout.digest });
    expect(await inspectDigest(reg, 'resume/streamed', 'v1')).toBe(layout.digest);
    expect(sha256Of(await getBlob(reg, 'resume/streamed', layout.manifests[0]!.layerDigests[0]!))).toBe(layout.manifests[0]!.layerDigests[0]);
    expect(relay.requests.filter((q) => q.method === 'POST')).toHaveLength(3);
    // What the new session costs: the two chunks before the cut go again.
    expect(relay.patchOut).toBeGreaterThanOrEqual(layer.length + config.length + 2 * CHUNK);
  }, 60_000);
});
