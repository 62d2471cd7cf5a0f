/**
 * ferry's own body path for plain-http blob GETs (src/http/bulk-get.ts, src/http/http1.ts), against a node:net
 * server that writes exactly the bytes each case needs: framing (Content-Length, chunked split
 * anywhere, close-delimited, 204/304, 1xx), every status as a response, cuts, stalls, aborts,
 * malformed answers, and the synchronous sink (early chunks included).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { finished } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { bulkGet, type BulkBody, type BulkOptions } from '../../../src/http/bulk-get.js';
import { bulkEligible } from '../../../src/http/http1.js';
import { isAbortError } from '../../../src/errors.js';

interface Script {
  /** Called with the request head once it arrived. */
  (sock: Socket, head: string): void | Promise<void>;
}

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function serve(script: Script, host = '127.0.0.1'): Promise<{ url: (p?: string) => URL; heads: string[]; connections: () => number }> {
  const heads: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      heads.push(buf.slice(0, end));
      void script(sock, buf.slice(0, end));
    };
    sock.on('data', onData);
  });
  const close = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  }) as typeof server.close;
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as { port: number }).port;
  const h = host.includes(':') ? `[${host}]` : host;
  return { url: (p = '/v2/a/blobs/sha256:1') => new URL(`http://${h}:${port}${p}`), heads, connections: () => connections };
}

const T: BulkOptions = { headersTimeoutMs: 5_000, bodyTimeoutMs: 5_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const collect = async (b: BulkBody): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of b) parts.push(c as Buffer);
  return Buffer.concat(parts);
};
const failure = async (p: Promise<unknown>): Promise<Error & { code?: string }> =>
  p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e as Error & { code?: string });
/** Writes `bytes` in pieces of `step` bytes with a pause between them (splits anywhere). */
async function trickle(sock: Socket, bytes: Buffer, step: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += step) {
    sock.write(bytes.subarray(i, i + step));
    await sleep(2);
  }
}

describe('bulkGet: framing', () => {
  it('Content-Length: the bytes, the request as sent (Host, the caller\'s headers, connection: close)', async () => {
    const payload = Buffer.alloc(3 << 20, 7);
    payload.write('start', 0);
    const s = await serve((sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nDocker-Content-Digest: sha256:1\r\n\r\n`);
      sock.write(payload);
    });
    const res = await bulkGet(s.url(), { authorization: 'Bearer tok', range: 'bytes=0-9' }, T);
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe('sha256:1');
    expect((await collect(res.body)).equals(payload)).toBe(true);
    const [line, ...rest] = s.heads[0]!.split('\r\n');
    expect(line).toBe('GET /v2/a/blobs/sha256:1 HTTP/1.1');
    expect(rest).toEqual([`host: ${s.url().host}`, 'authorization: Bearer tok', 'range: bytes=0-9', 'connection: close']);
  });

  it('chunked, split at every byte, with extensions and trailers', async () => {
    const wire = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
    const s = await serve((sock) => trickle(sock, wire, 1));
    const res = await bulkGet(s.url(), {}, T);
    expect((await collect(res.body)).toString()).toBe('hello 0123456789');
  });

  it('chunked with a bad size line: the body fails (HPE_INVALID_CHUNK_SIZE)', async () => {
    const s = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n'));
    const res = await bulkGet(s.url(), {}, T);
    expect((await failure(collect(res.body))).code).toBe('HPE_INVALID_CHUNK_SIZE');
  });

  it('chunked, cut before the last chunk: the body fails (UND_ERR_SOCKET)', async () => {
    const s = await serve((sock) => void sock.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'));
    const res = await bulkGet(s.url(), {}, T);
    expect((await failure(collect(res.body))).code).toBe('UND_ERR_SOCKET');
  });

  it('neither length nor chunked: the body ends with the connection', async () => {
    const s = await serve(async (sock) => {
      sock.write('HTTP/1.0 200 OK\r\n\r\nuntil ');
      await sleep(10);
      sock.end('close');
    });
    const res = await bulkGet(s.url(), {}, T);
    expect((await collect(res.body)).toString()).toBe('until close');
  });

  it('204 and 304 have no body, even on a connection the server keeps open', async () => {
    for (const status of [204, 304]) {
      const s = await serve((sock) => void sock.write(`HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n`));
      const res = await bulkGet(s.url(), {}, T);
      expect(res.statusCode).toBe(status);
      expect((await collect(res.body)).length).toBe(0);
    }
  });

  it('Content-Length: 0 ends at once; bytes past Content-Length are not part of the body', async () => {
    const s0 = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    expect((await collect((await bulkGet(s0.url(), {}, T)).body)).length).toBe(0);
    const s = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyEXTRA'));
    expect((await collect((await bulkGet(s.url(), {}, T)).body)).toString()).toBe('body');
  });

  it('1xx answers are skipped; the head may arrive a byte at a time', async () => {
    const wire = Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const s = await serve((sock) => trickle(sock, wire, 1));
    const res = await bulkGet(s.url(), {}, T);
    expect(res.statusCode).toBe(200);
    expect(res.headers['link']).toBeUndefined();
    expect((await collect(res.body)).toString()).toBe('ok');
  });

  it('every status is a response (one request): a 404 with its JSON, a 429 with Retry-After; repeated headers are arrays', async () => {
    const s = await serve((sock, head) => {
      const body = head.includes('/missing') ? '{"errors":[{"code":"BLOB_UNKNOWN"}]}' : '';
      const status = head.includes('/missing') ? '404 Not Found' : '429 Too Many Requests';
      sock.write(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nRetry-After: 3\r\nWWW-Authenticate: Bearer a\r\nwww-authenticate: Basic b\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    const nf = await bulkGet(s.url('/missing'), {}, T);
    expect(nf.statusCode).toBe(404);
    expect((await collect(nf.body)).toString()).toContain('BLOB_UNKNOWN');
    expect(nf.headers['www-authenticate']).toEqual(['Bearer a', 'Basic b']);
    const rl = await bulkGet(s.url('/limited'), {}, T);
    expect([rl.statusCode, rl.headers['retry-after']]).toEqual([429, '3']);
    expect(s.connections()).toBe(2);
  });
});

describe('bulkGet: failures carry undici\'s and node\'s codes', () => {
  it('a body cut below its Content-Length: UND_ERR_SOCKET ("other side closed")', async () => {
    const s = await serve((sock) => void sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-a-few'));
    const res = await bulkGet(s.url(), {}, T);
    const e = await failure(collect(res.body));
    expect([e.code, e.message]).toEqual(['UND_ERR_SOCKET', 'other side closed']);
  });

  it('closed before any answer: the request rejects with UND_ERR_SOCKET; reset: ECONNRESET', async () => {
    const s = await serve((sock) => void sock.end());
    expect((await failure(bulkGet(s.url(), {}, T))).code).toBe('UND_ERR_SOCKET');
    const r = await serve((sock) => void sock.resetAndDestroy());
    expect((await failure(bulkGet(r.url(), {}, T))).code).toBe('ECONNRESET');
  });

  it('nothing listening: ECONNREFUSED', async () => {
    const s = await serve(() => {});
    const url = s.url();
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    expect((await failure(bulkGet(url, {}, T))).code).toBe('ECONNREFUSED');
  });

  it('no head within the headers timeout: UND_ERR_HEADERS_TIMEOUT', async () => {
    const s = await serve(() => {});
    const e = await failure(bulkGet(s.url(), {}, { headersTimeoutMs: 150, bodyTimeoutMs: 5_000 }));
    expect(e.code).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('a body that stalls: UND_ERR_BODY_TIMEOUT; a slow but moving body is not timed out', async () => {
    const stall = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const res = await bulkGet(stall.url(), {}, { headersTimeoutMs: 5_000, bodyTimeoutMs: 150 });
    expect((await failure(collect(res.body))).code).toBe('UND_ERR_BODY_TIMEOUT');
    const slow = await serve(async (sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n');
      for (const c of 'moving') {
        await sleep(80);
        sock.write(c);
      }
    });
    const ok = await bulkGet(slow.url(), {}, { headersTimeoutMs: 5_000, bodyTimeoutMs: 150 });
    expect((await collect(ok.body)).toString()).toBe('moving');
  });

  it('a consumer that stops reading for longer than the body timeout is not timed out', async () => {
    const payload = Buffer.alloc(4 << 20, 1);
    const s = await serve((sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      sock.write(payload);
    });
    const res = await bulkGet(s.url(), {}, { headersTimeoutMs: 5_000, bodyTimeoutMs: 100 });
    await sleep(400); // the stream's buffer is full long before this: the socket is paused
    expect((await collect(res.body)).length).toBe(payload.length);
  });

  it('an abort before the head rejects with the signal\'s reason; during the body it fails the body', async () => {
    const s = await serve(() => {});
    const ac = new AbortController();
    const p = bulkGet(s.url(), {}, { ...T, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(isAbortError(await failure(p))).toBe(true);
    const reason = new Error('interrupted by SIGINT');
    const pre = new AbortController();
    pre.abort(reason);
    expect(await failure(bulkGet(s.url(), {}, { ...T, signal: pre.signal }))).toBe(reason);
    const b = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const ac2 = new AbortController();
    const res = await bulkGet(b.url(), {}, { ...T, signal: ac2.signal });
    setTimeout(() => ac2.abort(reason), 50);
    expect(await failure(collect(res.body))).toBe(reason);
  });

  it('malformed answers: a status line that is not HTTP/1.x, a bad or conflicting Content-Length, an oversized head', async () => {
    const cases: Array<[string, string]> = [
      ['SSH-2.0-OpenSSH_9.2\r\n\r\n', 'HPE_INVALID_CONSTANT'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
      ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
      ['HTTP/1.1 200 OK\r\nBad Header\r\n\r\n', 'HPE_INVALID_HEADER_TOKEN'],
      [`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 'UND_ERR_HEADERS_OVERFLOW'],
    ];
    for (const [wire, code] of cases) {
      const s = await serve((sock) => void sock.write(wire));
      expect((await failure(bulkGet(s.url(), {}, T))).code, wire.slice(0, 40)).toBe(code);
    }
  });
});

describe('bulkGet: the synchronous sink', () => {
  it('gets every byte in order, the ones that arrived before it was attached first', async () => {
    const payload = Buffer.alloc(6 << 20);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE(i, i);
    const s = await serve((sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      sock.write(payload);
    });
    const res = await bulkGet(s.url(), {}, T);
    await sleep(100); // let the stream's buffer fill (the socket pauses) before the sink comes
    const out = Buffer.alloc(payload.length);
    let at = 0;
    let calls = 0;
    expect(res.body.attachSyncSink((c) => {
      c.copy(out, at);
      at += c.length;
      calls++;
    })).toBe(true);
    await finished(res.body);
    expect(at).toBe(payload.length);
    expect(out.equals(payload)).toBe(true);
    expect(calls).toBeGreaterThan(1);
    // A body already being read, or attached once, takes no second sink.
    expect(res.body.attachSyncSink(() => {})).toBe(false);
  });

  it('a sink that throws fails the body with its error and closes the connection', async () => {
    const s = await serve((sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n');
      sock.write(Buffer.alloc(2_000_000));
    });
    const res = await bulkGet(s.url(), {}, T);
    const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    res.body.attachSyncSink(() => {
      throw enospc;
    });
    expect(await failure(finished(res.body))).toBe(enospc);
  });
});

describe('bulkGet: read buffers are reused across exchanges', () => {
  it('bodies read as streams keep their bytes after later exchanges reuse the buffer; sinks see their own bytes', async () => {
    const size = 3 << 20;
    const s = await serve((sock, head) => {
      const fill = Number(/\/b(\d+)/.exec(head)![1]);
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      sock.write(Buffer.alloc(size, fill));
    });
    const streamed: Buffer[] = [];
    for (let round = 0; round < 3; round++) {
      // Two at a time: one read as a stream, one through a sink.
      const [a, b] = await Promise.all([bulkGet(s.url(`/b${2 * round + 1}`), {}, T), bulkGet(s.url(`/b${2 * round + 2}`), {}, T)]);
      let bad = 0;
      let got = 0;
      b.body.attachSyncSink((c) => {
        got += c.length;
        for (const x of c) if (x !== 2 * round + 2) bad++;
      });
      const [bytes] = await Promise.all([collect(a.body), finished(b.body)]);
      streamed.push(bytes);
      expect([got, bad]).toEqual([size, 0]);
    }
    streamed.forEach((b, i) => expect(b.equals(Buffer.alloc(size, 2 * i + 1)), `stream ${i}`).toBe(true));
  });
});

describe('bulkGet: addresses and eligibility', () => {
  it('an IPv6 literal ([::1]) connects to ::1 with Host [::1]:port', async (ctx) => {
    let s;
    try {
      s = await serve((sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6'), '::1');
    } catch {
      ctx.skip(); // no IPv6 loopback on this machine
      return;
    }
    const res = await bulkGet(s.url(), {}, T);
    expect((await collect(res.body)).toString()).toBe('v6');
    expect(s.heads[0]).toContain(`host: [::1]:${s.url().port}`);
  });

  it('only what it can send exactly: plain http, token names, values without CR/LF/NUL, no Host/Connection of the caller', () => {
    const u = new URL('http://127.0.0.1:5000/v2/a/blobs/sha256:1');
    expect(bulkEligible(u, { authorization: 'Bearer x', range: 'bytes=1-2' })).toBe(true);
    expect(bulkEligible(new URL('https://127.0.0.1:5000/v2/'), {})).toBe(false);
    expect(bulkEligible(new URL('http://u:p@127.0.0.1:5000/v2/'), {})).toBe(false);
    expect(bulkEligible(u, { authorization: 'Bearer x\r\nX-Injected: 1' })).toBe(false);
    expect(bulkEligible(u, { 'x-a': 'nul\0' })).toBe(false);
    expect(bulkEligible(u, { 'bad name': 'v' })).toBe(false);
    expect(bulkEligible(u, { Host: 'elsewhere' })).toBe(false);
    expect(bulkEligible(u, { connection: 'keep-alive' })).toBe(false);
    expect(bulkEligible(u, { 'user-agent': 'ferry/0.1 ü' })).toBe(true);
    expect(bulkEligible(u, { 'user-agent': 'ferry ☃' })).toBe(false);
  });
});
