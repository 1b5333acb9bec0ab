import {
  ConcurrencyError,
  createPostgres,
  createRedis,
  DomainError,
  isRedisUnavailable,
  NotFoundError,
  OrderService,
  type Sql,
  ValidationError,
} from '@streamfleet/core';
import { createTestDatabase, freePort, type TestDatabase, testDatabaseUrl, waitFor } from '@streamfleet/core/testing';
import type { InjectOptions } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ApiRoutePlugin } from '../src/deps';
import { toProblem } from '../src/http/error-handler';
import { inventoryPlugin } from '../src/routes/inventory';
import { ordersPlugin as realOrdersPlugin } from '../src/routes/orders';
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
    expect(res.json().detail).toMatch(request.method === 'GET' ? /^Redis .*; retry later$/ : /nothing was written/);
    expect(res.headers['retry-after']).toBe('1');
  });
});

describe('Postgres unavailable', () => {
  let h: Harness;
  let down: Sql;
  beforeAll(async () => {
    // Nothing listens there: every connection is refused, as while Postgres is down.
    down = createPostgres(`postgres://postgres@127.0.0.1:${await freePort()}/streamfleet`, { max: 2 });
    h = await createHarness({ deps: { plugins: [realOrdersPlugin(new OrderService(down)), inventoryPlugin(down)] } });
  });
  afterAll(async () => {
    await h.close();
    await down.end();
  });

  const order = { customerId: 'c-1', items: [{ sku: 'SKU-1', quantity: 1, unitPrice: 1 }] };

  it.each([
    ['reading an order', { method: 'GET', url: '/v1/orders/o-1' }],
    ['listing orders', { method: 'GET', url: '/v1/orders?customerId=c-1' }],
    ['reading stock', { method: 'GET', url: '/v1/inventory/SKU-1' }],
  ] as const)('%s answers 503 POSTGRES_UNAVAILABLE, not REDIS_UNAVAILABLE', async (_name, request) => {
    const res = await h.app.inject(request as InjectOptions);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('1');
    const problem = res.json();
    expect(problem).toMatchObject({ status: 503, code: 'POSTGRES_UNAVAILABLE' });
    expect(problem.detail).toMatch(/^Postgres is not reachable/);
    expect(problem.detail).not.toMatch(/Redis|written/);
  });

  it.each([
    ['placing an order', { method: 'POST', url: '/v1/orders', payload: order }],
    ['setting stock', { method: 'PUT', url: '/v1/inventory/SKU-1', payload: { available: 5 } }],
  ] as const)(
    '%s answers 503 POSTGRES_UNAVAILABLE without promising that nothing was written',
    async (_name, request) => {
      const res = await h.app.inject(request as InjectOptions);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      const problem = res.json();
      expect(problem).toMatchObject({ status: 503, code: 'POSTGRES_UNAVAILABLE' });
      expect(problem.detail).toMatch(/may or may not have been/);
      expect(problem.detail).not.toMatch(/Redis|nothing was written/);
    },
  );

  it('/readyz still names Redis ok while Postgres is not', async () => {
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.json().checks.redis).toBe('ok');
  });
});

describe('a Postgres connection lost mid-query', () => {
  let db: TestDatabase;
  let sql: Sql;
  /** Holds the advisory lock the query under test waits for, so it stays running until terminated. */
  let holder: Sql;
  let admin: Sql;
  beforeAll(async () => {
    db = await createTestDatabase('sf_api_pgcut');
    sql = createPostgres(db.url, { max: 1, applicationName: 'sf-api-pgcut' });
    holder = createPostgres(db.url, { max: 1 });
    admin = createPostgres(testDatabaseUrl(), { max: 1 });
  });
  afterAll(async () => {
    await sql?.end();
    await holder?.end();
    await admin?.end();
    await db?.drop();
  });

  it('is POSTGRES_UNAVAILABLE (a commit may have been under way), not a Redis problem', async () => {
    await holder`select pg_advisory_lock(4242)`;
    const running = sql`select pg_advisory_lock(4242)`.catch((e: unknown) => e);
    // Terminated once it waits (pg_terminate_backend: a failover, an idle-session killer, a restart).
    await waitFor(
      async () => {
        const [row] = await admin<{ n: number }[]>`
          select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
          where datname = ${db.name} and application_name = 'sf-api-pgcut' and wait_event_type = 'Lock'`;
        return (row?.n ?? 0) > 0;
      },
      { message: 'the query to run, to terminate it' },
    );
    const err = await running;
    expect(isRedisUnavailable(err)).toBe(false);
    const problem = toProblem(err);
    expect(problem).toMatchObject({ status: 503, code: 'POSTGRES_UNAVAILABLE', headers: { 'retry-after': '1' } });
    expect(problem.message).toMatch(/may or may not have been/);
  });
});
