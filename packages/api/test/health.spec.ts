import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness';

describe('health and readiness', () => {
  let h: Harness;
  let postgresUp = true;
  beforeAll(async () => {
    h = await createHarness({
      deps: {
        readinessChecks: {
          postgres: async () => {
            if (!postgresUp) throw new Error('connection refused');
          },
        },
      },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('/healthz answers ok', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz pings Redis and runs the extra checks', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { redis: 'ok', postgres: 'ok' } });
  });

  it('/readyz is 503 naming the failing check', async () => {
    postgresUp = false;
    try {
      const res = await h.app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'unavailable', checks: { redis: 'ok', postgres: 'connection refused' } });
    } finally {
      postgresUp = true;
    }
  });

  it('/readyz is 503 once shutdown begins, while /healthz still answers', async () => {
    h.app.beginShutdown();
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().status).toBe('shutting-down');
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('rate limiting', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({
      deps: {
        rateLimit: { ingest: { max: 3, timeWindowMs: 60_000 }, admin: { max: 2, timeWindowMs: 60_000 } },
      },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('answers 429 problems past the configured limit', async () => {
    const send = () =>
      h.app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'test.thing', data: { name: 'x' } } });
    for (let i = 0; i < 3; i++) {
      const res = await send();
      expect(res.statusCode).toBe(202);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
      expect(res.headers['x-ratelimit-remaining']).toBe(String(2 - i));
    }
    const limited = await send();
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.headers['retry-after']).toBeTruthy();
    expect(limited.json().code).toBe('RATE_LIMITED');
    expect(await h.redis.xlen(h.keys.stream('things'))).toBe(3);
  });

  it('limits admin routes too', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await h.app.inject({ method: 'GET', url: '/admin/audit' })).statusCode);
    expect(statuses.at(-1)).toBe(429);
  });
});
