/**
 * Transport errors of proxied requests → one FerryError line naming the proxy (never its
 * credentials) and the target (src/http/network-errors.ts). The errors are shaped as undici 7
 * throws them; the real ones are exercised against tinyproxy in test/integration/proxy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { mapNetworkError } from '../../../src/http/network-errors.js';

const PROXY = new URL('http://user:s3cret@proxy.corp:3128');
const HTTPS = new URL('https://registry.example/v2/a/manifests/v1');
const HTTP = new URL('http://registry.example:5000/v2/');

const undiciError = (name: string, code: string, message: string, cause?: unknown): Error =>
  Object.assign(new Error(message), { name, code, ...(cause ? { cause } : {}) });
const sysError = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

describe('mapNetworkError with a proxy', () => {
  it.each<[string, unknown, URL, string, string, RegExp]>([
    ['CONNECT 407', undiciError('AbortError', 'UND_ERR_ABORTED', 'Proxy response (407) !== 200 when HTTP Tunneling'), HTTPS,
      'E_NETWORK', 'proxy http://***@proxy.corp:3128 refused the connection to registry.example:443: 407 Proxy Authentication Required', /HTTPS_PROXY/],
    ['CONNECT 403', undiciError('AbortError', 'UND_ERR_ABORTED', 'Proxy response (403) !== 200 when HTTP Tunneling'), HTTPS,
      'E_NETWORK', 'proxy http://***@proxy.corp:3128 refused the connection to registry.example:443: 403 Forbidden', /NO_PROXY/],
    ['CONNECT 502', undiciError('AbortError', 'UND_ERR_ABORTED', 'Proxy response (502) !== 200 when HTTP Tunneling'), HTTPS,
      'E_NETWORK', 'proxy http://***@proxy.corp:3128 could not connect to registry.example:443: 502 Bad Gateway', /HTTPS_PROXY/],
    ['forwarded 407', undiciError('InvalidArgumentError', 'UND_ERR_INVALID_ARG', 'Proxy Authentication Required (407)'), HTTP,
      'E_NETWORK', 'proxy http://***@proxy.corp:3128 refused the connection to registry.example:5000: 407 Proxy Authentication Required', /HTTP_PROXY/],
    ['proxy down', sysError('ECONNREFUSED'), HTTPS,
      'E_NETWORK', 'cannot connect to proxy http://***@proxy.corp:3128 (HTTPS_PROXY, for registry.example:443): connection refused', /NO_PROXY/],
    ['proxy name unknown', sysError('ENOTFOUND'), HTTP,
      'E_NETWORK', 'cannot resolve proxy host proxy.corp (HTTP_PROXY, for registry.example:5000)', /HTTP_PROXY/],
    ['https proxy with a bad certificate', undiciError('SecureProxyConnectionError', 'UND_ERR_PRX_TLS', 'Secure Proxy Connection failed', sysError('ERR_TLS_CERT_ALTNAME_INVALID')), HTTPS,
      'E_TLS', 'TLS verification failed for proxy http://***@proxy.corp:3128 (HTTPS_PROXY): ERR_TLS_CERT_ALTNAME_INVALID', /NODE_EXTRA_CA_CERTS/],
    ['registry TLS inside the tunnel', sysError('DEPTH_ZERO_SELF_SIGNED_CERT'), HTTPS,
      'E_TLS', 'TLS verification failed for https://registry.example via proxy http://***@proxy.corp:3128: certificate signed by unknown authority (self-signed certificate) (DEPTH_ZERO_SELF_SIGNED_CERT)', /tls-verify/],
  ])('%s', (_n, err, url, code, message, hint) => {
    const e = mapNetworkError(err, url, PROXY) as { code: string; message: string; hint?: string };
    expect(e.code).toBe(code);
    expect(e.message).toBe(message);
    expect(e.hint).toMatch(hint);
    expect(JSON.stringify({ m: e.message, h: e.hint })).not.toContain('s3cret');
  });

  it('a real abort (the user\'s signal) stays an abort', () => {
    const abort = Object.assign(new Error('This operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
    expect(mapNetworkError(abort, HTTPS, PROXY)).toBe(abort);
  });

  it('without a proxy, nothing changes', () => {
    const e = mapNetworkError(sysError('ECONNREFUSED'), HTTPS) as { message: string };
    expect(e.message).toBe('connection refused by https://registry.example');
  });
});
