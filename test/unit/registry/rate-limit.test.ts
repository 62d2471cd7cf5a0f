/**
 * The rate-limit header parser (src/registry/rate-limit.ts): Docker Hub's headers, reset hints,
 * and everything a registry might send instead (never a throw), plus the wording ferry prints
 * and the once-per-registry low-budget warning (rate-limit-log.ts).
 */
import { describe, expect, it } from 'vitest';
import { RateLimitLog } from '../../../src/registry/rate-limit-log.js';
import {
  describeRateLimit, describeReset, formatSpan, isLow, lowRateLimitWarning, parseQuota, parseRateLimit, parseResetAt, type RateLimit,
} from '../../../src/registry/rate-limit.js';

const NOW = Date.UTC(2026, 11, 1, 22, 0, 0);
const getter = (h: Record<string, string>) => (n: string) => h[n];

describe('parseQuota', () => {
  const rows: Array<[string | undefined, ReturnType<typeof parseQuota>]> = [
    ['100;w=21600', { value: 100, windowSeconds: 21600 }],
    ['20;w=21600', { value: 20, windowSeconds: 21600 }],
    ['100', { value: 100 }],
    [' 100 ; w = 21600 ', { value: 100, windowSeconds: 21600 }],
    ['100;W=60', { value: 100, windowSeconds: 60 }],
    ['100;w="3600"', { value: 100, windowSeconds: 3600 }],
    ['100;burst=5;w=60', { value: 100, windowSeconds: 60 }],
    ['100, 100;w=21600', { value: 100 }], // older IETF draft list: the first item
    ['10;w=1, 50;w=60', { value: 10, windowSeconds: 1 }],
    ['0;w=21600', { value: 0, windowSeconds: 21600 }],
    ['100;w=', { value: 100 }],
    ['100;w=abc', { value: 100 }],
    ['100;w=0', { value: 100 }],
    ['100;w=-5', { value: 100 }],
    ['-1;w=21600', undefined],
    ['1.5', undefined],
    ['abc', undefined],
    ['', undefined],
    ['   ', undefined],
    [';w=21600', undefined],
    ['1e3', undefined],
    ['99999999999999999999', undefined],
    ['0x10', undefined],
    [undefined, undefined],
  ];
  it.each(rows)('%j → %j', (input, want) => {
    expect(parseQuota(input)).toEqual(want);
  });
});

describe('parseRateLimit', () => {
  it("Docker Hub's three headers", () => {
    expect(parseRateLimit(getter({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '20;w=21600', 'docker-ratelimit-source': '203.0.113.7' }), NOW))
      .toEqual({ limit: 100, remaining: 20, windowSeconds: 21600, source: '203.0.113.7', observedAt: NOW });
  });

  const rows: Array<[string, Record<string, string>, Partial<RateLimit> | undefined]> = [
    ['no headers (unlimited account)', {}, undefined],
    ['limit only', { 'ratelimit-limit': '100;w=21600' }, undefined],
    ['remaining only', { 'ratelimit-remaining': '20;w=21600' }, undefined],
    ['garbage limit', { 'ratelimit-limit': 'lots', 'ratelimit-remaining': '20' }, undefined],
    ['garbage remaining', { 'ratelimit-limit': '100', 'ratelimit-remaining': '<html>' }, undefined],
    ['no ;w= anywhere', { 'ratelimit-limit': '100', 'ratelimit-remaining': '20' }, { limit: 100, remaining: 20 }],
    ['window only on remaining', { 'ratelimit-limit': '100', 'ratelimit-remaining': '20;w=3600' }, { limit: 100, remaining: 20, windowSeconds: 3600 }],
    ['account id as source', { 'ratelimit-limit': '200;w=21600', 'ratelimit-remaining': '199;w=21600', 'docker-ratelimit-source': ' 6f1c2d3e-aaaa-bbbb-cccc-0123456789ab ' },
      { limit: 200, remaining: 199, windowSeconds: 21600, source: '6f1c2d3e-aaaa-bbbb-cccc-0123456789ab' }],
    ['IPv6 source', { 'ratelimit-limit': '100', 'ratelimit-remaining': '1', 'docker-ratelimit-source': '2001:db8::1' }, { limit: 100, remaining: 1, source: '2001:db8::1' }],
    ['source with control characters is dropped', { 'ratelimit-limit': '100', 'ratelimit-remaining': '1', 'docker-ratelimit-source': 'a\u001b[31mb' }, { limit: 100, remaining: 1 }],
    ['empty source is dropped', { 'ratelimit-limit': '100', 'ratelimit-remaining': '1', 'docker-ratelimit-source': '' }, { limit: 100, remaining: 1 }],
    ['Retry-After seconds', { 'ratelimit-limit': '100', 'ratelimit-remaining': '0', 'retry-after': '120' }, { limit: 100, remaining: 0, resetAt: NOW + 120_000 }],
  ];
  it.each(rows)('%s', (_name, headers, want) => {
    const got = parseRateLimit(getter(headers), NOW);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toEqual({ observedAt: NOW, ...want });
  });

  it('a header getter that throws is no rate limit, not an exception', () => {
    expect(parseRateLimit(() => { throw new Error('boom'); }, NOW)).toBeUndefined();
    expect(parseResetAt(() => { throw new Error('boom'); }, NOW)).toBeUndefined();
  });
});

describe('parseResetAt', () => {
  const rows: Array<[string, Record<string, string>, number | undefined]> = [
    ['Retry-After seconds', { 'retry-after': '3600' }, NOW + 3_600_000],
    ['Retry-After HTTP date', { 'retry-after': 'Tue, 01 Dec 2026 23:30:00 GMT' }, Date.UTC(2026, 11, 1, 23, 30)],
    ['Retry-After in the past', { 'retry-after': 'Tue, 01 Dec 2026 21:00:00 GMT' }, NOW],
    ['ratelimit-reset (IETF: seconds from now)', { 'ratelimit-reset': '50' }, NOW + 50_000],
    ['ratelimit-reset as epoch seconds (GitLab)', { 'ratelimit-reset': '1796162400' }, 1_796_162_400_000],
    ['x-ratelimit-reset (GitHub: epoch seconds)', { 'x-ratelimit-reset': '1796162400' }, 1_796_162_400_000],
    ['Retry-After wins over the others', { 'retry-after': '10', 'ratelimit-reset': '50', 'x-ratelimit-reset': '1796162400' }, NOW + 10_000],
    ['ratelimit-reset wins over x-ratelimit-reset', { 'ratelimit-reset': '50', 'x-ratelimit-reset': '1796162400' }, NOW + 50_000],
    ['garbage Retry-After falls through to ratelimit-reset', { 'retry-after': 'soon', 'ratelimit-reset': '5' }, NOW + 5000],
    ['garbage everywhere', { 'retry-after': '-1', 'ratelimit-reset': '1.5', 'x-ratelimit-reset': 'tomorrow' }, undefined],
    ['none', {}, undefined],
  ];
  it.each(rows)('%s', (_name, headers, want) => {
    expect(parseResetAt(getter(headers), NOW)).toBe(want);
  });
});

describe('wording', () => {
  const hub: RateLimit = { limit: 100, remaining: 87, windowSeconds: 21600, source: '203.0.113.7', observedAt: NOW, anonymous: true };

  it('describeRateLimit: budget, window as hours, source, anonymous or not', () => {
    expect(describeRateLimit(hub)).toBe('87 of 100 pulls left per 6 h (source 203.0.113.7, anonymous)');
    expect(describeRateLimit({ ...hub, anonymous: false, source: 'acct-1' })).toBe('87 of 100 pulls left per 6 h (source acct-1, authenticated)');
    expect(describeRateLimit({ limit: 5, remaining: 5, observedAt: NOW })).toBe('5 of 5 pulls left');
  });

  it.each([[21600, '6 h'], [3600, '1 h'], [5400, '1 h 30 min'], [60, '1 min'], [90, '1 min 30 s'], [45, '45 s'], [86400, '24 h'], [0, '0 s']])('formatSpan(%d) = %s', (s, want) => {
    expect(formatSpan(s)).toBe(want);
  });

  it('isLow: under 10% of the limit', () => {
    expect(isLow({ ...hub, remaining: 9 })).toBe(true);
    expect(isLow({ ...hub, remaining: 10 })).toBe(false);
    expect(isLow({ ...hub, remaining: 0 })).toBe(true);
    expect(isLow({ ...hub, limit: 0, remaining: 0 })).toBe(false);
  });

  it('the low warning names the registry and, for anonymous pulls, how to log in', () => {
    expect(lowRateLimitWarning('docker.io', { ...hub, remaining: 4 })).toBe('docker.io: only 4 of 100 pulls left per 6 h (source 203.0.113.7, anonymous); log in for a higher limit: ferry login docker.io');
    expect(lowRateLimitWarning('docker.io', { ...hub, remaining: 4, anonymous: false })).not.toContain('ferry login');
  });

  it('describeReset: a reset header, else the rolling window', () => {
    expect(describeReset('docker.io', hub, NOW + 250_000, NOW)).toBe('the limit resets in 4 min 10 s (at 2026-12-01T22:04:10Z)');
    expect(describeReset('docker.io', hub, undefined, NOW)).toBe('Docker Hub counts pulls over a rolling window of 21600 s (6 h), so the budget returns gradually as earlier pulls age out');
    expect(describeReset('docker.io', undefined, undefined, NOW)).toMatch(/^Docker Hub counts pulls over a rolling window \(6 h/);
    expect(describeReset('r.example', undefined, undefined, NOW)).toBe('the registry did not say when the limit resets');
    expect(describeReset('r.example', { ...hub, resetAt: NOW + 7_200_000 }, undefined, NOW)).toBe('the limit resets in 2 h (at 2026-12-02T00:00:00Z)');
  });
});

describe('RateLimitLog', () => {
  const at = (remaining: number, anonymous = true): RateLimit => ({ limit: 100, remaining, windowSeconds: 21600, observedAt: NOW, anonymous });

  it('warns once per registry when under 10% remain, however many low answers follow', () => {
    const warnings: string[] = [];
    const log = new RateLimitLog();
    const warn = (m: string) => warnings.push(m);
    log.record('docker.io', at(50), warn);
    expect(warnings).toEqual([]);
    log.record('docker.io', at(9), warn);
    log.record('docker.io', at(8), warn);
    log.record('docker.io', at(0), warn);
    log.record('ghcr.io', at(3), warn);
    log.record('ghcr.io', at(2), warn);
    expect(warnings).toEqual([lowRateLimitWarning('docker.io', at(9)), lowRateLimitWarning('ghcr.io', at(3))]);
    expect(log.get('docker.io')?.remaining).toBe(0);
  });

  it('keeps the latest rate limit per registry; an answer without headers does not erase it', () => {
    const log = new RateLimitLog();
    log.record('docker.io', at(80));
    log.record('docker.io', undefined);
    log.record('localhost:5000', undefined);
    expect(log.entries()).toEqual([['docker.io', at(80)], ['localhost:5000', undefined]]);
  });

  it('warnLow: false never warns', () => {
    const warnings: string[] = [];
    const log = new RateLimitLog({ warnLow: false });
    log.record('docker.io', at(1), (m) => warnings.push(m));
    expect(warnings).toEqual([]);
    expect(log.get('docker.io')?.remaining).toBe(1);
  });
});
