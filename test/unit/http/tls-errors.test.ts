/**
 * The E_TLS wording table (http/network-errors.ts describeTlsFailure via mapNetworkError): each
 * certificate failure node/OpenSSL reports → the reason in words and the hint that fixes it.
 */
import { describe, expect, it } from 'vitest';
import { mapNetworkError } from '../../../src/http/network-errors.js';

const URL5000 = new URL('https://reg.example:5000/v2/');
const URL443 = new URL('https://reg.example/v2/');

function tlsError(code: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`tls failure ${code}`), { code, ...extra });
}
/** undici wraps connect failures; the code is found through `cause`. */
function wrapped(inner: Error): Error {
  return Object.assign(new Error('connect failed'), { code: 'UND_ERR_CONNECT', cause: inner });
}

describe('E_TLS wording', () => {
  it.each([
    ['self-signed', tlsError('DEPTH_ZERO_SELF_SIGNED_CERT'), {}, URL5000,
      'TLS verification failed for https://reg.example:5000: certificate signed by unknown authority (self-signed certificate) (DEPTH_ZERO_SELF_SIGNED_CERT)',
      ['~/.config/containers/certs.d/reg.example:5000/ca.crt', '--ca-cert FILE', '--tls-verify=false']],
    ['unable to verify (port 443: no port in the directory name)', wrapped(tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE')), {}, URL443,
      'TLS verification failed for https://reg.example: certificate signed by unknown authority (unable to verify the first certificate) (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
      ['~/.config/containers/certs.d/reg.example/ca.crt']],
    ['self-signed in chain', tlsError('SELF_SIGNED_CERT_IN_CHAIN'), {}, URL5000,
      'certificate signed by unknown authority (self-signed certificate in the chain)', ['--ca-cert']],
    ['unknown issuer', tlsError('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'), {}, URL5000, 'certificate signed by unknown authority', ['ca.crt']],
    ['expired', tlsError('CERT_HAS_EXPIRED', { cert: { valid_to: 'Jan  2 00:00:00 2020 GMT' } }), {}, URL5000,
      'certificate has expired (valid until Jan  2 00:00:00 2020 GMT) (CERT_HAS_EXPIRED)', ['renew', 'clock', '--tls-verify=false']],
    ['not yet valid', tlsError('CERT_NOT_YET_VALID'), {}, URL5000, 'certificate is not yet valid (CERT_NOT_YET_VALID)', ['clock']],
    ['wrong name, from the certificate', tlsError('ERR_TLS_CERT_ALTNAME_INVALID', { cert: { subjectaltname: 'DNS:other.example, IP Address:10.0.0.1' } }), {}, URL5000,
      'certificate is for a different name (it names DNS:other.example, IP Address:10.0.0.1), not reg.example', ['--resolve', '--tls-verify=false']],
    ['wrong name, from the reason', tlsError('ERR_TLS_CERT_ALTNAME_INVALID', { reason: "Host: reg.example. is not in the cert's altnames: DNS:a.example" }), {}, URL5000,
      'it names DNS:a.example', []],
    ['TLS 1.3 certificate required alert', tlsError('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), {}, URL5000,
      'TLS handshake with https://reg.example:5000 failed: the registry requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED)', ['--client-cert FILE --client-key FILE', '~/.config/containers/certs.d/reg.example:5000/', 'client.cert + client.key']],
    ['bad certificate alert, none presented', tlsError('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), {}, URL5000,
      'the registry requires a client certificate', ['--client-cert']],
    ['bad certificate alert, one presented', tlsError('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), { clientCert: '/certs/me.cert' }, URL5000,
      'the registry rejected the client certificate /certs/me.cert (bad certificate)', ['issued by a CA the registry trusts']],
    ['unknown CA alert, one presented', tlsError('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), { clientCert: '/certs/me.cert' }, URL5000,
      'rejected the client certificate /certs/me.cert (unknown ca)', []],
    ['bad certificate alert, each of several refused', tlsError('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'), { clientCert: ['/certs/a.cert', '/certs/b.cert'] }, URL5000,
      'the registry rejected each client certificate offered (/certs/a.cert, /certs/b.cert) (bad certificate)', ['issued by a CA the registry trusts']],
  ] as const)('%s', (_n, err, ctx, url, message, hints) => {
    const e = mapNetworkError(err, url, undefined, ctx) as { code: string; message: string; hint?: string; exitCode: number };
    expect(e.code).toBe('E_TLS');
    expect(e.exitCode).toBe(5);
    expect(e.message).toContain(message);
    for (const h of hints) expect(e.hint).toContain(h);
  });

  it('a plain-http answer to https stays its own wording', () => {
    const e = mapNetworkError(tlsError('ERR_SSL_WRONG_VERSION_NUMBER'), URL5000) as { code: string; message: string; hint?: string };
    expect(e).toMatchObject({ code: 'E_TLS', message: 'reg.example:5000 answered HTTPS with plain HTTP' });
  });

  it('a connection reset is not a TLS error', () => {
    const e = mapNetworkError(tlsError('ECONNRESET'), URL5000) as { code: string };
    expect(e.code).toBe('E_NETWORK');
  });
});
