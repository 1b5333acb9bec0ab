import SwaggerParser from '@apidevtools/swagger-parser';
import {
  applyToReadModel,
  createPostgres,
  createSagaGroup,
  listOrders,
  loadEvents,
  migrate,
  OrderService,
  type Sql,
  ValidationError,
} from '@streamfleet/core';
import { createTestDatabase, handlerContext, type TestDatabase } from '@streamfleet/core/testing';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toProblem } from '../src/http/error-handler';
import { ordersPlugin } from '../src/routes/orders';
import { createHarness, type Harness } from './harness';

let db: TestDatabase;
let sql: Sql;
let h: Harness;

beforeAll(async () => {
  db = await createTestDatabase('sf_api_orders');
  sql = createPostgres(db.url, { max: 5 });
  await migrate(sql);
  h = await createHarness({ deps: { plugins: [ordersPlugin(new OrderService(sql))] } });
});

afterAll(async () => {
  await h?.close();
  await sql?.end();
  await db?.drop();
});

const body = { customerId: 'cust-api', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }] };

async function project(id: string): Promise<void> {
  for (const e of await loadEvents(sql, id)) await applyToReadModel(sql, e);
}

/** Events and outbox rows stored for an order id (both must stay empty when a command is refused). */
async function stored(id: string): Promise<{ events: number; outbox: number }> {
  const events = (await loadEvents(sql, id)).length;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from outbox where event::text like ${`%${JSON.stringify(id)}%`}`;
  return { events, outbox: row?.n ?? 0 };
}

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function expectProblem(res: LightMyRequestResponse, status: number) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = res.json();
  expect(problem).toMatchObject({ status, type: expect.stringMatching(/^\/problems\//) });
  return problem as { code: string; errors: { field: string; message: string }[]; details?: unknown };
}

const fields = (problem: { errors: { field: string }[] }) => problem.errors.map((e) => e.field);

/** Orders placed (order.created events stored) for a customer. */
async function placedFor(customerId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from events where type = 'order.created' and data->>'customerId' = ${customerId}`;
  return row?.n ?? 0;
}

describe('/v1/orders', () => {
  it('places, reads, confirms, cancels and lists an order, and shows its history', async () => {
    const created = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: body });
    expect(created.statusCode).toBe(201);
    const order = created.json();
    expect(order).toMatchObject({ status: 'PENDING', total: 2500, currency: 'EUR', version: 1 });
    expect(created.headers.location).toBe(`/v1/orders/${order.id}`);

    // Before the projection ran: served from the event store.
    const read = await h.app.inject({ method: 'GET', url: `/v1/orders/${order.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json().id).toBe(order.id);

    const confirmed = await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/confirm` });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json()).toMatchObject({ status: 'CONFIRMED', version: 2 });

    const again = await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/confirm` });
    expect(again.statusCode).toBe(422);
    expect(again.json().code).toBe('ORDER_NOT_PENDING');

    const stale = await h.app.inject({
      method: 'POST',
      url: `/v1/orders/${order.id}/cancel`,
      payload: { reason: 'late', expectedVersion: 1 },
    });
    expect(stale.statusCode).toBe(409);

    const cancelled = await h.app.inject({
      method: 'POST',
      url: `/v1/orders/${order.id}/cancel`,
      payload: { reason: 'changed my mind', expectedVersion: 2 },
    });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({
      status: 'CANCELLED',
      cancellationReason: 'changed my mind',
      cancelledBy: 'customer',
    });

    await project(order.id);
    const list = await h.app.inject({ method: 'GET', url: '/v1/orders?customerId=cust-api&status=CANCELLED' });
    expect(list.statusCode).toBe(200);
    expect(list.json().orders.map((o: { id: string }) => o.id)).toEqual([order.id]);

    const history = await h.app.inject({ method: 'GET', url: `/v1/orders/${order.id}/events` });
    expect(history.statusCode).toBe(200);
    expect(history.json().events.map((e: { type: string }) => e.type)).toEqual([
      'order.created',
      'order.confirmed',
      'order.cancelled',
    ]);
  });

  it('ships a paid order and delivers it; refuses shipping unpaid and cancelling shipped orders', async () => {
    const order = (await h.app.inject({ method: 'POST', url: '/v1/orders', payload: body })).json();
    const early = await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/ship` });
    expect(early.statusCode).toBe(422);
    expect(early.json().code).toBe('ORDER_NOT_PAID');

    expect((await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/confirm` })).statusCode).toBe(200);
    // Payment is the saga's job; here the service records it directly.
    await new OrderService(sql).markPaid(order.id, { paymentId: 'ch_1', amount: 2500 });

    const badBody = await h.app.inject({
      method: 'POST',
      url: `/v1/orders/${order.id}/ship`,
      payload: { carrier: 'dhl', weight: 3 },
    });
    expect(badBody.statusCode).toBe(400);

    const shipped = await h.app.inject({
      method: 'POST',
      url: `/v1/orders/${order.id}/ship`,
      payload: { carrier: 'dhl', trackingNumber: 'T-1', expectedVersion: 3 },
    });
    expect(shipped.statusCode).toBe(200);
    expect(shipped.json()).toMatchObject({ status: 'SHIPPED', version: 4 });

    const cancel = await h.app.inject({
      method: 'POST',
      url: `/v1/orders/${order.id}/cancel`,
      payload: { reason: 'too late' },
    });
    expect(cancel.statusCode).toBe(422);
    expect(cancel.json().code).toBe('CANNOT_CANCEL_SHIPPED');

    const delivered = await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/deliver` });
    expect(delivered.statusCode).toBe(200);
    expect(delivered.json()).toMatchObject({ status: 'DELIVERED', version: 5 });
    expect((await h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/deliver` })).statusCode).toBe(422);

    const history = (await h.app.inject({ method: 'GET', url: `/v1/orders/${order.id}/events` })).json();
    expect(history.events.map((e: { type: string }) => e.type)).toEqual([
      'order.created',
      'order.confirmed',
      'order.paid',
      'order.shipped',
      'order.delivered',
    ]);
  });

  it('shows the saga with the order once it started', async () => {
    const order = (await h.app.inject({ method: 'POST', url: '/v1/orders', payload: body })).json();
    const before = (await h.app.inject({ method: 'GET', url: `/v1/orders/${order.id}` })).json();
    expect(before.saga).toBeUndefined();

    const [created] = await loadEvents(sql, order.id);
    if (!created) throw new Error('no order.created');
    await createSagaGroup({ sql }).handler(created, handlerContext('order-saga'));
    await project(order.id);

    const read = await h.app.inject({ method: 'GET', url: `/v1/orders/${order.id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({
      id: order.id,
      status: 'PENDING',
      saga: {
        state: 'awaiting_reservation',
        history: [{ event: 'order.created', eventId: created.id, state: 'awaiting_reservation' }],
      },
    });
  });

  it('concurrent commands on one order: exactly one wins, the others get 409', async () => {
    const order = (await h.app.inject({ method: 'POST', url: '/v1/orders', payload: body })).json();
    // Every command decided against version 1, as clients that all read the same order.
    const responses = await Promise.all([
      h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/confirm`, payload: { expectedVersion: 1 } }),
      h.app.inject({
        method: 'POST',
        url: `/v1/orders/${order.id}/cancel`,
        payload: { reason: 'race', expectedVersion: 1 },
      }),
      h.app.inject({ method: 'POST', url: `/v1/orders/${order.id}/confirm`, payload: { expectedVersion: 1 } }),
      h.app.inject({
        method: 'POST',
        url: `/v1/orders/${order.id}/cancel`,
        payload: { reason: 'race', cancelledBy: 'support', expectedVersion: 1 },
      }),
    ]);
    const codes = responses.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 409, 409, 409]);
    for (const r of responses.filter((x) => x.statusCode === 409)) {
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.json()).toMatchObject({ status: 409 });
    }
    expect((await loadEvents(sql, order.id)).map((e) => e.aggregateVersion)).toEqual([1, 2]);
  });

  it('answers 404 for an unknown order, 409 for a repeated id, 400/422 for bad input', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/v1/orders/nope' })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url: '/v1/orders/nope/events' })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'POST', url: '/v1/orders/nope/confirm' })).statusCode).toBe(404);

    const payload = { ...body, orderId: `fixed-${Date.now()}` };
    expect((await h.app.inject({ method: 'POST', url: '/v1/orders', payload })).statusCode).toBe(201);
    expect((await h.app.inject({ method: 'POST', url: '/v1/orders', payload })).statusCode).toBe(409);

    const empty = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: { customerId: 'c', items: [] } });
    expect(empty.statusCode).toBe(400);
    const wrongTotal = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: { ...body, total: 1 } });
    expect(wrongTotal.statusCode).toBe(422);
    expect(wrongTotal.json().code).toBe('ORDER_TOTAL_MISMATCH');
  });

  it('refuses a price or quantity past its documented maximum with 400, storing nothing', async () => {
    const huge = {
      orderId: 'huge-1',
      customerId: 'big',
      items: [{ sku: 'S', quantity: 10000, unitPrice: 9007199254740991 }],
    };
    const res = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: huge });
    const problem = expectProblem(res, 400);
    expect(problem.code).toBe('VALIDATION_ERROR');
    expect(fields(problem)).toEqual(['items.0.unitPrice']);
    expect(await stored('huge-1')).toEqual({ events: 0, outbox: 0 });
    expectProblem(await h.app.inject({ method: 'GET', url: '/v1/orders/huge-1' }), 404);

    const tooMany = await h.app.inject({
      method: 'POST',
      url: '/v1/orders',
      payload: { ...huge, items: [{ sku: 'S', quantity: 10_001, unitPrice: 1 }] },
    });
    expect(fields(expectProblem(tooMany, 400))).toEqual(['items.0.quantity']);

    // The largest order the schema lets through has a total the API and Postgres can hold.
    const max = { sku: 'S', quantity: 10_000, unitPrice: 1_000_000_000 };
    const largest = { orderId: 'huge-1', customerId: 'big', items: Array.from({ length: 100 }, () => max) };
    const created = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: largest });
    expect(created.statusCode).toBe(201);
    expect(created.json().total).toBe(1e15);
    await project('huge-1');
    const read = await h.app.inject({ method: 'GET', url: '/v1/orders/huge-1' });
    expect(read.statusCode).toBe(200);
    expect(read.json().total).toBe(1e15);
  });

  it('names a number far past its maximum once, with the maximum, storing nothing', async () => {
    for (const [line, field, max] of [
      [{ sku: 'S', quantity: 1e300, unitPrice: 1 }, 'items.0.quantity', 10_000],
      [{ sku: 'S', quantity: 1, unitPrice: 1e300 }, 'items.0.unitPrice', 1_000_000_000],
    ] as const) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/orders',
        payload: { orderId: 'huge-2', customerId: 'big', items: [line] },
      });
      expect(expectProblem(res, 400).errors, field).toEqual([
        { field, message: `Too big: expected number to be <=${max}` },
      ]);
    }
    const version = await h.app.inject({
      method: 'POST',
      url: '/v1/orders/huge-2/confirm',
      payload: { expectedVersion: 1e300 },
    });
    expect(expectProblem(version, 400).errors).toEqual([
      { field: 'expectedVersion', message: 'Too big: expected number to be <=2147483647' },
    ]);
    expect(await stored('huge-2')).toEqual({ events: 0, outbox: 0 });
  });

  it('takes query integers as plain decimal digits only, naming the parameter once', async () => {
    for (const [query, field, message] of [
      ['limit=', 'query.limit', 'must not be empty: give a whole number'],
      ['limit=0x10', 'query.limit', 'must be a whole number in decimal digits, e.g. 50'],
      ['limit=1e1', 'query.limit', 'must be a whole number in decimal digits, e.g. 50'],
      ['limit=201', 'query.limit', 'Too big: expected number to be <=200'],
    ] as const) {
      const res = await h.app.inject({ method: 'GET', url: `/v1/orders?${query}` });
      expect(expectProblem(res, 400).errors, query).toEqual([{ field, message }]);
    }
    for (const [query, message] of [
      ['fromVersion=0x1', 'must be a whole number in decimal digits, e.g. 50'],
      ['fromVersion=1e0', 'must be a whole number in decimal digits, e.g. 50'],
      // Versions are Postgres integers: a larger one is refused here, not by the query.
      ['fromVersion=99999999999', 'Too big: expected number to be <=2147483647'],
    ] as const) {
      const res = await h.app.inject({ method: 'GET', url: `/v1/orders/some-order/events?${query}` });
      expect(expectProblem(res, 400).errors, query).toEqual([{ field: 'query.fromVersion', message }]);
    }
    const ok = await h.app.inject({ method: 'GET', url: '/v1/orders?limit=007' });
    expect(ok.statusCode).toBe(200);
  });

  it('refuses a query parameter a route does not take, naming it', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/orders/some-order?expand=saga' });
    expect(expectProblem(res, 400).errors).toEqual([{ field: 'query.expand', message: 'unknown field' }]);
  });

  it('refuses, in the domain, a total that is not a safe integer (422), storing nothing', async () => {
    const service = new OrderService(sql);
    const err = await service
      .create({
        orderId: 'huge-2',
        customerId: 'big',
        items: [{ sku: 'S', quantity: 10000, unitPrice: 9007199254740991 }],
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DomainError', code: 'ORDER_TOTAL_OUT_OF_RANGE' });
    const problem = toProblem(err);
    expect(problem).toMatchObject({ status: 422, code: 'ORDER_TOTAL_OUT_OF_RANGE' });
    expect(problem.extensions).toMatchObject({ details: { field: 'items' } });
    expect(await stored('huge-2')).toEqual({ events: 0, outbox: 0 });
  });

  it('refuses what the event catalog or the stock endpoints would not take, naming the field, and stores nothing', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      // 'ß'.toUpperCase() is 'SS': four characters, which order.created (a 3-letter code) refuses.
      ['currency not 3 ASCII letters', { ...body, orderId: 'spell-1', currency: 'ßab' }, 'currency'],
      ['currency with a digit', { ...body, orderId: 'spell-2', currency: 'EU1' }, 'currency'],
      [
        'country not 2 ASCII letters',
        { ...body, orderId: 'spell-3', shippingAddress: { line1: 'l', city: 'c', postalCode: 'p', country: 'ßa' } },
        'shippingAddress.country',
      ],
      // /v1/inventory/:sku refuses these, so no stock could ever be set for them.
      [
        'sku with a space',
        { ...body, orderId: 'spell-4', items: [{ sku: 'SKU 1', quantity: 1, unitPrice: 1 }] },
        'items.0.sku',
      ],
      [
        'sku starting with a dot',
        { ...body, orderId: 'spell-5', items: [{ sku: '.x', quantity: 1, unitPrice: 1 }] },
        'items.0.sku',
      ],
      // Not a usable path segment: /v1/orders/.. is /v1.
      ['order id ".."', { ...body, orderId: '..' }, 'orderId'],
      ['order id "."', { ...body, orderId: '.' }, 'orderId'],
    ];
    for (const [name, payload, field] of cases) {
      const problem = expectProblem(await h.app.inject({ method: 'POST', url: '/v1/orders', payload }), 400);
      expect(fields(problem), name).toEqual([field]);
      expect(await stored(String(payload.orderId)), name).toEqual({ events: 0, outbox: 0 });
    }
    // Lower case is still accepted, and stored upper case.
    const ok = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: { ...body, currency: 'usd' } });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ currency: 'USD' });
  });

  it('refuses a NUL character in any order string with 400 naming the field', async () => {
    const nul = 'a\u0000b';
    const cases: [string, InjectOptions, string][] = [
      ['GET one', { method: 'GET', url: '/v1/orders/%00' }, 'params.id'],
      ['GET events', { method: 'GET', url: '/v1/orders/a%00/events' }, 'params.id'],
      ['GET list', { method: 'GET', url: '/v1/orders?customerId=%00' }, 'query.customerId'],
      ['confirm', { method: 'POST', url: '/v1/orders/%00/confirm' }, 'params.id'],
      ['cancel id', { method: 'POST', url: '/v1/orders/%00/cancel', payload: { reason: 'x' } }, 'params.id'],
      ['cancel reason', { method: 'POST', url: '/v1/orders/o-1/cancel', payload: { reason: nul } }, 'reason'],
      [
        'cancelledBy',
        { method: 'POST', url: '/v1/orders/o-1/cancel', payload: { reason: 'x', cancelledBy: nul } },
        'cancelledBy',
      ],
      ['ship carrier', { method: 'POST', url: '/v1/orders/o-1/ship', payload: { carrier: nul } }, 'carrier'],
      ['deliver', { method: 'POST', url: '/v1/orders/%00/deliver' }, 'params.id'],
      ['customerId', { method: 'POST', url: '/v1/orders', payload: { ...body, customerId: nul } }, 'customerId'],
      ['orderId', { method: 'POST', url: '/v1/orders', payload: { ...body, orderId: nul } }, 'orderId'],
      [
        'sku',
        { method: 'POST', url: '/v1/orders', payload: { ...body, items: [{ sku: nul, quantity: 1, unitPrice: 1 }] } },
        'items.0.sku',
      ],
      ['currency', { method: 'POST', url: '/v1/orders', payload: { ...body, currency: 'E\u0000R' } }, 'currency'],
      [
        'address',
        {
          method: 'POST',
          url: '/v1/orders',
          payload: { ...body, shippingAddress: { line1: nul, city: 'c', postalCode: 'p', country: 'DE' } },
        },
        'shippingAddress.line1',
      ],
    ];
    for (const [name, request, field] of cases) {
      const problem = expectProblem(await h.app.inject(request), 400);
      expect(problem.code, name).toBe('VALIDATION_ERROR');
      expect(fields(problem), name).toContain(field);
    }
  });

  it('refuses a lone UTF-16 surrogate in any order string with 400 naming the field, storing nothing', async () => {
    // Valid JSON ("\ud800" is an escape JSON allows), but not text Postgres' jsonb can store.
    const lone = 'c\ud800';
    // A pending order, so that a command that got past validation would write its text.
    const { id } = (await h.app.inject({ method: 'POST', url: '/v1/orders', payload: body })).json();
    const cases: [string, InjectOptions, string][] = [
      ['cancel reason', { method: 'POST', url: `/v1/orders/${id}/cancel`, payload: { reason: lone } }, 'reason'],
      [
        'cancelledBy',
        { method: 'POST', url: `/v1/orders/${id}/cancel`, payload: { reason: 'x', cancelledBy: '\udfff' } },
        'cancelledBy',
      ],
      ['ship carrier', { method: 'POST', url: `/v1/orders/${id}/ship`, payload: { carrier: lone } }, 'carrier'],
      [
        'ship trackingNumber',
        { method: 'POST', url: `/v1/orders/${id}/ship`, payload: { trackingNumber: lone } },
        'trackingNumber',
      ],
      [
        'customerId',
        { method: 'POST', url: '/v1/orders', payload: { ...body, orderId: 'lone-1', customerId: lone } },
        'customerId',
      ],
      ['orderId', { method: 'POST', url: '/v1/orders', payload: { ...body, orderId: 'o-\udc00' } }, 'orderId'],
      ...(['line1', 'city', 'postalCode'] as const).map((field, i): [string, InjectOptions, string] => [
        `address ${field}`,
        {
          method: 'POST',
          url: '/v1/orders',
          payload: {
            ...body,
            orderId: `lone-addr-${i}`,
            shippingAddress: { line1: 'l', city: 'c', postalCode: 'p', country: 'DE', [field]: lone },
          },
        },
        `shippingAddress.${field}`,
      ]),
    ];
    for (const [name, request, field] of cases) {
      const problem = expectProblem(await h.app.inject(request), 400);
      expect(problem.code, name).toBe('VALIDATION_ERROR');
      expect(fields(problem), name).toEqual([field]);
    }
    for (const refused of ['lone-1', 'o-\udc00', 'lone-addr-0', 'lone-addr-1', 'lone-addr-2']) {
      expect(await stored(refused), refused).toEqual({ events: 0, outbox: 0 });
    }
    expect(await stored(id)).toEqual({ events: 1, outbox: 1 });
  });

  it('answers 400, not 500, when Postgres refuses a NUL or a lone surrogate that reached a query (backstop)', async () => {
    for (const query of [
      sql`select ${'a\u0000b'}::text`,
      sql`select ${sql.json({ a: 'a\u0000b' })}::jsonb`,
      sql`select ${sql.json({ a: 'a\ud800' })}::jsonb`,
    ]) {
      const err = await query.catch((e: unknown) => e);
      expect(['22021', '22P05', '22P02']).toContain((err as { code?: string }).code);
      expect(toProblem(err)).toMatchObject({ status: 400, code: 'UNSUPPORTED_CHARACTER' });
    }
    // The same SQLSTATE for anything else a query could not read is the server's fault.
    for (const query of [sql`select 1/0`, sql`select 'abc'::int`, sql`select '{"a":'::jsonb`]) {
      expect(toProblem(await query.catch((e: unknown) => e)).status).toBe(500);
    }
  });

  it('pages with nextCursor and refuses a cursor it did not hand out (400 query.cursor)', async () => {
    const customerId = `cust-pages-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const order = (
        await h.app.inject({ method: 'POST', url: '/v1/orders', payload: { ...body, customerId } })
      ).json();
      await project(order.id);
      ids.push(order.id);
    }
    const first = (await h.app.inject({ method: 'GET', url: `/v1/orders?customerId=${customerId}&limit=2` })).json();
    expect(first.orders).toHaveLength(2);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await h.app.inject({
      method: 'GET',
      url: `/v1/orders?customerId=${customerId}&limit=2&cursor=${first.nextCursor}`,
    });
    expect(second.statusCode).toBe(200);
    const seen = [...first.orders, ...second.json().orders].map((o: { id: string }) => o.id);
    expect(seen.sort()).toEqual([...ids].sort());

    for (const cursor of [
      'garbage',
      cursorOf({ createdAt: 'yesterday', id: 'x' }),
      cursorOf({ createdAt: '2026-13-45T00:00:00.000Z', id: 'x' }),
      cursorOf({ createdAt: '0000-01-01T00:00:00.000Z', id: 'x' }),
      cursorOf({ createdAt: '2026-01-15T10:00:00.000Z', id: 7 }),
      cursorOf({ createdAt: '2026-01-15T10:00:00.000Z', id: 'a\u0000b' }),
      cursorOf({ id: 'x' }),
      cursorOf(null),
      encodeURIComponent('eyJ+/='),
    ]) {
      const res = await h.app.inject({ method: 'GET', url: `/v1/orders?customerId=${customerId}&cursor=${cursor}` });
      const problem = expectProblem(res, 400);
      expect(problem.code, cursor).toBe('VALIDATION_ERROR');
      expect(fields(problem), cursor).toEqual(['query.cursor']);
    }

    // Callers of core (not only HTTP) get the ValidationError.
    const err = await listOrders(sql, { cursor: 'garbage' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues).toEqual([{ field: 'cursor', message: expect.any(String) }]);
  });

  it('documents the routes in a valid OpenAPI document', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    for (const path of [
      '/v1/orders',
      '/v1/orders/{id}',
      '/v1/orders/{id}/confirm',
      '/v1/orders/{id}/cancel',
      '/v1/orders/{id}/ship',
      '/v1/orders/{id}/deliver',
      '/v1/orders/{id}/events',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    // Every order route shows an example: of its request body, or else of its answer.
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (!path.startsWith('/v1/orders')) continue;
      for (const [method, op] of Object.entries(ops)) {
        const o = op as { requestBody?: unknown; responses?: Record<string, unknown> };
        const shown = JSON.stringify(o.requestBody ?? o.responses?.['200'] ?? o.responses?.['201']);
        expect(shown, `${method} ${path}`).toContain('"example"');
      }
    }
    // Every route taking a JSON body documents the 413 and 415 it can answer.
    for (const [where, op] of [
      ['post /v1/orders', doc.paths['/v1/orders'].post],
      ['post /v1/orders/{id}/cancel', doc.paths['/v1/orders/{id}/cancel'].post],
      ['post /v1/orders/{id}/confirm', doc.paths['/v1/orders/{id}/confirm'].post],
    ]) {
      expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['413', '415']));
    }
    // Every order route reads or writes Postgres: each documents the 503 of an outage.
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      if (!path.startsWith('/v1/orders')) continue;
      for (const [method, op] of Object.entries(ops)) {
        const responses = (op as { responses: Record<string, { content?: Record<string, unknown> }> }).responses;
        expect(Object.keys(responses['503']?.content ?? {}), `${method} ${path}`).toEqual(['application/problem+json']);
      }
    }
    const getOne = JSON.stringify(doc.paths['/v1/orders/{id}'].get.responses['200']);
    expect(getOne).toContain('"saga"');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });
});

describe('POST /v1/orders with an Idempotency-Key', () => {
  const place = (key: string, payload: unknown) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { 'idempotency-key': key },
      payload: payload as Record<string, unknown>,
    });

  it('places the order once: a repeat gets the first answer (same order, Location) and places nothing', async () => {
    const customerId = `cust-idem-${Date.now()}`;
    const key = `order-${customerId}`;
    const first = await place(key, { customerId, items: body.items });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    // The same body with its keys in another order is the same request.
    const again = await place(key, { items: body.items, customerId });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(again.headers.location).toBe(first.headers.location);
    expect(await placedFor(customerId)).toBe(1);

    // Without the header, the same body places another order.
    const plain = await h.app.inject({ method: 'POST', url: '/v1/orders', payload: { customerId, items: body.items } });
    expect(plain.statusCode).toBe(201);
    expect(plain.json().id).not.toBe(first.json().id);
    expect(await placedFor(customerId)).toBe(2);
  });

  it('a repeat whose first answer was lost (the key freed after the commit) finds the order placed, and places no second one', async () => {
    const customerId = `cust-idem-lost-${Date.now()}`;
    const key = `order-${customerId}`;
    const first = await place(key, { customerId, items: body.items });
    expect(first.statusCode).toBe(201);
    // What a failure after the commit leaves: the order is placed, the key is free again.
    await h.redis.del(h.keys.idempotency(key));
    const again = await place(key, { customerId, items: body.items });
    expect(again.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    expect(await placedFor(customerId)).toBe(1);
    // Another customer's request under that key is not taken for it.
    await h.redis.del(h.keys.idempotency(key));
    const other = await place(key, { customerId: `${customerId}-other`, items: body.items });
    expect(other.statusCode).toBe(409);
  });

  it('answers the key reused with another body 422 naming the header, placing nothing', async () => {
    const customerId = `cust-idem-reuse-${Date.now()}`;
    const key = `order-${customerId}`;
    expect((await place(key, { customerId, items: body.items })).statusCode).toBe(201);
    const other = await place(key, { customerId, items: [{ sku: 'SKU-2', quantity: 1, unitPrice: 100 }] });
    const problem = expectProblem(other, 422);
    expect(problem.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(fields(problem)).toEqual(['headers.idempotency-key']);
    expect(await placedFor(customerId)).toBe(1);

    // A key used for an event is not one for an order either.
    const eventKey = `event-${customerId}`;
    const event = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'idempotency-key': eventKey },
      payload: { type: 'test.thing', data: { name: 'x' } },
    });
    expect(event.statusCode).toBe(202);
    expect(expectProblem(await place(eventKey, { customerId, items: body.items }), 422).code).toBe(
      'IDEMPOTENCY_KEY_REUSED',
    );
    expect(await placedFor(customerId)).toBe(1);
  });

  it('does not use up the key on a refused order, and refuses a malformed key naming the header', async () => {
    const customerId = `cust-idem-refused-${Date.now()}`;
    const key = `order-${customerId}`;
    const refused = await place(key, { customerId, items: body.items, total: 1 });
    expect(expectProblem(refused, 422).code).toBe('ORDER_TOTAL_MISMATCH');
    const placed = await place(key, { customerId, items: body.items });
    expect(placed.statusCode).toBe(201);
    expect(placed.headers['idempotent-replayed']).toBeUndefined();

    const malformed = await place('k'.repeat(201), { customerId, items: body.items });
    expect(fields(expectProblem(malformed, 400))).toEqual(['headers.idempotency-key']);
    expect(await placedFor(customerId)).toBe(1);
  });

  it('documents the header on the route', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const parameters = doc.paths['/v1/orders'].post.parameters as { in: string; name: string; description?: string }[];
    expect(parameters).toContainEqual(
      expect.objectContaining({ in: 'header', name: 'idempotency-key', description: expect.stringContaining('422') }),
    );
  });
});

describe('order commands under the ingest rate limit', () => {
  it('share one budget per client across place, confirm and cancel; the refused one stores nothing; reads are free', async () => {
    const limited = await createHarness({
      env: { RATE_LIMIT_INGEST_PER_MIN: '3' },
      deps: { plugins: [ordersPlugin(new OrderService(sql))] },
    });
    try {
      const place = (customerId: string) =>
        limited.app.inject({ method: 'POST', url: '/v1/orders', payload: { ...body, customerId } });
      const first = await place('cust-limit-1');
      expect(first.statusCode).toBe(201);
      expect(first.headers['x-ratelimit-remaining']).toBe('2');
      const id = first.json().id as string;
      expect((await limited.app.inject({ method: 'POST', url: `/v1/orders/${id}/confirm` })).statusCode).toBe(200);
      expect((await place('cust-limit-2')).statusCode).toBe(201);

      const refused = await place('cust-limit-3');
      expect(expectProblem(refused, 429).code).toBe('RATE_LIMITED');
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect(await placedFor('cust-limit-3')).toBe(0);
      const cancel = await limited.app.inject({
        method: 'POST',
        url: `/v1/orders/${id}/cancel`,
        payload: { reason: 'too late' },
      });
      expect(cancel.statusCode).toBe(429);
      expect((await limited.app.inject({ method: 'GET', url: `/v1/orders/${id}` })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('order routes and the router', () => {
  it('answers an id over the router limit (200 characters) as validation does: 400 naming params.id', async () => {
    for (const url of [`/v1/orders/${'o'.repeat(300)}`, `/v1/orders/${'o'.repeat(300)}/confirm`]) {
      const method = url.endsWith('confirm') ? 'POST' : 'GET';
      const problem = expectProblem(await h.app.inject({ method, url }), 400);
      expect(problem.code, url).toBe('VALIDATION_ERROR');
      expect(fields(problem), url).toEqual(['params.id']);
    }
  });

  it('answers a text/plain order body 415 naming headers.content-type, placing nothing', async () => {
    const customerId = `cust-text-${Date.now()}`;
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/orders',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ customerId, items: body.items }),
    });
    const problem = expectProblem(res, 415);
    expect(problem.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(fields(problem)).toEqual(['headers.content-type']);
    expect(await placedFor(customerId)).toBe(0);
  });
});
