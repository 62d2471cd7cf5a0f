/**
 * Proxy choice from the environment (src/http/proxy.ts), table-driven against the rules of Go's
 * golang.org/x/net/http/httpproxy (what docker and skopeo do), where undici's EnvHttpProxyAgent
 * differs.
 */
import { describe, expect, it } from 'vitest';
import { describeProxy, parseIp, proxyEnv, proxyFor } from '../../../src/http/proxy.js';

const P = 'http://proxy.corp:3128/';
const S = 'http://sproxy.corp:3128/';

/** The proxy ferry would use for `url` under `env` ('' = direct). */
function choose(env: NodeJS.ProcessEnv, url: string): string {
  const cfg = proxyEnv(env);
  if (!cfg) return '';
  return proxyFor(cfg, new URL(url))?.href ?? '';
}

describe('proxyEnv: which variable', () => {
  it.each<[string, NodeJS.ProcessEnv, string, string]>([
    ['nothing set: undefined (fast path)', {}, 'https://r.example/v2/', ''],
    ['HTTPS_PROXY for https', { HTTPS_PROXY: S }, 'https://r.example/v2/', S],
    ['https_proxy for https', { https_proxy: S }, 'https://r.example/v2/', S],
    ['upper case first', { HTTPS_PROXY: S, https_proxy: P }, 'https://r.example/v2/', S],
    ['an empty upper-case value counts as unset', { HTTPS_PROXY: '', https_proxy: S }, 'https://r.example/v2/', S],
    ['an empty lower-case value does not hide the upper case', { HTTPS_PROXY: S, https_proxy: '' }, 'https://r.example/v2/', S],
    ['HTTP_PROXY alone is not used for https', { HTTP_PROXY: P }, 'https://r.example/v2/', ''],
    ['HTTP_PROXY for http', { HTTP_PROXY: P, HTTPS_PROXY: S }, 'http://r.example/v2/', P],
    ['http_proxy for http', { http_proxy: P }, 'http://r.example/v2/', P],
    ['HTTPS_PROXY alone is not used for http', { HTTPS_PROXY: S }, 'http://r.example/v2/', ''],
    ['host:port means http://host:port', { HTTPS_PROXY: 'proxy.corp:3128' }, 'https://r.example/', 'http://proxy.corp:3128/'],
    ['an IP:port too', { HTTPS_PROXY: '10.1.2.3:8080' }, 'https://r.example/', 'http://10.1.2.3:8080/'],
    ['credentials without a scheme', { HTTPS_PROXY: 'u:p@proxy.corp:3128' }, 'https://r.example/', 'http://u:p@proxy.corp:3128/'],
    ['an https proxy', { HTTPS_PROXY: 'https://proxy.corp' }, 'https://r.example/', 'https://proxy.corp/'],
  ])('%s', (_name, env, url, want) => {
    expect(choose(env, url)).toBe(want);
  });

  it('no proxy variable at all: proxyEnv is undefined, NO_PROXY alone changes nothing', () => {
    expect(proxyEnv({})).toBeUndefined();
    expect(proxyEnv({ NO_PROXY: '*', no_proxy: 'x' })).toBeUndefined();
    expect(proxyEnv({ HTTPS_PROXY: '', https_proxy: '' })).toBeUndefined();
  });

  it('a value that is not a proxy URL fails (E_USAGE) only when a request needs it', () => {
    const cfg = proxyEnv({ HTTPS_PROXY: 'http://[bad', HTTP_PROXY: P })!;
    expect(proxyFor(cfg, new URL('http://r.example/'))?.href).toBe(P);
    expect(proxyFor(cfg, new URL('https://localhost:5000/'))).toBeUndefined();
    expect(() => proxyFor(cfg, new URL('https://r.example/'))).toThrow(expect.objectContaining({ code: 'E_USAGE', message: expect.stringContaining('HTTPS_PROXY') }));
  });

  it('an unparsable value with credentials does not show them', () => {
    const cfg = proxyEnv({ HTTPS_PROXY: 'http://user:s3cret-pw@[bad' })!;
    let msg = '';
    try {
      proxyFor(cfg, new URL('https://r.example/'));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('HTTPS_PROXY');
    expect(msg).not.toContain('s3cret-pw');
  });

  it('socks proxies: E_UNSUPPORTED, naming the variable', () => {
    const cfg = proxyEnv({ HTTPS_PROXY: 'socks5://u:pw@127.0.0.1:1080' })!;
    expect(() => proxyFor(cfg, new URL('https://r.example/'))).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED', message: 'HTTPS_PROXY: socks5 proxies are not supported (socks5://***@127.0.0.1:1080)' }));
  });
});

describe('NO_PROXY and loopback', () => {
  const via = (noProxy: string | undefined, url: string, lower = false): boolean => {
    const env: NodeJS.ProcessEnv = { HTTPS_PROXY: S, HTTP_PROXY: P };
    if (noProxy !== undefined) env[lower ? 'no_proxy' : 'NO_PROXY'] = noProxy;
    return choose(env, url) !== '';
  };

  it.each<[string | undefined, string, boolean]>([
    // loopback and localhost: never proxied, whatever NO_PROXY says
    [undefined, 'https://localhost:5000/', false],
    [undefined, 'https://LOCALHOST/', false],
    [undefined, 'https://127.0.0.1:5000/', false],
    [undefined, 'http://127.8.9.10/', false],
    [undefined, 'https://[::1]:5000/', false],
    [undefined, 'https://[::ffff:127.0.0.1]/', false],
    [undefined, 'https://registry.example/', true],
    [undefined, 'https://10.0.0.5/', true],
    // plain names: the host and every subdomain, not a lookalike
    ['corp.com', 'https://corp.com/', false],
    ['corp.com', 'https://reg.corp.com/', false],
    ['corp.com', 'https://a.b.corp.com:5000/', false],
    ['corp.com', 'https://notcorp.com/', true],
    ['CORP.com', 'https://reg.Corp.COM/', false],
    // leading dot and *.: subdomains only
    ['.corp.com', 'https://reg.corp.com/', false],
    ['.corp.com', 'https://corp.com/', true],
    ['*.corp.com', 'https://reg.corp.com/', false],
    ['*.corp.com', 'https://corp.com/', true],
    // host:port limits the match to that port (default ports count)
    ['reg.corp.com:5000', 'https://reg.corp.com:5000/', false],
    ['reg.corp.com:5000', 'https://reg.corp.com/', true],
    ['reg.corp.com:443', 'https://reg.corp.com/', false],
    ['reg.corp.com:80', 'http://reg.corp.com/', false],
    ['reg.corp.com:80', 'https://reg.corp.com/', true],
    // lists: commas, spaces trimmed, empty and malformed entries skipped
    [' other.example , corp.com ,,', 'https://reg.corp.com/', false],
    [':5000, other.example', 'https://reg.corp.com:5000/', true],
    ['other.example corp.com', 'https://reg.corp.com/', true], // whitespace is no separator
    // *
    ['*', 'https://anything.example/', false],
    ['*', 'https://10.1.1.1/', false],
    ['foo, *', 'https://anything.example/', false],
    ['*foo.com', 'https://bar.foo.com/', true], // not a wildcard: matches nothing real
    // IPs and CIDRs match IP-literal hosts only (names are not resolved)
    ['10.1.2.3', 'https://10.1.2.3:5000/', false],
    ['10.1.2.3', 'https://10.1.2.4/', true],
    ['10.1.2.3:5000', 'https://10.1.2.3:5000/', false],
    ['10.1.2.3:5000', 'https://10.1.2.3:5001/', true],
    ['10.0.0.0/8', 'https://10.200.3.4/', false],
    ['10.0.0.0/8', 'https://11.0.0.1/', true],
    ['10.0.0.0/8', 'https://ten.example/', true],
    ['192.168.1.0/24', 'https://192.168.1.77/', false],
    ['192.168.1.0/24', 'https://192.168.2.1/', true],
    ['0.0.0.0/0', 'https://8.8.8.8/', false],
    ['fd00::/8', 'https://[fd12:3456::1]:5000/', false],
    ['fd00::/8', 'https://[fe80::1]/', true],
    ['fd00::/8', 'https://10.1.1.1/', true],
    ['2001:db8::1', 'https://[2001:db8:0:0::1]/', false],
    ['[2001:db8::1]:5000', 'https://[2001:db8::1]:5000/', false],
    ['[2001:db8::1]:5000', 'https://[2001:db8::1]:5001/', true],
    ['10.0.0.0/8', 'https://[::ffff:10.9.9.9]/', false], // IPv4-mapped counts as IPv4
    // IDNA: entries are compared in their ASCII form, as the URL host is
    ['bücher.de', 'https://reg.xn--bcher-kva.de/', false],
  ])('NO_PROXY=%j, %s → proxied: %s', (noProxy, url, want) => {
    expect(via(noProxy, url)).toBe(want);
  });

  it('no_proxy (lower case) is read; NO_PROXY wins when both are set; an empty NO_PROXY does not hide no_proxy', () => {
    expect(via('corp.com', 'https://reg.corp.com/', true)).toBe(false);
    expect(choose({ HTTPS_PROXY: S, NO_PROXY: 'other.example', no_proxy: 'corp.com' }, 'https://reg.corp.com/')).toBe(S);
    expect(choose({ HTTPS_PROXY: S, NO_PROXY: '', no_proxy: 'corp.com' }, 'https://reg.corp.com/')).toBe('');
  });
});

describe('helpers', () => {
  it('describeProxy never shows credentials', () => {
    expect(describeProxy(new URL('http://user:pw@proxy:3128'))).toBe('http://***@proxy:3128');
    expect(describeProxy(new URL('http://token@proxy'))).toBe('http://***@proxy');
    expect(describeProxy(new URL('https://proxy.corp:8443/'))).toBe('https://proxy.corp:8443');
  });

  it.each<[string, boolean]>([
    ['1.2.3.4', true], ['255.255.255.255', true], ['256.1.1.1', false], ['1.2.3', false], ['01.2.3.4', true],
    ['::', true], ['::1', true], ['fe80::1:2', true], ['1:2:3:4:5:6:7:8', true], ['1:2:3:4:5:6:7:8:9', false],
    ['1::2::3', false], ['::ffff:1.2.3.4', true], ['g::1', false], ['registry', false], ['1:2:3:4:5:6:7::', true],
  ])('parseIp(%j) → %s', (s, ok) => {
    expect(parseIp(s) !== undefined).toBe(ok);
  });
});
