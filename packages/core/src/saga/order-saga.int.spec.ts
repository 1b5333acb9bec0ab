import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '../events/envelope';
import { loadOrder } from '../orders/commands';
import { OrderService } from '../orders/order-service';
import type { Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import { handlerContext, type MigratedTestDatabase, migratedTestDatabase, waitFor } from '../testing/index';
import { createSagaGroup, expireStaleSagas, getSaga } from './order-saga';

const ctx = handlerContext('order-saga');

let db: MigratedTestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await migratedTestDatabase('sf_saga', { max: 5 });
  sql = db.sql;
});

afterAll(async () => {
  await db?.close();
});

async function startedSaga(): Promise<string> {
  const orderId = randomUUID();
  await new OrderService(sql).create({ orderId, customerId: 'c', items: [{ sku: 'A', quantity: 1, unitPrice: 10 }] });
  const [created] = await loadEvents(sql, orderId);
  if (!created) throw new Error('no event');
  await createSagaGroup({ sql }).handler(created, ctx);
  return orderId;
}

describe('saga expiry', () => {
  it('cancels orders whose saga waited too long, once; leaves fresh ones', async () => {
    const stale = await startedSaga();
    const fresh = await startedSaga();
    expect((await getSaga(sql, stale))?.state).toBe('awaiting_reservation');
    await sql`update order_sagas set updated_at = now() - interval '1 hour' where order_id = ${stale}`;

    expect(await expireStaleSagas(sql, { olderThanMs: 60_000 })).toEqual([stale]);
    expect(await loadOrder(sql, stale)).toMatchObject({
      status: 'CANCELLED',
      cancellationReason: 'timeout: awaiting_reservation',
      cancelledBy: 'order-saga',
    });
    expect((await getSaga(sql, stale))?.state).toBe('cancelled');
    expect((await loadOrder(sql, fresh))?.status).toBe('PENDING');
    expect(await expireStaleSagas(sql, { olderThanMs: 60_000 })).toEqual([]);
  });
});

describe('saga concurrency', () => {
  it('a retry racing the next event of the same order cannot undo a finished saga', async () => {
    // Both handlers read "no saga yet"; unserialised, the one writing last wins and an
    // inventory.reserved retry reopens the saga that order.cancelled just closed.
    const orderId = randomUUID();
    const cancelled = createEvent({
      type: 'order.cancelled',
      aggregateId: orderId,
      aggregateVersion: 2,
      data: { orderId, customerId: 'c', reason: 'changed my mind', cancelledBy: 'customer', previousStatus: 'PENDING' },
    });
    const reserved = createEvent({
      type: 'inventory.reserved',
      aggregateId: orderId,
      data: { orderId, customerId: 'c', items: [{ sku: 'A', quantity: 1 }], total: 10, currency: 'EUR' },
    });
    const group = createSagaGroup({ sql });
    // SHARE lets the handlers' `select ... for update` through but holds their writes.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = false;
    const holder = sql.begin(async (tx) => {
      await tx`lock table order_sagas in share mode`;
      locked = true;
      await held;
    });
    const waiting = async () =>
      (
        await sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`
      )[0]?.n ?? 0;
    try {
      await waitFor(() => locked, { message: 'order_sagas locked' });
      const first = Promise.resolve(group.handler(cancelled, ctx));
      await waitFor(async () => (await waiting()) >= 1, { message: 'order.cancelled waiting' });
      const second = Promise.resolve(group.handler(reserved, { ...ctx, attempt: 2 }));
      await waitFor(async () => (await waiting()) >= 2, { message: 'inventory.reserved waiting' });
      release();
      await holder;
      await Promise.all([first, second]);
    } finally {
      release();
    }
    expect((await getSaga(sql, orderId))?.state).toBe('cancelled');
  });
});
