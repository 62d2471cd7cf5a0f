/**
 * ferry's own body path for blob GETs over plain HTTP (docs/performance.md "Against what node can
 * reach"). undici hands a blob over as ~64 KiB Buffers, each allocated, pushed through a Readable
 * and batched by the region writer; this reads the socket with `onread` into one reused 1 MiB
 * buffer and gives each read to the consumer's synchronous sink (`attachSyncSink`, used by
 * util/verified-write.ts), which writes it at its offset before the buffer is read into again.
 * Measured on a 1 GiB / 8-layer pull to an OCI layout: 3.38 → 2.07 s, CPU 4.19 → 2.34 s.
 *
 * It is a client for one exchange, not a prototype: every status comes back as a response (the
 * retry, auth and redirect layers see exactly what undici would give them, and nothing is sent
 * twice), bodies framed by Content-Length, chunked or the end of the connection, 1xx skipped,
 * 204/304 empty; the headers and idle timeouts are `--idle-timeout`'s; failures carry undici's
 * error codes (UND_ERR_SOCKET, UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT,
 * UND_ERR_CONNECT_TIMEOUT) and node's (ECONNRESET, ECONNREFUSED…), so network-errors.ts maps and
 * retries them as before; an AbortSignal ends it with its reason, as undici does. One connection
 * per request (`connection: close`): a blob is large, and a loopback or LAN connect costs well
 * under a millisecond.
 *
 * Only what it can carry exactly comes here (http1.ts bulkEligible): plain http, a direct connection (no
 * proxy, no --resolve: createSend decides), header names that are tokens and values without
 * CR, LF or NUL. Everything else, and every https request, goes through undici.
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type Framing, framingOf, type Headers, netError, parseResponseHead } from './http1.js';

/** The read buffer: one per request, reused for every read of its socket. */
const READ_BUFFER = 1 << 20;
/** A response head (status line and headers) longer than this fails (undici's limit is 16 KiB). */
const MAX_HEAD = 64 << 10;
/** A chunk-size line or trailer line longer than this fails. */
const MAX_LINE = 4 << 10;
/** undici's default connect timeout. */
const CONNECT_TIMEOUT_MS = 10_000;

/** Read buffers of finished exchanges, for the next ones: a pull of 40 blobs allocates (and
 * faults in) a few MiB, not 40. A buffer comes back only once its socket is destroyed (no read
 * can land in it any more) and no view of it is held (sinks keep none past their call). */
const spare: Buffer[] = [];
const MAX_SPARE = 8;

export interface BulkOptions {
  signal?: AbortSignal | undefined;
  /** From the request written until the end of the response head (UND_ERR_HEADERS_TIMEOUT). */
  headersTimeoutMs: number;
  /** Between two reads of the body (UND_ERR_BODY_TIMEOUT); not counted while the consumer is full. */
  bodyTimeoutMs: number;
  connectTimeoutMs?: number;
}

export interface BulkResponse {
  statusCode: number;
  /** Lower-case names; a header sent more than once is an array, as undici gives it. */
  headers: Headers;
  body: BulkBody;
}

const otherSideClosed = (): Error => netError('other side closed', 'UND_ERR_SOCKET');

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('This operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/**
 * A response body. Read it as any Readable (each chunk is a copy), or hand it a synchronous sink
 * before reading: then every read of the socket goes to the sink as a view of the reused read
 * buffer, valid only during the call, and nothing is copied.
 */
export class BulkBody extends Readable {
  /** @internal the sink, once attached */
  sink: ((chunk: Buffer) => void) | undefined;

  constructor(private readonly onRead: () => void, private readonly onDestroy: () => void) {
    super({ highWaterMark: 256 << 10 });
  }

  override _read(): void {
    this.onRead();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.onDestroy();
    // A failure in the read that brought the head (or right after it) comes before the caller,
    // a few promise ticks away, could listen: its 'error' waits for the next turn (as undici's).
    if (err && !this.sink && this.listenerCount('error') === 0) setImmediate(() => cb(err));
    else cb(err);
  }

  /**
   * From now on chunks go to `sink` synchronously (the bytes already buffered first, in order);
   * the stream still ends or fails as usual, so the caller awaits `finished(body)`. A sink that
   * throws destroys the body with that error. False (and nothing changes) when the body is
   * already being read or is destroyed.
   */
  attachSyncSink(sink: (chunk: Buffer) => void): boolean {
    if (this.readableFlowing !== null || this.destroyed || this.sink) return false;
    try {
      for (;;) {
        const c = this.read() as Buffer | null;
        if (c === null) break;
        sink(c);
      }
    } catch (e) {
      this.destroy(e as Error);
      return true;
    }
    this.sink = sink;
    this.resume();
    return true;
  }
}

/**
 * One GET over a new connection. Resolves with the response once its head arrived (any status),
 * rejects when the connection fails, times out or is aborted before that; later failures destroy
 * the body with the error.
 */
export function bulkGet(url: URL, headers: Record<string, string>, opts: BulkOptions): Promise<BulkResponse> {
  return new Promise<BulkResponse>((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) return reject(abortReason(signal));
    let head: Buffer | undefined = Buffer.alloc(0);
    /** Body bytes of the read that brought the head: a view of the read buffer, kept while the
     * socket is paused until the consumer reads or attaches a sink (so a sink gets them uncopied). */
    let early: Buffer | undefined;
    const readBuffer = spare.pop() ?? Buffer.allocUnsafe(READ_BUFFER);
    let framing: Framing = { kind: 'none' };
    let body: BulkBody | undefined;
    let done = false; // the body ended, or the exchange failed: nothing more is read
    let paused = false;
    let timer: NodeJS.Timeout | undefined;
    // Chunked decoding state.
    let chunkLeft = 0;
    let chunkState: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
    let line = '';

    const stopTimer = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    const arm = (ms: number, code: string, message: string): void => {
      stopTimer();
      if (ms > 0 && Number.isFinite(ms)) timer = setTimeout(() => fail(netError(message, code)), ms);
    };
    const armBody = (): void => arm(opts.bodyTimeoutMs, 'UND_ERR_BODY_TIMEOUT', 'Body Timeout Error');
    /** After the socket is destroyed: no read can land in its buffer any more. */
    const cleanup = (): void => {
      stopTimer();
      signal?.removeEventListener('abort', onAbort);
      early = undefined;
      if (spare.length < MAX_SPARE) spare.push(readBuffer);
    };
    /** Ends the exchange with `e`: the promise if no response yet, else the body. */
    const fail = (e: unknown): void => {
      if (done) return;
      done = true;
      sock.destroy();
      cleanup();
      if (body) body.destroy(e as Error);
      else reject(e);
    };
    const finish = (): void => {
      if (done) return;
      done = true;
      sock.destroy();
      cleanup();
      body!.push(null);
    };
    const onAbort = (): void => fail(abortReason(signal!));

    /** Gives body bytes to the consumer; false when it is full (the socket pauses). */
    const deliver = (view: Buffer): boolean => {
      if (view.length === 0) return true;
      const b = body!;
      if (b.sink) {
        try {
          b.sink(view);
        } catch (e) {
          fail(e);
          return false;
        }
        return !done;
      }
      if (b.destroyed) return false;
      return b.push(Buffer.from(view));
    };

    /** Feeds a chunked body; false = stop reading (full consumer, end or failure). */
    const chunked = (data: Buffer): boolean => {
      let at = 0;
      let more = true;
      while (at < data.length && !done) {
        if (chunkState === 'data') {
          const n = Math.min(chunkLeft, data.length - at);
          more = deliver(data.subarray(at, at + n)) && more;
          at += n;
          chunkLeft -= n;
          if (chunkLeft === 0) chunkState = 'crlf';
          continue;
        }
        // size, crlf and trailer states read lines.
        const nl = data.indexOf(10, at);
        const piece = data.toString('latin1', at, nl < 0 ? data.length : nl + 1);
        at = nl < 0 ? data.length : nl + 1;
        line += piece;
        if (line.length > MAX_LINE) return fail(netError('chunk line too long', 'HPE_INVALID_CHUNK_SIZE')), false;
        if (nl < 0) break;
        if (!line.endsWith('\r\n')) return fail(netError('expected CRLF in the chunked body', 'HPE_STRICT')), false;
        const text = line.slice(0, -2);
        line = '';
        if (chunkState === 'crlf') {
          if (text !== '') return fail(netError('expected CRLF after chunk data', 'HPE_STRICT')), false;
          chunkState = 'size';
        } else if (chunkState === 'size') {
          const m = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/.exec(text);
          if (!m) return fail(netError(`invalid chunk size ${JSON.stringify(text.slice(0, 40))}`, 'HPE_INVALID_CHUNK_SIZE')), false;
          chunkLeft = parseInt(m[1]!, 16);
          chunkState = chunkLeft === 0 ? 'trailer' : 'data';
        } else if (text === '') {
          finish(); // the empty line after the last chunk (and its trailers, which are dropped)
          return false;
        }
      }
      return more && !done;
    };

    /** Body bytes of one read; false = stop reading. */
    const onBody = (data: Buffer): boolean => {
      if (framing.kind === 'length') {
        const n = Math.min(framing.left, data.length);
        framing.left -= n;
        // Bytes past Content-Length are not part of this answer (the connection closes here).
        const more = deliver(data.subarray(0, n));
        if (framing.left === 0) {
          finish();
          return false;
        }
        return more;
      }
      if (framing.kind === 'chunked') return chunked(data);
      return deliver(data);
    };

    /** Parses one response head at the start of `buf`; returns the bytes after it, or undefined
     * while it is incomplete (or after a failure). */
    const parseHead = (buf: Buffer): Buffer | undefined => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) fail(netError('Headers Overflow Error', 'UND_ERR_HEADERS_OVERFLOW'));
        return undefined;
      }
      if (end > MAX_HEAD) return fail(netError('Headers Overflow Error', 'UND_ERR_HEADERS_OVERFLOW')), undefined;
      const parsed = parseResponseHead(buf.toString('latin1', 0, end));
      if (parsed instanceof Error) return fail(parsed), undefined;
      const { status, headers: h } = parsed;
      const rest = buf.subarray(end + 4);
      if (status >= 100 && status < 200) {
        if (status === 101) return fail(netError('unexpected 101 Switching Protocols', 'HPE_INVALID_CONSTANT')), undefined;
        head = Buffer.from(rest); // an interim answer: the real one follows
        return parseHead(head);
      }
      const f = framingOf(status, h);
      if (f instanceof Error) return fail(f), undefined;
      framing = f;
      head = undefined;
      body = new BulkBody(
        () => {
          if (done) return;
          if (early) {
            // The consumer is here (a sink, or a read): the head's read goes to it first.
            const v = early;
            early = undefined;
            if (!onBody(v)) return;
          }
          if (paused && !done) {
            paused = false;
            armBody();
            sock.resume();
          }
        },
        () => {
          // The consumer is done with it (read to the end, dumped, or destroyed): so is the socket.
          if (!done) {
            done = true;
            sock.destroy();
            cleanup();
          }
        },
      );
      resolve({ statusCode: status, headers: h, body });
      if (framing.kind === 'none' || (framing.kind === 'length' && framing.left === 0)) {
        finish();
        return undefined;
      }
      // Nothing more is read until the consumer comes (the body timer waits for it too).
      if (rest.length > 0) early = rest;
      paused = true;
      stopTimer();
      return undefined;
    };

    const sock: Socket = connect({
      host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: Number(url.port) || 80,
      noDelay: true,
      onread: {
        buffer: readBuffer,
        callback(n: number, buf: Buffer): boolean {
          if (done) return false;
          const data = buf.subarray(0, n);
          if (head) {
            // Parsed in place when the whole head is in this read (the usual case): its body
            // bytes stay a view of the read buffer (`early`), not a copy.
            head = head.length === 0 && data.indexOf('\r\n\r\n') >= 0 ? data : Buffer.concat([head, data]);
            parseHead(head);
            // A head still incomplete: read on. Complete: paused until the consumer comes.
            return head !== undefined && !done;
          }
          if (timer) timer.refresh();
          const more = onBody(data);
          if (!more && !done) {
            paused = true;
            stopTimer();
          }
          return more;
        },
      },
    });
    if (signal) signal.addEventListener('abort', onAbort, { once: true });
    arm(opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS, 'UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error');
    sock.once('connect', () => {
      if (done) return;
      let req = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
      for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
      sock.write(Buffer.from(`${req}connection: close\r\n\r\n`, 'latin1'));
      arm(opts.headersTimeoutMs, 'UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error');
    });
    sock.on('error', (e) => fail(e));
    // The server's end of the connection: a body framed by it ends here; any other unfinished
    // exchange was cut ("other side closed", as undici says).
    sock.on('end', () => {
      if (!done && body && framing.kind === 'close') finish();
      else fail(otherSideClosed());
    });
    sock.on('close', () => fail(otherSideClosed()));
  });
}
