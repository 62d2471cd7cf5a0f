/**
 * A raw node:net HTTP/1.1 server for fault injection that node:http cannot produce: a body cut
 * short below its Content-Length, garbage after the headers, a socket destroyed mid-answer.
 * Listens on 127.0.0.1, keeps connections alive, and is stopped by the caller (`stop()`).
 */
import net, { type AddressInfo, type Socket } from 'node:net';

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export interface RawReply {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send only this many bytes of `body` (Content-Length still says the full size), then destroy. */
  cutAfter?: number;
}

export interface RawServer {
  host: string;
  port: number;
  requests: RawRequest[];
  stop(): Promise<void>;
}

/** `handle` answers each request; returning a reply with `cutAfter` breaks the connection. */
export async function startRawServer(handle: (req: RawRequest) => RawReply): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buf.length > 64 * 1024) sock.destroy();
          return;
        }
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const [line, ...rest] = head.split('\r\n');
        const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line ?? '');
        if (!m) {
          sock.destroy(); // not HTTP (a TLS hello, say)
          return;
        }
        const headers: Record<string, string> = {};
        for (const h of rest) {
          const i = h.indexOf(':');
          if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
        }
        const req = { method: m[1]!, path: m[2]!, headers };
        requests.push(req);
        const len = Number(headers['content-length'] ?? 0);
        buf = buf.subarray(Math.min(len, buf.length)); // request bodies are ignored
        const r = handle(req);
        const body = Buffer.from(r.body ?? '');
        const lines = [`HTTP/1.1 ${r.status ?? 200} X`, `Content-Length: ${body.length}`];
        for (const [k, v] of Object.entries(r.headers ?? {})) lines.push(`${k}: ${v}`);
        sock.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (req.method === 'HEAD') continue;
        if (r.cutAfter !== undefined) {
          sock.write(body.subarray(0, r.cutAfter), () => sock.destroy());
          return;
        }
        sock.write(body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
