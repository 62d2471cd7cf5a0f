import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { FerryError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import { headerValue, type HttpRequest, type HttpResponse, type Send } from './types.js';
import { mapNetworkError } from './network-errors.js';
import { loadAgent } from './undici-agent.js';

const MAX_REDIRECTS = 10;

export interface Dispatchers {
  verify: Dispatcher;
  noVerify: Dispatcher;
  close(): Promise<void>;
}

/** One keep-alive agent per TLS policy, shared by every registry in the process. */
export function createDispatchers(): Dispatchers {
  const Agent = loadAgent();
  const common = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 32, headersTimeout: 60_000, bodyTimeout: 120_000 };
  const verify = new Agent({ ...common, connect: { rejectUnauthorized: true } });
  const noVerify = new Agent({ ...common, connect: { rejectUnauthorized: false } });
  return { verify, noVerify, close: async () => void (await Promise.all([verify.close(), noVerify.close()])) };
}

export function wrapResponse(url: URL, status: number, headers: Record<string, string | string[] | undefined>, body: Readable): HttpResponse {
  return {
    status,
    headers,
    url,
    body,
    header: (n) => headerValue(headers, n),
    dump: async () => {
      body.resume();
      await new Promise<void>((resolve) => {
        if (body.readableEnded || body.destroyed) return resolve();
        body.once('end', resolve).once('error', () => resolve()).once('close', resolve);
      });
    },
  };
}

/**
 * The innermost layer: one HTTP exchange through undici, following redirects itself so that the
 * `Authorization` header is dropped whenever a redirect leaves the original host (ECR/S3,
 * Quay/Ceph pre-signed URLs reject it, and it must never leak). No cookies are kept or sent.
 */
export function createSend(dispatcherFor: (req: HttpRequest) => Dispatcher): Send {
  return async (req) => {
    let current: HttpRequest = req;
    const origin = req.url.origin;
    const follow = req.followRedirects ?? (req.method === 'GET' || req.method === 'HEAD');
    for (let hop = 0; ; hop++) {
      const body = await materialize(current.body);
      let res: Dispatcher.ResponseData;
      try {
        res = await dispatcherFor(current).request({
          origin: current.url.origin,
          path: current.url.pathname + current.url.search,
          method: current.method,
          headers: current.headers,
          body,
          signal: current.signal ?? null,
        });
      } catch (e) {
        if (body instanceof Readable) body.destroy();
        throw mapNetworkError(e, current.url);
      }
      const headers = res.headers as Record<string, string | string[] | undefined>;
      const location = headerValue(headers, 'location');
      // 307/308 keep method and body (bodies are bytes or re-openable factories), so uploads
      // may follow them too; 301/302/303 only for the reads that asked to follow.
      const keepsMethod = res.statusCode === 307 || res.statusCode === 308;
      if (location && req.followRedirects !== false && (keepsMethod || (follow && [301, 302, 303].includes(res.statusCode)))) {
        res.body.resume();
        if (hop >= MAX_REDIRECTS) {
          throw new FerryError('E_REGISTRY', `too many redirects fetching ${redactUrl(req.url)}`);
        }
        const next = new URL(location, current.url);
        const headersNext = { ...current.headers };
        // Any change of origin (scheme, host or port) drops credentials: a same-host https → http
        // redirect must not send them in clear text.
        if (next.origin !== origin) {
          delete headersNext['authorization'];
          delete headersNext['Authorization'];
        }
        delete headersNext['cookie'];
        const method = res.statusCode === 303 ? 'GET' : current.method;
        current = { ...current, method, url: next, headers: headersNext, ...(method === 'GET' && current.method !== 'GET' ? { body: undefined } : {}) };
        continue;
      }
      delete headers['set-cookie'];
      return wrapResponse(current.url, res.statusCode, headers, res.body);
    }
  };
}

async function materialize(body: HttpRequest['body']): Promise<string | Uint8Array | Readable | undefined> {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) return body;
  return await body();
}
