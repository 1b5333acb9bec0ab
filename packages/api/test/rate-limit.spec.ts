import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientKey, FixedWindowLimiter } from '../src/http/rate-limit';
import { adminHeaders, createHarness, type Harness } from './harness';

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

describe('the admin rate limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({
      deps: { rateLimit: { admin: { max: 3, timeWindowMs: 60_000 } } },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('is one budget per client across every admin route: token guessing gets max tries in all', async () => {
    const guess = { authorization: 'Bearer not-the-admin-token-at-all' };
    const routes = ['/admin/dlq', '/admin/groups', '/admin/retries'];
    for (const [i, url] of routes.entries()) {
      const res = await h.app.inject({ method: 'GET', url, headers: guess });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
      expect(res.headers['x-ratelimit-remaining']).toBe(String(2 - i));
    }
    // A fourth admin route, never asked before, and then the right token: the budget is spent.
    for (const headers of [guess, adminHeaders]) {
      const limited = await h.app.inject({ method: 'GET', url: '/admin/audit', headers });
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(limited.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED', title: 'Too Many Requests' });
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.headers['x-ratelimit-remaining']).toBe('0');
    }
    // Ingestion counts on its own.
    const event = { type: 'test.thing', data: { name: 'x' } };
    expect((await h.app.inject({ method: 'POST', url: '/v1/events', payload: event })).statusCode).toBe(202);
  });
});
