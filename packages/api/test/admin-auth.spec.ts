import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createHarness, type Harness } from './harness';

const ADMIN_ROUTES = [
  ['GET', '/admin/dlq'],
  ['GET', '/admin/dlq/1-0'],
  ['POST', '/admin/dlq/1-0/replay'],
  ['DELETE', '/admin/dlq/1-0'],
  ['POST', '/admin/dlq/replay'],
  ['GET', '/admin/groups'],
  ['POST', '/admin/groups/payment/pause'],
  ['POST', '/admin/groups/payment/resume'],
  ['GET', '/admin/retries'],
  ['GET', '/admin/retries/payment'],
  ['POST', '/admin/retries/payment/run-now'],
  ['POST', '/admin/retries/payment/payment.evt-1/run-now'],
  ['GET', '/admin/audit'],
] as const;

describe('admin authentication', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  const wrongSameLength = ADMIN_TOKEN.slice(0, -1) + (ADMIN_TOKEN.endsWith('x') ? 'y' : 'x');
  const refused: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong token of the same length', { authorization: `Bearer ${wrongSameLength}` }],
    ['a token of another length', { authorization: `Bearer ${ADMIN_TOKEN}extra` }],
    ['a prefix of the token', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, 4)}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }],
    ['the token without a scheme', { authorization: ADMIN_TOKEN }],
  ];

  it.each(refused)('refuses %s with 401 on every admin route', async (_name, headers) => {
    for (const [method, url] of ADMIN_ROUTES) {
      const res = await h.app.inject({ method, url, headers, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.json().code).toBe('UNAUTHORIZED');
    }
  });

  it('lets the right token in', async () => {
    for (const url of ['/admin/dlq', '/admin/groups', '/admin/retries', '/admin/audit']) {
      const res = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      expect(res.statusCode, url).toBe(200);
    }
    const lower = await h.app.inject({
      method: 'GET',
      url: '/admin/dlq',
      headers: { authorization: `bearer ${ADMIN_TOKEN}` },
    });
    expect(lower.statusCode).toBe(200);
  });

  it('checks the token before looking at the request', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/admin/dlq?limit=-5' });
    expect(res.statusCode).toBe(401);
  });

  it('leaves public routes open', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});

describe('admin without ADMIN_TOKEN configured', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ adminToken: null });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each([
    ['no header', {}],
    ['any bearer', { authorization: `Bearer ${ADMIN_TOKEN}` }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('refuses every admin request (%s) with a clear problem', async (_name, headers) => {
    for (const [method, url] of ADMIN_ROUTES) {
      const res = await h.app.inject({ method, url, headers, ...(method === 'POST' ? { payload: {} } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      const body = res.json();
      expect(body.code).toBe('ADMIN_DISABLED');
      expect(body.detail).toContain('ADMIN_TOKEN');
    }
  });

  it('still serves ingestion', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'test.thing', data: { name: 'x' } },
    });
    expect(res.statusCode).toBe(202);
  });
});
