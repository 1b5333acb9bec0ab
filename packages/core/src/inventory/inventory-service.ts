import { DomainError, NonRetryableError } from '../errors/index';
import { createEvent, type EventEnvelope } from '../events/envelope';
import type { Logger } from '../logging/index';
import {
  type InventoryReleasedData,
  type InventoryReservationFailedData,
  type InventoryReservedData,
  ORDERS_STREAM,
  type OrderCancelledData,
  type OrderCreatedData,
  OrderEventType,
  type OrderShippedData,
  type StockReceivedData,
} from '../orders/events';
import type { Queryable, Sql, TransactionSql } from '../store/client';
import { enqueueOutbox } from '../store/outbox';
import { markProcessed } from '../store/processed-events';
import type { GroupDefinition } from '../streams/handler';

export const INVENTORY_GROUP = 'inventory';

export interface StockLine {
  sku: string;
  quantity: number;
}

export interface StockLevel {
  sku: string;
  available: number;
  reserved: number;
}

/** The most units a SKU holds, available and reserved together (a Postgres integer). */
export const MAX_STOCK = 2_147_483_647;

/**
 * Sets a SKU's available stock (seeding, a stock count). With the units its orders hold, it
 * must fit `MAX_STOCK` (a `DomainError`, `STOCK_OUT_OF_RANGE`, naming the most it may be):
 * those units come back to `available` when their orders are cancelled.
 */
export async function setStock(sql: Queryable, sku: string, available: number): Promise<void> {
  try {
    await sql`
      insert into inventory (sku, available) values (${sku}, ${available})
      on conflict (sku) do update set available = excluded.available, updated_at = now()`;
  } catch (err) {
    if (!tooMuchStock(err)) throw err;
    const [row] = await sql<{ reserved: number }[]>`select reserved from inventory where sku = ${sku}`;
    const reserved = row?.reserved ?? 0;
    const max = MAX_STOCK - reserved;
    throw new DomainError(
      'STOCK_OUT_OF_RANGE',
      `available stock of ${sku} can be at most ${max}: ${MAX_STOCK} less the ${reserved} units its orders hold`,
      { cause: err, details: { field: 'available', max } },
    );
  }
}

export async function getStock(sql: Queryable, sku: string): Promise<StockLevel | undefined> {
  const [row] = await sql<StockLevel[]>`select sku, available, reserved from inventory where sku = ${sku}`;
  return row;
}

/** Sums quantities per SKU and sorts by SKU, so row locks are always taken in one order. */
function normalise(lines: readonly StockLine[]): StockLine[] {
  const bySku = new Map<string, number>();
  for (const l of lines) bySku.set(l.sku, (bySku.get(l.sku) ?? 0) + l.quantity);
  return [...bySku.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([sku, quantity]) => ({ sku, quantity }));
}

function follow(cause: EventEnvelope, type: string, data: unknown): EventEnvelope {
  return createEvent({
    type,
    data,
    aggregateId: cause.aggregateId ?? (data as { orderId: string }).orderId,
    metadata: { correlationId: cause.metadata.correlationId ?? cause.id, causationId: cause.id },
  });
}

/**
 * Reserves every line of an order or none (row locks in SKU order, so two orders never
 * deadlock). Out of stock is an outcome: it emits `inventory.reservation_failed`.
 */
async function reserve(tx: TransactionSql, event: EventEnvelope<string, OrderCreatedData>): Promise<void> {
  const order = event.data;
  // A cancellation that overtook this event left a 'void' row: reserve nothing.
  const [existing] = await tx`select status from reservations where order_id = ${order.orderId} for update`;
  if (existing) return;
  const lines = normalise(order.items);
  const skus = lines.map((l) => l.sku);
  const rows = await tx<StockLevel[]>`
    select sku, available, reserved from inventory where sku = any(${skus}::text[]) order by sku for update`;
  const stock = new Map(rows.map((r) => [r.sku, r]));
  const unavailable = lines
    .map((l) => ({ sku: l.sku, requested: l.quantity, available: stock.get(l.sku)?.available ?? 0 }))
    .filter((u) => u.available < u.requested);
  if (unavailable.length > 0) {
    await tx`insert into reservations (order_id, status, items) values (${order.orderId}, 'failed', ${tx.json(lines as never)})`;
    const data: InventoryReservationFailedData = { orderId: order.orderId, reason: 'out_of_stock', unavailable };
    await enqueueOutbox(tx, [
      { stream: ORDERS_STREAM, event: follow(event, OrderEventType.inventoryReservationFailed, data) },
    ]);
    return;
  }
  for (const l of lines) {
    await tx`
      update inventory set available = available - ${l.quantity}, reserved = reserved + ${l.quantity}, updated_at = now()
      where sku = ${l.sku}`;
  }
  await tx`insert into reservations (order_id, status, items) values (${order.orderId}, 'reserved', ${tx.json(lines as never)})`;
  const data: InventoryReservedData = {
    orderId: order.orderId,
    customerId: order.customerId,
    items: lines,
    total: order.total,
    currency: order.currency ?? 'EUR',
  };
  await enqueueOutbox(tx, [{ stream: ORDERS_STREAM, event: follow(event, OrderEventType.inventoryReserved, data) }]);
}

/** Returns reserved stock of a cancelled order; remembers the cancellation when nothing was reserved yet. */
async function release(tx: TransactionSql, event: EventEnvelope<string, OrderCancelledData>): Promise<void> {
  const orderId = event.data.orderId;
  const [row] = await tx<{ status: string; items: StockLine[] }[]>`
    select status, items from reservations where order_id = ${orderId} for update`;
  if (!row) {
    await tx`insert into reservations (order_id, status, items) values (${orderId}, 'void', '[]'::jsonb)`;
    return;
  }
  if (row.status !== 'reserved') return;
  const lines = normalise(row.items);
  for (const l of lines) {
    await tx`
      update inventory set available = available + ${l.quantity}, reserved = reserved - ${l.quantity}, updated_at = now()
      where sku = ${l.sku}`;
  }
  await tx`update reservations set status = 'released', updated_at = now() where order_id = ${orderId}`;
  const data: InventoryReleasedData = { orderId, items: lines };
  await enqueueOutbox(tx, [{ stream: ORDERS_STREAM, event: follow(event, OrderEventType.inventoryReleased, data) }]);
}

/**
 * Commits the reservation of a shipped order: its units left the warehouse, so `reserved`
 * drops by them and `available` stays (it dropped when they were reserved). 'committed' is
 * final: a late or replayed `order.cancelled` then releases nothing, and a repeated
 * `order.shipped` commits nothing.
 */
async function commit(
  tx: TransactionSql,
  event: EventEnvelope<string, OrderShippedData>,
  logger: Logger,
): Promise<void> {
  const orderId = event.data.orderId;
  const [row] = await tx<{ status: string; items: StockLine[] }[]>`
    select status, items from reservations where order_id = ${orderId} for update`;
  if (row?.status !== 'reserved') {
    // An order ships only once paid, so only after a reservation; anything else holds no stock.
    logger.debug(
      { orderId, reservation: row?.status ?? null },
      'order shipped without reserved stock: nothing to commit',
    );
    return;
  }
  for (const l of normalise(row.items)) {
    await tx`
      update inventory set reserved = reserved - ${l.quantity}, updated_at = now()
      where sku = ${l.sku}`;
  }
  await tx`update reservations set status = 'committed', updated_at = now() where order_id = ${orderId}`;
}

/** Postgres: a value does not fit its column (here `available`, an integer). */
const NUMERIC_VALUE_OUT_OF_RANGE = '22003';
/** Postgres: a check constraint failed (here `inventory_total_fits`). */
const CHECK_VIOLATION = '23514';

function tooMuchStock(err: unknown): boolean {
  const e = err as { code?: unknown; constraint_name?: unknown };
  return (
    e.code === NUMERIC_VALUE_OUT_OF_RANGE ||
    (e.code === CHECK_VIOLATION && e.constraint_name === 'inventory_total_fits')
  );
}

/**
 * Adds received goods to a SKU's available stock (a SKU not seen before starts at zero).
 * A sum past what the column holds fails the same way on every attempt: not retried.
 */
async function receive(tx: TransactionSql, event: EventEnvelope<string, StockReceivedData>): Promise<void> {
  const { sku, quantity } = event.data;
  try {
    await tx`
      insert into inventory (sku, available) values (${sku}, ${quantity})
      on conflict (sku) do update set available = inventory.available + excluded.available, updated_at = now()`;
  } catch (err) {
    if (!tooMuchStock(err)) throw err;
    throw new NonRetryableError(`available stock of ${sku} plus ${quantity} received is more than can be stored`, {
      cause: err,
      code: 'STOCK_OUT_OF_RANGE',
    });
  }
}

export interface InventoryGroupOptions {
  sql: Sql;
  group?: string;
}

/**
 * The inventory service as a consumer group: reserves stock on `order.created`, releases it
 * on `order.cancelled`, commits it (takes it out of `reserved`) on `order.shipped`, and adds
 * received goods on `warehouse.stock_received`. Idempotent: the (group, event id) record
 * commits with the effect. Each order handler locks the order's reservation row first, so
 * the events of one order apply one at a time.
 */
export function createInventoryGroup(options: InventoryGroupOptions): GroupDefinition {
  const group = options.group ?? INVENTORY_GROUP;
  return {
    group,
    stream: ORDERS_STREAM,
    types: [OrderEventType.created, OrderEventType.cancelled, OrderEventType.shipped, OrderEventType.stockReceived],
    handler: async (event, context) => {
      await options.sql.begin(async (tx) => {
        if (!(await markProcessed(tx, group, event.id))) return;
        if (event.type === OrderEventType.created) await reserve(tx, event as EventEnvelope<string, OrderCreatedData>);
        else if (event.type === OrderEventType.cancelled) {
          await release(tx, event as EventEnvelope<string, OrderCancelledData>);
        } else if (event.type === OrderEventType.shipped) {
          await commit(tx, event as EventEnvelope<string, OrderShippedData>, context.logger);
        } else if (event.type === OrderEventType.stockReceived) {
          await receive(tx, event as EventEnvelope<string, StockReceivedData>);
        }
      });
    },
  };
}
