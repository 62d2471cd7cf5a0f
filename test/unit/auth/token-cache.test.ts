import { describe, it, expect } from 'vitest';
import { TokenCache, tokenCacheKey, tokenExpiry } from '../../../src/auth/token-cache.js';

const T0 = Date.parse('2025-06-01T12:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const P = { realm: 'https://auth.example/token', service: 'reg', scopes: ['repository:a:pull'] };

describe('tokenExpiry', () => {
  const rows: { name: string; expiresInSec?: number; issuedAt?: string; want: number }[] = [
    { name: 'no expires_in → 60 s from receipt', want: T0 + 60_000 },
    { name: 'expires_in 300', expiresInSec: 300, want: T0 + 300_000 },
    { name: 'expires_in below floor → 60', expiresInSec: 10, want: T0 + 60_000 },
    { name: 'expires_in 0 → 60', expiresInSec: 0, want: T0 + 60_000 },
    { name: 'negative expires_in → 60', expiresInSec: -5, want: T0 + 60_000 },
    { name: 'NaN expires_in → 60', expiresInSec: Number.NaN, want: T0 + 60_000 },
    { name: 'sane issued_at in the past counts', expiresInSec: 300, issuedAt: iso(T0 - 100_000), want: T0 + 200_000 },
    { name: 'issued_at in the future ignored', expiresInSec: 300, issuedAt: iso(T0 + 3_600_000), want: T0 + 300_000 },
    { name: 'issued_at already expired ignored (clock skew)', expiresInSec: 300, issuedAt: iso(T0 - 3_600_000), want: T0 + 300_000 },
    { name: 'unparsable issued_at ignored', expiresInSec: 120, issuedAt: 'yesterday', want: T0 + 120_000 },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const g: { expiresInSec?: number; issuedAt?: string } = {};
      if (r.expiresInSec !== undefined) g.expiresInSec = r.expiresInSec;
      if (r.issuedAt !== undefined) g.issuedAt = r.issuedAt;
      expect(tokenExpiry(g, T0)).toBe(r.want);
    });
  }
});

describe('tokenCacheKey', () => {
  const rows = [
    { name: 'scope order irrelevant', a: { ...P, scopes: ['b', 'a'] }, b: { ...P, scopes: ['a', 'b'] }, same: true },
    { name: 'duplicates irrelevant', a: { ...P, scopes: ['a', 'a', 'b'] }, b: { ...P, scopes: ['b', 'a'] }, same: true },
    { name: 'missing service = empty service', a: { realm: 'r', scopes: [] }, b: { realm: 'r', service: '', scopes: [] }, same: true },
    { name: 'different service', a: { ...P, service: 'x' }, b: { ...P, service: 'y' }, same: false },
    { name: 'different realm', a: { ...P, realm: 'https://a/t' }, b: { ...P, realm: 'https://b/t' }, same: false },
    { name: 'different scopes', a: { ...P, scopes: ['a'] }, b: { ...P, scopes: ['a', 'b'] }, same: false },
    { name: 'no ambiguity from joining', a: { realm: 'r', service: 'a,b', scopes: [] }, b: { realm: 'r', service: 'a', scopes: ['b'] }, same: false },
  ];
  for (const r of rows) it(r.name, () => expect(tokenCacheKey(r.a) === tokenCacheKey(r.b)).toBe(r.same));
});

describe('TokenCache', () => {
  const rows: { name: string; grant: { expiresInSec?: number; issuedAt?: string }; at: number; hit: boolean }[] = [
    { name: '60 s floor: valid at +54 s', grant: { expiresInSec: 1 }, at: 54_000, hit: true },
    { name: '60 s floor: renewed 5 s early (+55 s)', grant: { expiresInSec: 1 }, at: 55_000, hit: false },
    { name: 'default 60 s when absent: gone at +60 s', grant: {}, at: 60_000, hit: false },
    { name: 'expires_in 300: valid at +294 s', grant: { expiresInSec: 300 }, at: 294_000, hit: true },
    { name: 'expires_in 300: renewed at +295 s', grant: { expiresInSec: 300 }, at: 295_000, hit: false },
    { name: 'issued_at 100 s ago with 300 s: renewed at +195 s', grant: { expiresInSec: 300, issuedAt: iso(T0 - 100_000) }, at: 195_000, hit: false },
    { name: 'issued_at 100 s ago with 300 s: valid at +194 s', grant: { expiresInSec: 300, issuedAt: iso(T0 - 100_000) }, at: 194_000, hit: true },
  ];
  for (const r of rows) {
    it(r.name, () => {
      let now = T0;
      const c = new TokenCache({ now: () => now });
      c.set(P, { token: 'tok', ...r.grant });
      now = T0 + r.at;
      expect(c.get({ ...P, scopes: [...P.scopes] })?.token).toBe(r.hit ? 'tok' : undefined);
    });
  }

  it('delete and clear', () => {
    const c = new TokenCache({ now: () => T0 });
    c.set(P, { token: 't', refreshToken: 'r' });
    expect(c.get(P)).toMatchObject({ token: 't', refreshToken: 'r' });
    c.delete(P);
    expect(c.get(P)).toBeUndefined();
    c.set(P, { token: 't' });
    c.clear();
    expect(c.get(P)).toBeUndefined();
  });

  it('getOrFetch is single-flight and caches; failures are not cached', async () => {
    let now = T0;
    const c = new TokenCache({ now: () => now });
    let calls = 0;
    const fetch = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return { token: `t${calls}`, expiresInSec: 120 };
    };
    const [a, b] = await Promise.all([c.getOrFetch(P, fetch), c.getOrFetch({ ...P, scopes: ['repository:a:pull', 'repository:a:pull'] }, fetch)]);
    expect(a.token).toBe('t1');
    expect(b.token).toBe('t1');
    expect((await c.getOrFetch(P, fetch)).token).toBe('t1');
    now = T0 + 116_000;
    expect((await c.getOrFetch(P, fetch)).token).toBe('t2');
    expect(calls).toBe(2);
    const P2 = { ...P, scopes: ['x'] };
    await expect(c.getOrFetch(P2, async () => Promise.reject(new Error('nope')))).rejects.toThrow('nope');
    expect((await c.getOrFetch(P2, fetch)).token).toBe('t3');
  });
});
