/** Blob upload sessions: POST (monolithic / mount / session), PATCH, PUT, GET status, DELETE. */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Ctx } from './handlers.js';
import type { Store, UploadSession } from './store.js';
import type { MemRegistryOptions } from './types.js';
import { NAME_RE, algorithmOf, bareType, checkDigest, digestOf, empty, errorResp, header, type Resp } from './util.js';

export class Uploads {
  private readonly stateKey = randomBytes(32);

  constructor(private readonly store: Store, private readonly opts: MemRegistryOptions) {}

  /** Opaque, HMAC-protected `_state` carrying the offset (like distribution's `_state`). */
  private state(s: UploadSession): string {
    const payload = Buffer.from(JSON.stringify({ n: s.repo, u: s.id, o: s.size })).toString('base64url');
    const mac = createHmac('sha256', this.stateKey).update(payload).digest('base64url').slice(0, 22);
    return `${payload}.${mac}`;
  }

  private readState(raw: string | null): { n: string; u: string; o: number } | undefined {
    if (!raw) return undefined;
    const [payload, mac] = raw.split('.');
    if (!payload || !mac) return undefined;
    const want = createHmac('sha256', this.stateKey).update(payload).digest('base64url').slice(0, 22);
    if (mac !== want) return undefined;
    try {
      return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { n: string; u: string; o: number };
    } catch {
      return undefined;
    }
  }

  private progress(status: number, s: UploadSession): Resp {
    const headers: Record<string, string> = {
      Location: `/v2/${s.repo}/blobs/uploads/${s.id}?_state=${this.state(s)}`,
      'Docker-Upload-UUID': s.id,
      Range: `0-${Math.max(0, s.size - 1)}`,
    };
    return empty(status, headers);
  }

  private created(name: string, digest: string): Resp {
    return empty(201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
  }

  /** Checks a blob digest parameter; returns an error response or undefined. */
  private badDigestParam(digest: string | null): Resp | undefined {
    if (!digest) return errorResp(400, 'DIGEST_INVALID', 'missing digest parameter');
    const c = checkDigest(digest);
    if (c === 'invalid') return errorResp(400, 'DIGEST_INVALID', 'invalid digest', { digest });
    if (c === 'unsupported') return errorResp(400, 'DIGEST_INVALID', 'unsupported digest algorithm', { digest });
    return undefined;
  }

  start(name: string, ctx: Ctx): Resp {
    const q = ctx.url.searchParams;
    const mount = q.get('mount');
    const from = q.get('from');
    if (mount !== null) {
      const bad = this.badDigestParam(mount);
      if (bad) return bad;
      if (from !== null && NAME_RE.test(from) && ctx.principal.canPull(from)) {
        const blob = this.store.getBlob(from, mount);
        if (blob) {
          this.store.putBlob(name, blob, mount);
          return this.created(name, mount);
        }
      }
      // Not mountable: fall through to a fresh upload session (202), as the spec recommends.
    } else if (q.has('digest')) {
      const digest = q.get('digest');
      const bad = this.badDigestParam(digest);
      if (bad) return bad;
      const actual = digestOf(ctx.body, algorithmOf(digest!));
      if (actual !== digest) return errorResp(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: digest, actual });
      this.store.putBlob(name, ctx.body, digest!);
      return this.created(name, digest!);
    }
    const s: UploadSession = { id: randomUUID(), repo: name, chunks: [], size: 0, shortChunk: false };
    this.store.uploads.set(s.id, s);
    const r = this.progress(202, s);
    if (this.opts.chunkMinLength !== undefined) r.headers['OCI-Chunk-Min-Length'] = String(this.opts.chunkMinLength);
    return r;
  }

  /** Appends a chunk after Content-Range / size / min-length checks. */
  private append(s: UploadSession, ctx: Ctx, isPatch: boolean): Resp | undefined {
    const body = ctx.body;
    const cr = header(ctx.headers, 'content-range');
    if (cr !== undefined) {
      const m = /^(\d+)-(\d+)$/.exec(cr.trim());
      if (!m) return errorResp(400, 'BLOB_UPLOAD_INVALID', 'malformed Content-Range', { contentRange: cr });
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (start !== s.size || end < start) {
        const r = this.progress(416, s);
        const e = errorResp(416, 'BLOB_UPLOAD_INVALID', 'chunk out of order', { expectedStart: s.size, contentRange: cr });
        return { ...e, headers: { ...e.headers, ...r.headers } };
      }
      if (end - start + 1 !== body.length) {
        return errorResp(400, 'SIZE_INVALID', 'Content-Range does not match body length', { contentRange: cr, length: body.length });
      }
    }
    if (body.length === 0) return undefined;
    if (s.shortChunk) {
      return errorResp(400, 'SIZE_INVALID', `a chunk smaller than OCI-Chunk-Min-Length (${this.opts.chunkMinLength}) was not the final chunk`);
    }
    if (isPatch && this.opts.chunkMinLength !== undefined && body.length < this.opts.chunkMinLength) s.shortChunk = true;
    s.chunks.push(body);
    s.size += body.length;
    return undefined;
  }

  handle(name: string, id: string, ctx: Ctx): Resp {
    const s = this.store.uploads.get(id);
    if (!s || s.repo !== name) return errorResp(404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { uuid: id });
    if (ctx.method === 'GET') return this.progress(204, s);
    if (ctx.method === 'DELETE') {
      this.store.uploads.delete(id);
      return empty(204);
    }
    // PATCH / PUT must present the latest Location (its `_state` carries the offset).
    const st = this.readState(ctx.url.searchParams.get('_state'));
    if (!st || st.u !== s.id || st.n !== s.repo) return errorResp(400, 'BLOB_UPLOAD_INVALID', 'missing or invalid _state; use the Location returned by the registry');
    if (st.o !== s.size) return errorResp(400, 'BLOB_UPLOAD_INVALID', 'upload resumed at wrong offset (stale Location)', { offset: st.o, size: s.size });
    if (ctx.method === 'PATCH') {
      const ct = bareType(header(ctx.headers, 'content-type'));
      if (ct && ct !== 'application/octet-stream') return errorResp(400, 'BLOB_UPLOAD_INVALID', `unexpected Content-Type ${ct}`);
      const err = this.append(s, ctx, true);
      return err ?? this.progress(202, s);
    }
    // PUT ?digest= closes the session, optionally with a final chunk.
    const digest = ctx.url.searchParams.get('digest');
    const bad = this.badDigestParam(digest);
    if (bad) return bad;
    const err = this.append(s, ctx, false);
    if (err) return err;
    const bytes = Buffer.concat(s.chunks);
    const actual = digestOf(bytes, algorithmOf(digest!));
    this.store.uploads.delete(id);
    if (actual !== digest) return errorResp(400, 'DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: digest, actual });
    this.store.putBlob(name, bytes, digest!);
    return this.created(name, digest!);
  }
}
