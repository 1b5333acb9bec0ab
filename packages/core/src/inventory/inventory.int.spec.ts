import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../errors/index';
import { createEvent, type EventEnvelope } from '../events/envelope';
import {
  type OrderCancelledData,
  type OrderCreatedData,
  OrderEventType,
  type OrderShippedData,
  type StockReceivedData,
} from '../orders/events';
import type { Sql } from '../store/client';
import type { GroupDefinition } from '../streams/handler';
import { handlerContext, type MigratedTestDatabase, migratedTestDatabase } from '../testing/index';
import { createInventoryGroup, getStock, INVENTORY_GROUP, setStock } from './inventory-service';

let db: MigratedTestDatabase;
let sql: Sql;
let inventory: GroupDefinition;

beforeAll(async () => {
  db = await migratedTestDatabase('sf_inventory', { max: 6 });
  sql = db.sql;
  inventory = createInventoryGroup({ sql });
});

afterAll(async () => {
  await db?.close();
});

function sku(): string {
  return `SKU-${randomUUID().slice(0, 8)}`;
}

function created(orderId: string, items: Array<{ sku: string; quantity: number }>): EventEnvelope {
  const data: OrderCreatedData = {
    orderId,
    customerId: 'cust-1',
    items: items.map((i) => ({ ...i, unitPrice: 100 })),
    total: items.reduce((n, i) => n + i.quantity * 100, 0),
    currency: 'EUR',
  };
  return createEvent({ type: OrderEventType.created, aggregateId: orderId, aggregateVersion: 1, data });
}

function shipped(orderId: string): EventEnvelope {
  const data: OrderShippedData = { orderId, carrier: 'dhl' };
  return createEvent({ type: OrderEventType.shipped, aggregateId: orderId, aggregateVersion: 4, data });
}

function cancelled(orderId: string): EventEnvelope {
  const data: OrderCancelledData = {
    orderId,
    customerId: 'cust-1',
    reason: 'changed my mind',
    cancelledBy: 'customer',
    previousStatus: 'SHIPPED',
  };
  return createEvent({ type: OrderEventType.cancelled, aggregateId: orderId, aggregateVersion: 5, data });
}

function received(skuName: string, quantity: number): EventEnvelope {
  const data: StockReceivedData = { sku: skuName, quantity, receiptId: 'GR-1' };
  return createEvent({ type: OrderEventType.stockReceived, data });
}

async function handle(event: EventEnvelope, context = handlerContext(INVENTORY_GROUP)): Promise<void> {
  await inventory.handler(event, context);
}

async function reservationOf(orderId: string): Promise<string | undefined> {
  const [row] = await sql<{ status: string }[]>`select status from reservations where order_id = ${orderId}`;
  return row?.status;
}

async function outboxTypes(orderId: string): Promise<string[]> {
  const rows = await sql<{ type: string }[]>`
    select event->>'type' as type from outbox where event->'data'->>'orderId' = ${orderId} order by id`;
  return rows.map((r) => r.type);
}

describe('inventory group', () => {
  it('subscribes to order.shipped', () => {
    expect(inventory.types).toContain(OrderEventType.shipped);
  });

  it('order.shipped commits the reservation once: reserved drops, available stays, nothing released later', async () => {
    const a = sku();
    const b = sku();
    await setStock(sql, a, 5);
    await setStock(sql, b, 10);
    const orderId = randomUUID();
    // The same SKU on two lines: the reservation sums them.
    await handle(
      created(orderId, [
        { sku: a, quantity: 1 },
        { sku: b, quantity: 2 },
        { sku: b, quantity: 1 },
      ]),
    );
    expect(await reservationOf(orderId)).toBe('reserved');
    expect(await getStock(sql, a)).toMatchObject({ available: 4, reserved: 1 });
    expect(await getStock(sql, b)).toMatchObject({ available: 7, reserved: 3 });

    const ship = shipped(orderId);
    await handle(ship);
    expect(await reservationOf(orderId)).toBe('committed');
    expect(await getStock(sql, a)).toMatchObject({ available: 4, reserved: 0 });
    expect(await getStock(sql, b)).toMatchObject({ available: 7, reserved: 0 });

    // Redelivery, a replay from the dead-letter stream, another order.shipped: no change.
    await handle(ship);
    await handle(ship, { ...handlerContext(INVENTORY_GROUP), attempt: 1, replayCount: 1 });
    await handle(shipped(orderId));
    // A cancellation after shipping (the order rules refuse it; be safe): nothing released.
    await handle(cancelled(orderId));
    await handle(created(orderId, [{ sku: a, quantity: 1 }]));

    expect(await reservationOf(orderId)).toBe('committed');
    expect(await getStock(sql, a)).toMatchObject({ available: 4, reserved: 0 });
    expect(await getStock(sql, b)).toMatchObject({ available: 7, reserved: 0 });
    expect(await outboxTypes(orderId)).toEqual([OrderEventType.inventoryReserved]);
    const [dedup] = await sql<{ n: number }[]>`
      select count(*)::int as n from processed_events where "group" = ${INVENTORY_GROUP} and event_id = ${ship.id}`;
    expect(dedup?.n).toBe(1);
  });

  it('two order.shipped events of one order at once commit once', async () => {
    const c = sku();
    await setStock(sql, c, 6);
    const orderId = randomUUID();
    await handle(created(orderId, [{ sku: c, quantity: 4 }]));
    const ship = shipped(orderId);
    await Promise.all([handle(ship), handle(ship), handle(shipped(orderId)), handle(shipped(orderId))]);
    expect(await getStock(sql, c)).toMatchObject({ available: 2, reserved: 0 });
    expect(await reservationOf(orderId)).toBe('committed');
  });

  it('order.shipped without reserved stock does nothing and says so at debug', async () => {
    const lines: Array<{ msg: string; orderId: string; reservation: string | null }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const context = { ...handlerContext(INVENTORY_GROUP), logger };
    const d = sku();
    await setStock(sql, d, 1);

    // Reservation failed (out of stock).
    const failedOrder = randomUUID();
    await handle(created(failedOrder, [{ sku: d, quantity: 2 }]));
    expect(await reservationOf(failedOrder)).toBe('failed');
    await handle(shipped(failedOrder), context);
    expect(await reservationOf(failedOrder)).toBe('failed');

    // No reservation at all: no row appears either.
    const unknownOrder = randomUUID();
    await handle(shipped(unknownOrder), context);
    expect(await reservationOf(unknownOrder)).toBeUndefined();

    // Released (cancelled before shipping): stays released, stock untouched.
    const releasedOrder = randomUUID();
    await handle(created(releasedOrder, [{ sku: d, quantity: 1 }]));
    await handle(cancelled(releasedOrder));
    await handle(shipped(releasedOrder), context);
    expect(await reservationOf(releasedOrder)).toBe('released');

    expect(await getStock(sql, d)).toMatchObject({ available: 1, reserved: 0 });
    expect(lines.map((l) => [l.orderId, l.reservation])).toEqual([
      [failedOrder, 'failed'],
      [unknownOrder, null],
      [releasedOrder, 'released'],
    ]);
  });

  it('warehouse.stock_received adds to available stock once per event, creating an unknown SKU', async () => {
    const known = sku();
    await setStock(sql, known, 3);
    const arrival = received(known, 10);
    await handle(arrival);
    // Redelivery and a replay of the same event add nothing more; another delivery does.
    await handle(arrival);
    await handle(arrival, { ...handlerContext(INVENTORY_GROUP), attempt: 1, replayCount: 1 });
    await handle(received(known, 2));
    expect(await getStock(sql, known)).toMatchObject({ available: 15, reserved: 0 });

    const unknown = sku();
    await handle(received(unknown, 7));
    expect(await getStock(sql, unknown)).toMatchObject({ available: 7, reserved: 0 });

    // The received stock can be reserved.
    const orderId = randomUUID();
    await handle(created(orderId, [{ sku: unknown, quantity: 7 }]));
    expect(await reservationOf(orderId)).toBe('reserved');
  });

  it('warehouse.stock_received past what the stock column holds is non-retryable and changes nothing', async () => {
    const full = sku();
    await setStock(sql, full, 2_147_483_000);
    const arrival = received(full, 1000);
    await expect(handle(arrival)).rejects.toBeInstanceOf(NonRetryableError);
    await expect(handle(arrival)).rejects.toMatchObject({ code: 'STOCK_OUT_OF_RANGE' });
    expect(await getStock(sql, full)).toMatchObject({ available: 2_147_483_000 });
    // The dedup row rolled back with the failed effect.
    const [dedup] = await sql<{ n: number }[]>`
      select count(*)::int as n from processed_events where "group" = ${INVENTORY_GROUP} and event_id = ${arrival.id}`;
    expect(dedup?.n).toBe(0);
  });
});
