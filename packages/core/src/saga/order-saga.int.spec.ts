import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, isNonRetryable } from '../errors/index';
import { createEvent, type EventEnvelope } from '../events/envelope';
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

describe('saga expiry behind its own group', () => {
  it('leaves a saga whose awaited outcome is recorded but not yet read (its group paused or behind)', async () => {
    const [reserved, paid, declined, waiting] = [
      await startedSaga(),
      await startedSaga(),
      await startedSaga(),
      await startedSaga(),
    ];
    // Inventory reserved one order; payment charged or declined two others whose reservation the
    // saga did read. The saga group has not read those outcomes yet. The fourth has no outcome.
    await sql`insert into reservations (order_id, status, items) values (${reserved}, 'reserved', '[]')`;
    for (const orderId of [paid, declined]) {
      await sql`update order_sagas set state = 'awaiting_payment' where order_id = ${orderId}`;
      await sql`insert into reservations (order_id, status, items) values (${orderId}, 'reserved', '[]')`;
    }
    await sql`
      insert into payments (order_id, status, amount, currency, idempotency_key)
      values (${paid}, 'succeeded', 10, 'EUR', ${`k-${paid}`}), (${declined}, 'failed', 10, 'EUR', ${`k-${declined}`})`;
    const all = [reserved, paid, declined, waiting];
    await sql`update order_sagas set updated_at = now() - interval '1 hour' where order_id = any(${all})`;

    const expired = await expireStaleSagas(sql, { olderThanMs: 60_000, limit: 10_000 });

    expect(expired.filter((id) => all.includes(id))).toEqual([waiting]);
    for (const orderId of [reserved, paid, declined]) expect((await loadOrder(sql, orderId))?.status).toBe('PENDING');
    expect((await loadOrder(sql, waiting))?.status).toBe('CANCELLED');
  });
});

describe('saga cancellations', () => {
  it('cancels with a shortened reason when the failure is too long to fit order.cancelled (500 characters)', async () => {
    const saga = createSagaGroup({ sql });
    const skus = Array.from({ length: 8 }, (_, i) => `${String(i).repeat(60)}-SKU`);
    const outOfStock = await startedSaga();
    await saga.handler(
      createEvent({
        type: 'inventory.reservation_failed',
        aggregateId: outOfStock,
        data: {
          orderId: outOfStock,
          reason: 'out_of_stock',
          unavailable: skus.map((sku) => ({ sku, requested: 1, available: 0 })),
        },
      }),
      ctx,
    );
    const declined = await startedSaga();
    await saga.handler(
      createEvent({
        type: 'payment.failed',
        aggregateId: declined,
        data: { orderId: declined, amount: 10, reason: `gateway says: ${'no '.repeat(300)}` },
      }),
      ctx,
    );
    for (const [orderId, start] of [
      [outOfStock, `out_of_stock: ${skus[0]}, `],
      [declined, 'payment_failed: gateway says: no no'],
    ] as const) {
      const order = await loadOrder(sql, orderId);
      expect(order?.status).toBe('CANCELLED');
      expect(order?.cancellationReason?.startsWith(start)).toBe(true);
      expect(order?.cancellationReason?.endsWith('…')).toBe(true);
      expect(order?.cancellationReason?.length).toBe(500);
      expect((await getSaga(sql, orderId))?.state).toBe('cancelled');
    }
  });
});

describe('saga record of an order someone else cancelled first', () => {
  it('keeps their reason and who they were, not the failure the saga read afterwards', async () => {
    const orderId = await startedSaga();
    await new OrderService(sql).cancel(orderId, 'changed my mind', 'customer');
    await createSagaGroup({ sql }).handler(
      createEvent({
        type: 'inventory.reservation_failed',
        aggregateId: orderId,
        data: { orderId, reason: 'out_of_stock', unavailable: [{ sku: 'A', requested: 1, available: 0 }] },
      }),
      ctx,
    );
    const saga = await getSaga(sql, orderId);
    expect(saga?.state).toBe('cancelled');
    expect(saga?.data).toMatchObject({ cancelReason: 'changed my mind', cancelledBy: 'customer' });
    expect(await loadOrder(sql, orderId)).toMatchObject({ cancellationReason: 'changed my mind', version: 2 });
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

  /**
   * `sql` whose transactions run `between` (on the pool, so it commits on its own) right after
   * their first read of the event store: a user's command landing between the saga's reading
   * of the order and its own command on it.
   */
  function interleaved(between: () => Promise<unknown>): Sql {
    let done = false;
    const wrap = (tx: Sql): Sql =>
      new Proxy(tx, {
        apply(target, self, args: unknown[]) {
          const query = Reflect.apply(target, self, args) as Promise<unknown>;
          const text = Array.isArray(args[0]) ? (args[0] as string[]).join('?') : '';
          if (done || !/from events/.test(text)) return query;
          done = true;
          return query.then(async (rows) => {
            await between();
            return rows;
          });
        },
      });
    return new Proxy(sql, {
      get(target, key, receiver) {
        if (key !== 'begin') return Reflect.get(target, key, receiver);
        return (fn: (tx: Sql) => Promise<unknown>) => target.begin((tx) => fn(wrap(tx as unknown as Sql)));
      },
    });
  }

  async function raced(event: EventEnvelope, user: () => Promise<unknown>): Promise<unknown> {
    const group = createSagaGroup({ sql: interleaved(user) });
    return Promise.resolve(group.handler(event, ctx)).then(
      () => undefined,
      (err: unknown) => err,
    );
  }

  it('a user confirming the order while the saga marks it paid is retried, not dead-lettered', async () => {
    const orderId = await startedSaga();
    const succeeded = createEvent({
      type: 'payment.succeeded',
      aggregateId: orderId,
      data: { orderId, paymentId: 'pay-1', amount: 10, currency: 'EUR' },
    });
    const err = await raced(succeeded, () => new OrderService(sql).confirm(orderId));
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect(isNonRetryable(err)).toBe(false);
    expect((await loadOrder(sql, orderId))?.status).toBe('CONFIRMED');

    await createSagaGroup({ sql }).handler(succeeded, { ...ctx, attempt: 2 });
    expect((await loadOrder(sql, orderId))?.status).toBe('PAID');
    expect((await getSaga(sql, orderId))?.state).toBe('completed');
  });

  it('a user cancelling the order while the saga cancels it is retried, not dead-lettered', async () => {
    const orderId = await startedSaga();
    const failed = createEvent({
      type: 'payment.failed',
      aggregateId: orderId,
      data: { orderId, amount: 10, reason: 'card declined' },
    });
    const err = await raced(failed, () => new OrderService(sql).cancel(orderId, 'changed my mind', 'customer'));
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect(isNonRetryable(err)).toBe(false);

    await createSagaGroup({ sql }).handler(failed, { ...ctx, attempt: 2 });
    expect(await loadOrder(sql, orderId)).toMatchObject({ status: 'CANCELLED', cancelledBy: 'customer' });
    expect((await getSaga(sql, orderId))?.state).toBe('cancelled');
  });
});
