import { describe, expect, it } from 'vitest';
import { clientKey, FixedWindowLimiter } from '../src/http/rate-limit';

describe('FixedWindowLimiter', () => {
  it('counts per client within a window and starts over when it ends', () => {
    const limiter = new FixedWindowLimiter(2, 1000);
    expect(limiter.hit('a', 0)).toEqual({ count: 1, msLeft: 1000 });
    expect(limiter.hit('a', 400)).toEqual({ count: 2, msLeft: 600 });
    expect(limiter.hit('b', 400)).toEqual({ count: 1, msLeft: 1000 });
    expect(limiter.hit('a', 999).count).toBe(3);
    expect(limiter.hit('a', 1000)).toEqual({ count: 1, msLeft: 1000 });
  });

  it('forgets finished windows', () => {
    const limiter = new FixedWindowLimiter(1, 100);
    for (let i = 0; i < 50; i++) limiter.hit(`client-${i}`, 0);
    limiter.hit('late', 200);
    expect((limiter as unknown as { windows: Map<string, unknown> }).windows.size).toBe(1);
  });
});

describe('clientKey', () => {
  it('keys IPv4 by address and IPv6 by its /64, as @fastify/rate-limit did', () => {
    expect(clientKey('127.0.0.1')).toBe('127.0.0.1');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:db8:1:2:bbbb::2'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
  });
});
