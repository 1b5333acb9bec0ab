import { describe, expect, it } from 'vitest';
import { RetryPolicy } from './retry-policy';

describe('RetryPolicy', () => {
  it('doubles from the base delay and stops at the cap (defaults: 1000 ms x 2^(n-1), cap 10000)', () => {
    const policy = new RetryPolicy({ jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => policy.delayAfter(n))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });

  it('counts the first delivery as an attempt', () => {
    const policy = new RetryPolicy({ maxAttempts: 3 });
    expect([1, 2, 3].map((n) => policy.canRetryAfter(n))).toEqual([true, true, false]);
  });

  it('jitter only shortens delays, by at most its fraction', () => {
    const low = new RetryPolicy({ jitter: 0.2 }, () => 0.999_999);
    const high = new RetryPolicy({ jitter: 0.2 }, () => 0);
    expect(low.delayAfter(1)).toBe(800);
    expect(high.delayAfter(1)).toBe(1000);
    expect(low.delayAfter(10)).toBe(8000);
  });

  it('merges group overrides over the defaults', () => {
    const policy = RetryPolicy.forGroup(
      { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 10_000, jitter: 0 },
      { payment: { maxAttempts: 6 } },
      'payment',
    );
    expect(policy.maxAttempts).toBe(6);
    expect(policy.baseDelayMs).toBe(1000);
  });

  it('rejects nonsense', () => {
    expect(() => new RetryPolicy({ maxAttempts: 0 })).toThrow(RangeError);
    expect(() => new RetryPolicy({ jitter: 2 })).toThrow(RangeError);
  });
});
