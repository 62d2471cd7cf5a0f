/**
 * `Link` pagination that never ends (http/registry client listTags): a next link to a page
 * already read, a `last` that does not move, or endless distinct pages must end in E_REGISTRY
 * "registry returned a pagination loop at …" (exit 5), never thousands of requests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/run-cli.js';
import { newSession, rejection, repoOf } from './support.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

/** A registry whose tag pages are `page(url, n)` (n = 1-based request count). */
async function tagServer(page: (url: URL, n: number) => { tags: string[]; link?: string }): Promise<{ host: string; hits: () => number }> {
  let n = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v2/') return res.writeHead(200).end('{}');
    if (url.pathname !== '/v2/app/tags/list') return res.writeHead(404).end('{"errors":[{"code":"NAME_UNKNOWN"}]}');
    const p = page(url, ++n);
    res.writeHead(200, { 'Content-Type': 'application/json', ...(p.link ? { Link: p.link } : {}) });
    res.end(JSON.stringify({ name: 'app', tags: p.tags }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  stops.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => n };
}

const list = (host: string, opts?: { maxPages?: number }) => {
  const { session } = newSession();
  return repoOf(session, host, 'app').client.listTags(undefined, opts);
};

describe('tag list pagination loops', () => {
  it('a Link that points at the page itself → E_REGISTRY after 1 request', async () => {
    const s = await tagServer(() => ({ tags: ['a'], link: '</v2/app/tags/list>; rel="next"' }));
    const e = await rejection(list(s.host));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toBe(`${s.host}/app: registry returned a pagination loop at http://${s.host}/v2/app/tags/list (page 1 links back to a page already read)`);
    expect(s.hits()).toBe(1);
  });

  it('A → B → A → E_REGISTRY after 2 requests', async () => {
    const s = await tagServer((u) => (u.searchParams.get('last') === 'b'
      ? { tags: ['c'], link: '</v2/app/tags/list>; rel="next"' }
      : { tags: ['a', 'b'], link: '</v2/app/tags/list?n=2&last=b>; rel="next"' }));
    const e = await rejection(list(s.host));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain('pagination loop at');
    expect(s.hits()).toBe(2);
  });

  it('a `last` that does not advance (the rest of the URL changing) → E_REGISTRY after 2 requests', async () => {
    const s = await tagServer((_u, n) => ({ tags: ['a', 'b'], link: `</v2/app/tags/list?n=2&last=b&nonce=${n}>; rel="next"` }));
    const e = await rejection(list(s.host));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain(`pagination loop at http://${s.host}/v2/app/tags/list?n=2&last=b&nonce=2`);
    expect(s.hits()).toBe(2);
  });

  it('endless distinct pages → E_REGISTRY at the page cap, naming it', async () => {
    const s = await tagServer((_u, n) => ({ tags: [`t${n}`], link: `</v2/app/tags/list?n=1&last=t${n}>; rel="next"` }));
    const e = await rejection(list(s.host, { maxPages: 25 }));
    expect(e.code).toBe('E_REGISTRY');
    expect(e.message).toContain('still paging after 25 pages, 25 tags');
    expect(s.hits()).toBe(25);
  });

  it('an honest 3-page list still ends normally', async () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    const s = await tagServer((u) => {
      const last = u.searchParams.get('last');
      const from = last ? all.indexOf(last) + 1 : 0;
      const tags = all.slice(from, from + 2);
      return from + 2 < all.length ? { tags, link: `</v2/app/tags/list?n=2&last=${tags[1]}>; rel="next"` } : { tags };
    });
    expect(await list(s.host, { maxPages: 3 })).toEqual(all);
    expect(s.hits()).toBe(3);
  });

  it('ferry tags against a self-referencing Link → exit 5, one line', async () => {
    const s = await tagServer(() => ({ tags: ['a'], link: '</v2/app/tags/list>; rel="next"' }));
    const r = await runCli(['tags', '--plain-http', `${s.host}/app`]);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe(`ferry: ${s.host}/app: registry returned a pagination loop at http://${s.host}/v2/app/tags/list (page 1 links back to a page already read)`);
    expect(s.hits()).toBe(1);
  }, 30_000);
});
