/**
 * A TCP relay on 127.0.0.1 in front of a registry that counts what the registry served, for
 * tests that assert how many bytes a command fetched (the blob cache, resume after a kill).
 *
 * Contracts:
 * - `startCountingRelay(port)` listens on a free 127.0.0.1 port and pipes every connection to
 *   127.0.0.1:`port`. `host` is `127.0.0.1:<relay port>` (plain http).
 * - `served` counts bytes from the registry to clients (headers included); `requests` lists the
 *   request lines clients sent (`GET /v2/app/blobs/sha256:… HTTP/1.1`), parsed from the client
 *   side of each connection (requests without bodies: pulls).
 * - `stallAt(bytes)`: once `served` reaches `bytes`, nothing more is forwarded (every upstream
 *   socket is paused) and the returned promise resolves, so a test can kill the client at a known
 *   point; `unstall()` resumes. `reset()` zeroes the counters.
 * - stop() closes the server and every connection.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface CountingRelay {
  host: string;
  served: number;
  requests: string[];
  stallAt(bytes: number): Promise<void>;
  unstall(): void;
  reset(): void;
  stop(): Promise<void>;
}

export async function startCountingRelay(port: number): Promise<CountingRelay> {
  const sockets = new Set<Socket>();
  const upstreams = new Set<Socket>();
  let stall: { at: number; hit: () => void } | undefined;
  let stalled = false;
  const relay: CountingRelay = {
    host: '',
    served: 0,
    requests: [],
    stallAt(bytes) {
      return new Promise<void>((resolve) => {
        stall = { at: bytes, hit: resolve };
      });
    },
    unstall() {
      stall = undefined;
      stalled = false;
      for (const u of upstreams) u.resume();
    },
    reset() {
      relay.served = 0;
      relay.requests.length = 0;
    },
    async stop() {
      for (const s of [...sockets, ...upstreams]) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((client) => {
    sockets.add(client);
    const up = connect(port, '127.0.0.1');
    upstreams.add(up);
    let head = '';
    client.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      for (let i = head.indexOf('\r\n'); i >= 0; i = head.indexOf('\r\n')) {
        const line = head.slice(0, i);
        head = head.slice(i + 2);
        if (/^(GET|HEAD|PUT|POST|PATCH|DELETE) \S+ HTTP\/1\.[01]$/.test(line)) relay.requests.push(line);
      }
      if (head.length > 65536) head = head.slice(-1024);
      up.write(d);
    });
    up.on('data', (d: Buffer) => {
      if (stalled) {
        up.pause();
        up.unshift(d);
        return;
      }
      relay.served += d.length;
      client.write(d);
      if (stall && relay.served >= stall.at) {
        stalled = true;
        for (const u of upstreams) u.pause();
        const hit = stall.hit;
        stall = undefined;
        hit();
      }
    });
    const end = (): void => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      upstreams.delete(up);
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  relay.host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return relay;
}
