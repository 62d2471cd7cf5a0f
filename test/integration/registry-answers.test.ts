/**
 * Registry answers that must end cleanly, against the real distribution registry: a paged tag
 * listing ends with every tag (no false "pagination loop"), and a manifest or tag page
 * whose body is cut after the headers (a proxy in front of the registry drops the connection
 * after 10 bytes) is fetched again by ferry, or ends in exit 5 with a network message.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/ref/index.js';
import { Session } from '../../src/registry/session.js';
import { makeTempDir, requireBinary, type TempDir } from '../helpers/binaries.js';
import { makeOciLayout, type OciLayoutResult } from '../helpers/images.js';
import { startRegistry, type RealRegistry } from '../helpers/real-registry.js';
import { runCli } from '../helpers/run-cli.js';
import { pushWithSkopeo } from '../helpers/skopeo.js';

const has = requireBinary('docker-registry') && requireBinary('skopeo');
const TAGS = ['a1', 'b2', 'c3', 'd4', 'e5'];

/** A proxy to `target` that cuts the body of the first `times` answers matching `path`. */
async function cuttingProxy(target: string, path: RegExp, times: number): Promise<{ host: string; hits: () => number; stop: () => Promise<void> }> {
  const [host, port] = [target.split(':')[0], Number(target.split(':')[1])];
  let left = times;
  let hits = 0;
  const server = http.createServer((req, res) => {
    const match = req.method === 'GET' && path.test(req.url ?? '');
    if (match) hits++;
    const up = http.request({ host, port, method: req.method, path: req.url, headers: { ...req.headers, host: target } }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (match && left > 0) {
        left--;
        ur.once('data', (c: Buffer) => {
          res.write(c.subarray(0, 10), () => res.socket?.destroy());
          ur.destroy();
        });
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    stop: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe.skipIf(!has)('registry answers against the real registry', () => {
  let reg: RealRegistry;
  let src: TempDir;
  let layout: OciLayoutResult;

  beforeAll(async () => {
    src = makeTempDir('answers-src');
    for (const tag of TAGS) layout = await makeOciLayout(src.path, { tag, layers: 1, layerSize: 16 * 1024, seed: 'answers' });
    reg = await startRegistry('open');
    for (const tag of TAGS) expect(await pushWithSkopeo(src.path, tag, reg, 'library/app')).toBe(layout.digest);
  });
  afterAll(async () => {
    await reg?.stop();
    src?.remove();
  });

  // Debian's distribution 2.8.2 ignores `n` (one unsorted page, no Link); newer ones page. Either
  // way the listing must end with every tag and no false "pagination loop".
  it('tags asked for in pages of 2 and of 1: every tag, no false loop', async () => {
    const session = new Session({ userAgent: 'ferry-test', plainHttp: true, env: { PATH: '' }, warn: () => {} });
    try {
      const ref = parseReference(`${reg.host}/library/app`);
      const repo = session.registry(ref).repository(ref.repository);
      expect((await repo.listTags(undefined, { pageSize: 2 })).sort()).toEqual(TAGS);
      expect((await repo.listTags(undefined, { pageSize: 1, maxPages: 5 })).sort()).toEqual(TAGS);
    } finally {
      await session.close();
    }
  });

  it('a manifest body cut once → ferry inspect fetches it again and succeeds', async () => {
    const proxy = await cuttingProxy(reg.host, /\/manifests\//, 1);
    try {
      const r = await runCli(['inspect', '--plain-http', '--json', `${proxy.host}/library/app:a1`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).digest).toBe(layout.digest);
      expect(proxy.hits()).toBe(2);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('a tag page cut every time → ferry tags exits 5 naming the tag list', async () => {
    const proxy = await cuttingProxy(reg.host, /\/tags\/list/, 99);
    try {
      const r = await runCli(['tags', '--plain-http', `${proxy.host}/library/app`]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(`ferry: network error reading tag list of ${proxy.host}/library/app from http://${proxy.host}`);
      expect(r.stderr).not.toMatch(/unexpected error|bug in ferry/);
      expect(proxy.hits()).toBe(5);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
