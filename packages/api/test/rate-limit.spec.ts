import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientKey, FixedWindowLimiter } from '../src/http/rate-limit';
import { adminHeaders, createHarness, type Harness, type LogLine, recordingLogger } from './harness';

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
    expect((await h.app.inject({ method: 'POST', url: '/v1/events', payload: event })).statusCode).toBe(202);
  });
});

const event = { type: 'test.thing', data: { name: 'x' } };
const PROXY = '10.0.0.1';

/** One POST /v1/events as the proxy (or `peer`) forwards it for `forwardedFor`. */
function postEvent(h: Harness, forwardedFor?: string, peer = PROXY) {
  return h.app.inject({
    method: 'POST',
    url: '/v1/events',
    remoteAddress: peer,
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    payload: event,
  });
}

async function statuses(h: Harness, count: number, forwardedFor?: string, peer?: string): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < count; i++) codes.push((await postEvent(h, forwardedFor, peer)).statusCode);
  return codes;
}

describe('RATE_LIMIT_INGEST_PER_MIN and RATE_LIMIT_ADMIN_PER_MIN', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ env: { RATE_LIMIT_INGEST_PER_MIN: '3', RATE_LIMIT_ADMIN_PER_MIN: '2' } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('enforce the configured numbers, per minute', async () => {
    const first = await postEvent(h);
    expect(first.statusCode).toBe(202);
    expect(first.headers['x-ratelimit-limit']).toBe('3');
    expect(Number(first.headers['x-ratelimit-reset'])).toBeLessThanOrEqual(60);
    expect(await statuses(h, 3)).toEqual([202, 202, 429]);

    const admin = () => h.app.inject({ method: 'GET', url: '/admin/groups', headers: adminHeaders });
    const answers = [await admin(), await admin(), await admin()];
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 429]);
    expect(answers[2]?.json().detail).toMatch(/^rate limit of 2 requests per 60 s exceeded/);
  });
});

describe('a rate limit of 0', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ env: { RATE_LIMIT_INGEST_PER_MIN: '0', RATE_LIMIT_ADMIN_PER_MIN: '0' } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('turns that limit off: no 429 and no x-ratelimit headers, whatever the count', async () => {
    // The routes carry no limiter at all, so a handful of requests proves it as well as millions.
    for (let i = 0; i < 20; i++) {
      const res = await postEvent(h);
      expect(res.statusCode).toBe(202);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
      const admin = await h.app.inject({ method: 'GET', url: '/admin/groups', headers: adminHeaders });
      expect(admin.statusCode).toBe(200);
      expect(admin.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });

  it('turns off only its own kind', async () => {
    const ingestOnly = await createHarness({ env: { RATE_LIMIT_INGEST_PER_MIN: '0', RATE_LIMIT_ADMIN_PER_MIN: '1' } });
    try {
      expect(await statuses(ingestOnly, 5)).toEqual([202, 202, 202, 202, 202]);
      const admin = () => ingestOnly.app.inject({ method: 'GET', url: '/admin/groups', headers: adminHeaders });
      expect([(await admin()).statusCode, (await admin()).statusCode]).toEqual([200, 429]);
    } finally {
      await ingestOnly.close();
    }
  });
});

describe('clients behind a proxy', () => {
  const lines: LogLine[] = [];
  const harnesses: Harness[] = [];
  const app = async (env: Record<string, string>) => {
    const h = await createHarness({
      env: { RATE_LIMIT_INGEST_PER_MIN: '3', ...env },
      deps: { logger: recordingLogger(lines, 'info') },
    });
    harnesses.push(h);
    return h;
  };
  afterAll(async () => {
    for (const h of harnesses) await h.close();
  });
  const refusedIps = () => lines.filter((l) => l.msg === 'request refused' && l.status === 429).map((l) => l.ip);

  it("share the proxy's budget when TRUST_PROXY is unset: X-Forwarded-For is not read", async () => {
    const h = await app({});
    lines.length = 0;
    expect(await statuses(h, 2, '198.51.100.1')).toEqual([202, 202]);
    expect(await statuses(h, 2, '198.51.100.2')).toEqual([202, 429]);
    expect(refusedIps()).toEqual([PROXY]);
  });

  it('each get their own budget when TRUST_PROXY lists the proxy, and logs name the client', async () => {
    const h = await app({ TRUST_PROXY: `192.0.2.7, ${PROXY}/32` });
    lines.length = 0;
    expect(await statuses(h, 3, '198.51.100.1')).toEqual([202, 202, 202]);
    expect(await statuses(h, 3, '198.51.100.2')).toEqual([202, 202, 202]);
    expect(await statuses(h, 1, '198.51.100.1')).toEqual([429]);
    expect(refusedIps()).toEqual(['198.51.100.1']);
    // A client's own X-Forwarded-For, in front of what the proxy appends, is not believed: the
    // client is the first address no trusted proxy vouches for.
    expect(await statuses(h, 1, '203.0.113.50, 198.51.100.1')).toEqual([429]);
  });

  it('are not what an untrusted peer claims to forward for', async () => {
    const h = await app({ TRUST_PROXY: PROXY });
    const direct = '203.0.113.9';
    const codes = [];
    for (let i = 1; i <= 4; i++) codes.push((await postEvent(h, `198.51.100.${i}`, direct)).statusCode);
    expect(codes).toEqual([202, 202, 202, 429]);
  });

  it('are told apart by a hop count: the address the last proxy appended, not what the client sent', async () => {
    const h = await app({ TRUST_PROXY: '1' });
    lines.length = 0;
    const spoofing = [1, 2, 3, 4].map((i) => `192.0.2.${i}, 198.51.100.1`);
    const codes = [];
    for (const forwardedFor of spoofing) codes.push((await postEvent(h, forwardedFor)).statusCode);
    expect(codes).toEqual([202, 202, 202, 429]);
    expect(await statuses(h, 1, '198.51.100.2')).toEqual([202]);
    expect(refusedIps()).toEqual(['198.51.100.1']);
  });

  it('are told apart by the first X-Forwarded-For address with TRUST_PROXY=true', async () => {
    const h = await app({ TRUST_PROXY: 'true' });
    expect(await statuses(h, 3, `198.51.100.1, ${PROXY}`)).toEqual([202, 202, 202]);
    expect(await statuses(h, 3, '198.51.100.2')).toEqual([202, 202, 202]);
    expect(await statuses(h, 1, '198.51.100.1')).toEqual([429]);
  });
});
