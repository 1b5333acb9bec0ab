import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, DomainError, NotFoundError, ValidationError } from '../errors/index';
import { applyToReadModel, getOrderView, rebuildOrderView } from '../projection/order-projection';
import type { Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import { type MigratedTestDatabase, migratedTestDatabase } from '../testing/index';
import { foldOrder } from './order';
import { OrderService } from './order-service';

let db: MigratedTestDatabase;
let sql: Sql;
let orders: OrderService;

beforeAll(async () => {
  db = await migratedTestDatabase('sf_orders', { max: 10 });
  sql = db.sql;
  orders = new OrderService(sql);
});

afterAll(async () => {
  await db?.close();
});

const items = [{ sku: 'A', quantity: 1, unitPrice: 1500 }];

async function newOrder(customerId = 'c1'): Promise<string> {
  const orderId = randomUUID();
  await orders.create({ orderId, customerId, items });
  return orderId;
}

describe('OrderService commands', () => {
  it('creates, confirms and records every step as an event (with an outbox row each)', async () => {
    const id = await newOrder();
    const { order } = await orders.confirm(id);
    expect(order).toMatchObject({ status: 'CONFIRMED', version: 2, total: 1500 });
    expect((await orders.history(id)).map((e) => e.type)).toEqual(['order.created', 'order.confirmed']);
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where event->>'aggregateId' = ${id}`;
    expect(row?.n).toBe(2);
  });

  it('an existing order id cannot be created again', async () => {
    const id = await newOrder();
    await expect(orders.create({ orderId: id, customerId: 'c1', items })).rejects.toBeInstanceOf(ConcurrencyError);
  });

  it('unknown orders are NotFoundError; broken rules are DomainErrors with codes', async () => {
    await expect(orders.confirm(randomUUID())).rejects.toBeInstanceOf(NotFoundError);
    const id = await newOrder();
    await orders.cancel(id, 'no longer needed', 'customer');
    await expect(orders.confirm(id)).rejects.toMatchObject({ code: 'ORDER_NOT_PENDING' });
    await expect(orders.cancel(id, 'again', 'customer')).rejects.toBeInstanceOf(DomainError);
  });

  it('concurrent commands on one order: exactly one wins, the other gets ConcurrencyError', async () => {
    const id = await newOrder();
    // Both decided against version 1 (what an API client read); only one append can land.
    const results = await Promise.allSettled([
      orders.confirm(id, { expectedVersion: 1 }),
      orders.cancel(id, 'race', 'customer', { expectedVersion: 1 }),
      orders.confirm(id, { expectedVersion: 1 }),
      orders.cancel(id, 'race', 'support', { expectedVersion: 1 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    for (const r of lost) expect(r.reason).toBeInstanceOf(ConcurrencyError);
    expect((await loadEvents(sql, id)).length).toBe(2);
  });

  it('an event the catalog would refuse is a ValidationError before anything is stored, never a stuck outbox row', async () => {
    const orderId = await newOrder();
    const tooLong = await orders.cancel(orderId, 'r'.repeat(501), 'customer').catch((e: unknown) => e);
    expect(tooLong).toBeInstanceOf(ValidationError);
    expect((tooLong as ValidationError).issues.map((i) => i.field)).toEqual(['data.reason']);
    const badCurrency = await orders
      .create({ orderId: randomUUID(), customerId: 'c1', items, currency: 'SSAB' })
      .catch((e: unknown) => e);
    expect((badCurrency as ValidationError).issues.map((i) => i.field)).toEqual(['data.currency']);
    expect((await loadEvents(sql, orderId)).map((e) => e.type)).toEqual(['order.created']);
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from outbox where event->'data'->>'orderId' = ${orderId}`;
    expect(row?.n).toBe(1);
  });

  it('a stale expected version is a ConcurrencyError', async () => {
    const id = await newOrder();
    await orders.confirm(id, { expectedVersion: 1 });
    await expect(orders.cancel(id, 'late', 'customer', { expectedVersion: 1 })).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
  });
});

describe('read model', () => {
  it('applies events by version, ignores duplicates, and equals the rebuilt aggregate', async () => {
    const id = await newOrder('c-view');
    await orders.confirm(id);
    await orders.markPaid(id, { paymentId: 'p-1', amount: 1500 });
    const events = await loadEvents(sql, id);
    for (const e of events) expect(await applyToReadModel(sql, e)).toBe('applied');
    for (const e of events) expect(await applyToReadModel(sql, e)).toBe('skipped');
    const view = await getOrderView(sql, id);
    expect(view).toEqual(foldOrder(events));
    expect(await rebuildOrderView(sql, id)).toEqual(view);
  });

  it('out-of-order events give the right read model', async () => {
    const id = await newOrder('c-ooo');
    await orders.confirm(id);
    await orders.cancel(id, 'changed mind', 'customer');
    const [created, confirmed, cancelled] = await loadEvents(sql, id);
    if (!created || !confirmed || !cancelled) throw new Error('events');
    // v3 arrives first: nothing to apply it to, so the row is rebuilt from the store.
    expect(await applyToReadModel(sql, cancelled)).toBe('rebuilt');
    expect(await applyToReadModel(sql, created)).toBe('skipped');
    expect(await applyToReadModel(sql, confirmed)).toBe('skipped');
    const view = await getOrderView(sql, id);
    expect(view).toMatchObject({ status: 'CANCELLED', version: 3, cancellationReason: 'changed mind' });
    expect(view).toEqual(foldOrder([created, confirmed, cancelled]));
  });

  it('lists by customer newest first and by status, with a cursor', async () => {
    const customer = `c-list-${randomUUID().slice(0, 6)}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await newOrder(customer);
      ids.push(id);
      for (const e of await loadEvents(sql, id)) await applyToReadModel(sql, e);
    }
    const cancelled = ids[1] as string;
    await orders.cancel(cancelled, 'x', 'customer');
    for (const e of await loadEvents(sql, cancelled, 2)) await applyToReadModel(sql, e);

    const page1 = await orders.list({ customerId: customer, limit: 3 });
    expect(page1.orders.map((o) => o.id)).toEqual([...ids].reverse().slice(0, 3));
    expect(page1.nextCursor).toBeDefined();
    const page2 = await orders.list({
      customerId: customer,
      limit: 3,
      ...(page1.nextCursor ? { cursor: page1.nextCursor } : {}),
    });
    expect(page2.orders.map((o) => o.id)).toEqual([...ids].reverse().slice(3));
    expect(page2.nextCursor).toBeUndefined();

    const byStatus = await orders.list({ customerId: customer, status: 'CANCELLED' });
    expect(byStatus.orders.map((o) => o.id)).toEqual([cancelled]);
  });
});
