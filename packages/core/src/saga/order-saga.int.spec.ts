import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../logging/index';
import { loadOrder } from '../orders/commands';
import { OrderService } from '../orders/order-service';
import { createPostgres, type Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import { migrate } from '../store/migrations';
import type { HandlerContext } from '../streams/handler';
import { createTestDatabase, type TestDatabase } from '../testing/index';
import { createSagaGroup, expireStaleSagas, getSaga } from './order-saga';

const ctx: HandlerContext = {
  group: 'order-saga',
  stream: 'orders',
  entryId: '0-1',
  attempt: 1,
  deliveryCount: 1,
  replayCount: 0,
  logger: silentLogger,
};

let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase('sf_saga');
  sql = createPostgres(db.url, { max: 5 });
  await migrate(sql);
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
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
