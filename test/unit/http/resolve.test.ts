import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isFerryError } from '../../../src/errors.js';
import { matchResolve, parseResolve } from '../../../src/http/resolve.js';
import { createDispatchers } from '../../../src/http/send.js';

describe('parseResolve (--resolve HOST:PORT:ADDRESS[:ADDRESS_PORT])', () => {
  it.each([
    ['registry-1.docker.io:443:127.0.0.1', { host: 'registry-1.docker.io', port: 443, address: '127.0.0.1' }],
    ['registry-1.docker.io:443:127.0.0.1:40123', { host: 'registry-1.docker.io', port: 443, address: '127.0.0.1', addressPort: 40123 }],
    ['GHCR.io:443:[::1]', { host: 'ghcr.io', port: 443, address: '::1' }],
    ['ghcr.io:443:[::1]:8443', { host: 'ghcr.io', port: 443, address: '::1', addressPort: 8443 }],
    ['[::1]:5000:127.0.0.1:5001', { host: '::1', port: 5000, address: '127.0.0.1', addressPort: 5001 }],
    ['10.0.0.1:5000:localhost', { host: '10.0.0.1', port: 5000, address: 'localhost' }],
    ['*:443:127.0.0.1', { host: '*', port: 443, address: '127.0.0.1' }],
    ['robot_host.example:65535:mirror.internal:1', { host: 'robot_host.example', port: 65535, address: 'mirror.internal', addressPort: 1 }],
  ])('%s', (value, want) => {
    expect(parseResolve(value)).toEqual({ ...want, spec: value });
  });

  it.each([
    ['', /HOST, PORT and ADDRESS are needed/],
    ['ghcr.io', /HOST, PORT and ADDRESS are needed/],
    ['ghcr.io:443', /no ADDRESS after the port/],
    ['ghcr.io:443:', /address is empty/],
    [':443:127.0.0.1', /host is empty/],
    ['ghcr.io:0:127.0.0.1', /port "0" is not a port number/],
    ['ghcr.io:65536:127.0.0.1', /port "65536"/],
    ['ghcr.io:https:127.0.0.1', /port "https"/],
    ['ghcr.io:443:127.0.0.1:x', /address port "x"/],
    ['ghcr.io:443:::1', /address "" |address is empty|IPv6 goes in brackets/],
    ['ghcr.io:443:[127.0.0.1]', /\[127\.0\.0\.1\] is not an IPv6 address/],
    ['ghcr.io:443:[::1', /unterminated/],
    ['ghcr.io:443:1.2.3.4:5:6', /too many fields/],
    ['gh cr.io:443:127.0.0.1', /host "gh cr\.io" is not a host name/],
    ['ghcr.io:443:bad/addr', /address "bad\/addr"/],
  ])('refuses %j with E_USAGE naming the value and the form', (value, why) => {
    let err: unknown;
    try {
      parseResolve(value);
    } catch (e) {
      err = e;
    }
    expect(isFerryError(err)).toBe(true);
    const e = err as Error & { code: string };
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain(`--resolve ${JSON.stringify(value)}`);
    expect(e.message).toContain('HOST:PORT:ADDRESS[:ADDRESS_PORT]');
    expect(e.message).toMatch(why);
  });
});

describe('matchResolve', () => {
  const rules = ['ghcr.io:443:127.0.0.1:1', '*:443:127.0.0.1:2', 'ghcr.io:443:127.0.0.1:3', '[::1]:5000:127.0.0.1:4'].map(parseResolve);
  it.each([
    ['ghcr.io', 443, 3], // exact wins over *, the later exact entry wins
    ['GHCR.IO.', 443, 3],
    ['quay.io', 443, 2],
    ['ghcr.io', 80, undefined],
    ['[::1]', 5000, 4],
    ['::1', 5000, 4],
    ['::1', 5001, undefined],
  ])('%s:%d → rule %s', (host, port, want) => {
    expect(matchResolve(rules, host, port)?.addressPort).toBe(want);
  });
});

describe('createDispatchers with --resolve rules', () => {
  it('sends the socket to the address; the Host header keeps the name; --debug says so once per mapping', async () => {
    const hosts: string[] = [];
    const srv = createServer((q, r) => {
      hosts.push(String(q.headers.host));
      r.end('ok');
    }).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const { port } = srv.address() as { port: number };
    const lines: string[] = [];
    const d = createDispatchers({}, { resolve: [parseResolve(`registry.ferry.test:5000:127.0.0.1:${port}`)], debug: (l) => lines.push(l) });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await d.verify.request({ origin: 'http://registry.ferry.test:5000', path: '/v2/', method: 'GET', reset: true });
        expect(await res.body.text()).toBe('ok');
      }
      expect(hosts).toEqual(['registry.ferry.test:5000', 'registry.ferry.test:5000']);
      expect(lines).toEqual([`connect registry.ferry.test:5000 → 127.0.0.1:${port} (--resolve)`]);
      // Not mapped: a port the rule does not name goes to DNS as usual (and .test never resolves).
      await expect(d.verify.request({ origin: 'http://registry.ferry.test:5001', path: '/', method: 'GET' })).rejects.toThrow(/ENOTFOUND|EAI_AGAIN|getaddrinfo/);
    } finally {
      await d.close();
      srv.close();
    }
  });
});
