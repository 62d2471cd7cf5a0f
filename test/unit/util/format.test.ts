import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../../src/util/format.js';

describe('formatBytes', () => {
  it('a rate under 1 KiB is whole bytes, not a float with a dozen digits', () => {
    expect(formatBytes(483.01628053712)).toBe('483 B');
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
  });
});
