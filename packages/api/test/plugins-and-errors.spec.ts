import { ConcurrencyError, createRedis, DomainError, NotFoundError, ValidationError } from '@streamfleet/core';
import type { InjectOptions } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ApiRoutePlugin } from '../src/deps';
import { adminHeaders, createHarness, type Harness } from './harness';

/** Stands in for the orders API another package will add: it throws core errors only. */
const fakeOrders: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/orders/:id',
    {
      schema: {
        tags: ['orders'],
        params: z.strictObject({ id: z.string().min(1).max(50) }),
        response: { 200: z.object({ id: z.string() }) },
      },
    },
    async (request) => {
      const { id } = request.params;
      if (id === 'missing') throw new NotFoundError(`no order ${id}`);
      if (id === 'shipped') throw new DomainError('ORDER_ALREADY_SHIPPED', 'a shipped order cannot be cancelled');
      if (id === 'stale') throw new ConcurrencyError('expected version 3, found 4', { expected: 3, actual: 4 });
      if (id === 'invalid') throw new ValidationError('bad order', [{ field: 'items.0.sku', message: 'required' }]);
      if (id === 'boom') throw new Error('secret internal detail');
      return { id };
    },
  );
  // A parameter its schema lets be longer than the router reads (200 characters).
  app.get(
    '/notes/:text',
    { schema: { params: z.strictObject({ text: z.string().max(1000) }), response: { 200: z.object({}) } } },
    async () => ({}),
  );
};

const ordersPlugin: ApiRoutePlugin = {
  name: 'orders',
  plugin: fakeOrders,
  prefix: '/v1',
  tag: { name: 'orders', description: 'Orders (reference domain)' },
};

describe('extra route plugins and core error mapping', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ deps: { plugins: [ordersPlugin] } });
  });
  afterAll(async () => {
    await h.close();
  });

  it('serves a plugin’s routes under its prefix and documents them with its tag', async () => {
    const ok = await h.app.inject({ method: 'GET', url: '/v1/orders/o-1' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ id: 'o-1' });
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    expect(doc.paths['/v1/orders/{id}'].get.tags).toEqual(['orders']);
    expect(doc.tags).toContainEqual({ name: 'orders', description: 'Orders (reference domain)' });
  });

  it.each([
    ['missing', 404, 'NOT_FOUND'],
    ['shipped', 422, 'ORDER_ALREADY_SHIPPED'],
    ['stale', 409, 'CONCURRENCY_CONFLICT'],
    ['invalid', 400, 'VALIDATION_ERROR'],
  ])('maps a thrown core error (%s) to %i %s', async (id, status, code) => {
    const res = await h.app.inject({ method: 'GET', url: `/v1/orders/${id}` });
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status, code, type: `/problems/${code.toLowerCase().replaceAll('_', '-')}` });
  });

  it('carries field details of validation errors and the details of conflicts', async () => {
    const invalid = (await h.app.inject({ method: 'GET', url: '/v1/orders/invalid' })).json();
    expect(invalid.errors).toEqual([{ field: 'items.0.sku', message: 'required' }]);
    const stale = (await h.app.inject({ method: 'GET', url: '/v1/orders/stale' })).json();
    expect(stale.details).toEqual({ expected: 3, actual: 4 });
  });

  it('answers a known path asked with another method 405 with Allow, and an unknown path 404', async () => {
    const wrong = await h.app.inject({ method: 'DELETE', url: '/v1/orders/o-1/' });
    expect(wrong.statusCode).toBe(405);
    expect(wrong.headers.allow).toBe('GET, HEAD');
    expect(wrong.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(wrong.json()).toMatchObject({ status: 405, code: 'METHOD_NOT_ALLOWED' });
    const batch = await h.app.inject({ method: 'GET', url: '/v1/events/batch' });
    expect(batch.statusCode).toBe(405);
    expect(batch.headers.allow).toBe('POST');
    const unknown = await h.app.inject({ method: 'DELETE', url: '/v1/orders/o-1/lines' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers.allow).toBeUndefined();
    expect(unknown.json().code).toBe('ROUTE_NOT_FOUND');
  });

  it('answers a parameter the router does not read in full, though its schema would take it, 414 naming it', async () => {
    const res = await h.app.inject({ method: 'GET', url: `/v1/notes/${'n'.repeat(300)}` });
    expect(res.statusCode).toBe(414);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['x-request-id']).toBeTruthy();
    expect(res.json()).toMatchObject({
      status: 414,
      title: 'URI Too Long',
      code: 'URI_TOO_LONG',
      errors: [{ field: 'params.text', message: 'longer than 200 characters' }],
    });
    expect((await h.app.inject({ method: 'GET', url: `/v1/notes/${'n'.repeat(200)}` })).statusCode).toBe(200);
  });

  it('hides the message of an unexpected error behind a 500 problem', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/orders/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json().code).toBe('INTERNAL_ERROR');
    expect(res.body).not.toContain('secret internal detail');
  });
});

describe('Redis unavailable', () => {
  let h: Harness;
  const down = createRedis('redis://127.0.0.1:1', {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  beforeAll(async () => {
    down.on('error', () => undefined);
    h = await createHarness({ appRedis: down });
  });
  afterAll(async () => {
    down.disconnect();
    await h.close();
  });

  it('/readyz answers 503 naming redis', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().checks.redis).not.toBe('ok');
  });

  it.each([
    ['ingestion', { method: 'POST', url: '/v1/events', payload: { type: 'test.thing', data: { name: 'x' } } }],
    [
      'ingestion with an Idempotency-Key',
      {
        method: 'POST',
        url: '/v1/events',
        headers: { 'idempotency-key': 'while-down' },
        payload: { type: 'test.thing', data: { name: 'x' } },
      },
    ],
    ['the dead-letter list', { method: 'GET', url: '/admin/dlq', headers: adminHeaders }],
  ] as const)('%s answers a 503 problem, not a 500', async (_name, request) => {
    const res = await h.app.inject(request as InjectOptions);
    expect(res.statusCode).toBe(503);
    expect(res.json().code).toBe('REDIS_UNAVAILABLE');
    expect(res.headers['retry-after']).toBe('1');
  });
});
