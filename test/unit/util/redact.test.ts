import { describe, expect, it } from 'vitest';
import { REDACTED, redactHeaders, redactText, redactUrl } from '../../../src/util/redact.js';

const b64 = Buffer.from('alice:s3cret-pass').toString('base64');

describe('redactHeaders', () => {
  it.each([
    ['authorization', `Basic ${b64}`, 'Basic ***'],
    ['Authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig', 'Bearer ***'],
    ['proxy-authorization', 'Basic Zm9vOmJhcg==', 'Basic ***'],
    ['cookie', 'session=abcdef; other=1', '***'],
    ['Cookie', 'sid=xyz', '***'],
    ['x-amz-security-token', 'FQoGZXIvYXdzEJr', '***'],
    ['authorization', 'opaque-token-without-scheme', '***'],
  ])('%s: %j → %j', (name, value, shown) => {
    const out = redactHeaders({ [name]: value });
    expect(out[name]).toBe(shown);
    expect(JSON.stringify(out)).not.toContain(value.split(' ').at(-1)!);
  });

  it('joins and redacts multi-valued Set-Cookie', () => {
    const out = redactHeaders({ 'set-cookie': ['a=1; Path=/', 'b=2'] });
    expect(out['set-cookie']).toBe(REDACTED);
  });

  it('keeps ordinary headers, drops undefined ones, joins arrays', () => {
    const out = redactHeaders({ accept: 'application/json', range: 'bytes=10-', 'x-none': undefined, link: ['<a>', '<b>'] });
    expect(out).toEqual({ accept: 'application/json', range: 'bytes=10-', link: '<a>, <b>' });
  });
});

describe('redactUrl', () => {
  it('removes userinfo (username masked, password dropped)', () => {
    const out = redactUrl('https://bob:hunter22@registry.example.com/v2/');
    expect(out).toBe('https://***@registry.example.com/v2/');
    expect(out).not.toContain('hunter22');
    expect(out).not.toContain('bob');
  });

  it.each([
    ['X-Amz-Signature', 'deadbeefcafe'],
    ['X-Amz-Credential', 'AKIAEXAMPLE/20240101/us-east-1/s3/aws4_request'],
    ['X-Amz-Security-Token', 'FQoGZXIvYXdzEJr'],
    ['_state', 'eyJuYW1lIjoiYWxpY2UvYXBwIn0='],
    ['token', 'tok-123456'],
    ['access_token', 'at-123456'],
    ['sig', 'azure-sig-value'],
    ['X-Goog-Signature', 'goog-sig-value'],
    ['Signature', 'cloudfront-sig'],
    ['Key-Pair-Id', 'APKAEXAMPLE'],
  ])('secret query param %s is masked, others kept', (param, value) => {
    const u = new URL('https://storage.example.com/blobs/sha256/ab');
    u.searchParams.set('digest', 'sha256:abc');
    u.searchParams.set(param, value);
    u.searchParams.set('n', '50');
    const out = redactUrl(u);
    const parsed = new URL(out);
    expect(parsed.searchParams.get(param)).toBe(REDACTED);
    expect(parsed.searchParams.get('digest')).toBe('sha256:abc');
    expect(parsed.searchParams.get('n')).toBe('50');
    expect(out).not.toContain(encodeURIComponent(value));
    expect(out).not.toContain(value);
  });

  it('leaves a URL without secrets unchanged', () => {
    const u = 'https://ghcr.io/v2/owner/app/tags/list?n=100&last=v1';
    expect(redactUrl(u)).toBe(u);
  });

  it('an unparsable URL still loses its userinfo', () => {
    const out = redactUrl('not a url //user:pw@host/path');
    expect(out).not.toContain('user:pw');
    expect(out).toContain(`//${REDACTED}@host/path`);
  });
});

describe('redactText', () => {
  it('replaces every occurrence of the given secrets', () => {
    const s = `login as alice with s3cret-pass failed; header was Basic ${b64}; again s3cret-pass`;
    const out = redactText(s, ['s3cret-pass', b64]);
    expect(out).not.toContain('s3cret-pass');
    expect(out).not.toContain(b64);
    expect(out.split(REDACTED).length - 1).toBeGreaterThanOrEqual(3);
    expect(out).toContain('login as alice');
  });

  it.each([
    ['Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', 'eyJhbGciOiJSUzI1NiJ9', 'Bearer ***'],
    ['got basic Zm9vOmJhcmJhemJheg== back', 'Zm9vOmJhcmJhemJheg', 'basic ***'],
    ['token: Bearer abcdefgh12345678', 'abcdefgh12345678', 'Bearer ***'],
  ])('Bearer/Basic credentials in free text: %j', (text, secret, shown) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toContain(shown);
  });

  it.each([
    ['{"password":"hunter22","username":"bob"}', 'hunter22'],
    ['{"token": "tok-abc-123", "expires_in": 300}', 'tok-abc-123'],
    ['{"access_token":"at-xyz","refresh_token":"rt-xyz"}', 'at-xyz'],
    ['{"access_token":"at-xyz","refresh_token":"rt-xyz"}', 'rt-xyz'],
    ['{"auths":{"r.io":{"auth":"Ym9iOmh1bnRlcjIy"}}}', 'Ym9iOmh1bnRlcjIy'],
    ['{"IdentityToken":"id-tok-1"}', 'id-tok-1'],
  ])('JSON secret fields: %s', (text, secret) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).toContain(REDACTED);
  });

  // A JSON-escaped quote inside the value ends the `[^"]*` match early: the rest of the secret
  // stays in the text.
  it('JSON secret values containing an escaped quote are redacted whole', () => {
    const text = JSON.stringify({ username: 'bob', password: 'ab"cdefgh-rest-of-secret' });
    const out = redactText(text);
    expect(out).not.toContain('cdefgh-rest-of-secret');
    expect(out).toContain('"username":"bob"');
  });

  it('keeps non-secret JSON fields and plain text intact', () => {
    const text = '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}],"username":"bob"}';
    expect(redactText(text)).toBe(text);
  });
});
