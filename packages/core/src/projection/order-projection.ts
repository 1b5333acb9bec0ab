import { ValidationError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import { ORDERS_STREAM, OrderEventType } from '../orders/events';
import { evolve, foldOrder, isOrderEvent, type Order, type OrderStatus } from '../orders/order';
import { lockKeyForTransaction, type Queryable, type Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import type { GroupDefinition } from '../streams/handler';

export const PROJECTION_GROUP = 'order-projection';

export type ProjectionOutcome = 'applied' | 'rebuilt' | 'skipped';

interface ViewRow {
  id: string;
  customer_id: string;
  status: string;
  total: string | number;
  currency: string;
  items: Order['items'];
  cancellation_reason: string | null;
  cancelled_by: string | null;
  payment_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/**
 * Applies one order event to `orders_view`, by aggregate version: an event at or below the
 * view's version is a duplicate (skipped); the next version is applied; an event ahead of
 * its predecessor (a retry overtook it) rebuilds the row from the event store, which holds
 * every committed event, so the view never ends up with a gap.
 */
export async function applyToReadModel(sql: Sql, event: EventEnvelope): Promise<ProjectionOutcome> {
  const id = event.aggregateId;
  const version = event.aggregateVersion;
  if (!isOrderEvent(event) || id === undefined || version === undefined) return 'skipped';
  return (await sql.begin(async (tx) => {
    // Serialises writers of one order (the row may not exist yet, so no row lock to take).
    await lockKeyForTransaction(tx, `orders_view:${id}`);
    const [row] = await tx<ViewRow[]>`select * from orders_view where id = ${id}`;
    const current = row?.version ?? 0;
    if (version <= current) return 'skipped';
    if (version === current + 1 && (row || event.type === OrderEventType.created)) {
      const next = evolve(row ? rowToOrder(row) : undefined, event);
      if (next) await upsert(tx, next);
      return 'applied';
    }
    const rebuilt = foldOrder(await loadEvents(tx, id));
    if (!rebuilt) return 'skipped';
    await upsert(tx, rebuilt);
    return 'rebuilt';
  })) as ProjectionOutcome;
}

/** Recomputes one order's row from its events (repair, or after a projection change). */
export async function rebuildOrderView(sql: Queryable, orderId: string): Promise<Order | undefined> {
  const order = foldOrder(await loadEvents(sql, orderId));
  if (order) await upsert(sql, order, true);
  return order;
}

async function upsert(sql: Queryable, o: Order, force = false): Promise<void> {
  await sql`
    insert into orders_view (id, customer_id, status, total, currency, items, cancellation_reason, cancelled_by,
                             payment_id, version, created_at, updated_at)
    values (${o.id}, ${o.customerId}, ${o.status}, ${o.total}, ${o.currency}, ${sql.json(o.items as never)},
            ${o.cancellationReason ?? null}, ${o.cancelledBy ?? null}, ${o.paymentId ?? null}, ${o.version},
            ${o.createdAt}, ${o.updatedAt})
    on conflict (id) do update set
      customer_id = excluded.customer_id, status = excluded.status, total = excluded.total,
      currency = excluded.currency, items = excluded.items, cancellation_reason = excluded.cancellation_reason,
      cancelled_by = excluded.cancelled_by, payment_id = excluded.payment_id, version = excluded.version,
      created_at = excluded.created_at, updated_at = excluded.updated_at
    where ${force} or orders_view.version < excluded.version`;
}

function rowToOrder(row: ViewRow): Order {
  return {
    id: row.id,
    customerId: row.customer_id,
    status: row.status as OrderStatus,
    items: row.items,
    total: Number(row.total),
    currency: row.currency,
    ...(row.payment_id ? { paymentId: row.payment_id } : {}),
    ...(row.cancellation_reason ? { cancellationReason: row.cancellation_reason } : {}),
    ...(row.cancelled_by ? { cancelledBy: row.cancelled_by } : {}),
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export interface ListOrdersQuery {
  customerId?: string;
  status?: OrderStatus;
  /** Default 50, at most 200. */
  limit?: number;
  /** `nextCursor` of the previous page; anything else is a ValidationError (field `cursor`). */
  cursor?: string;
}

export interface OrderPage {
  orders: Order[];
  nextCursor?: string;
}

/** One order from the read model (eventually consistent with the event store). */
export async function getOrderView(sql: Queryable, orderId: string): Promise<Order | undefined> {
  const [row] = await sql<ViewRow[]>`select * from orders_view where id = ${orderId}`;
  return row ? rowToOrder(row) : undefined;
}

/** Orders newest first, filtered by customer and/or status, keyset-paginated. */
export async function listOrders(sql: Queryable, query: ListOrdersQuery = {}): Promise<OrderPage> {
  const limit = Math.min(Math.max(query.limit ?? 50, 1), 200);
  const after = query.cursor ? decodeCursor(query.cursor) : undefined;
  const rows = await sql<ViewRow[]>`
    select * from orders_view
    where true
      ${query.customerId === undefined ? sql`` : sql`and customer_id = ${query.customerId}`}
      ${query.status === undefined ? sql`` : sql`and status = ${query.status}`}
      ${after ? sql`and (created_at, id) < (${after.createdAt}::timestamptz, ${after.id})` : sql``}
    order by created_at desc, id desc
    limit ${limit + 1}`;
  const orders = rows.slice(0, limit).map(rowToOrder);
  const last = orders[orders.length - 1];
  return rows.length > limit && last
    ? { orders, nextCursor: encodeCursor({ createdAt: last.createdAt, id: last.id }) }
    : { orders };
}

function encodeCursor(c: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

/** `createdAt` as `encodeCursor` writes it: `Date#toISOString()` of a year from 0001 to 9999. */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Reads a cursor handed out as `nextCursor`. Anything else is refused (ValidationError on
 * `cursor`) rather than ignored, which would serve page one again, or passed on to the query,
 * which cannot cast a time it does not understand (or store a NUL in a string).
 */
function decodeCursor(cursor: string): { createdAt: string; id: string } {
  let c: { createdAt?: unknown; id?: unknown } | undefined;
  try {
    c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as typeof c;
  } catch {
    c = undefined;
  }
  const createdAt = c?.createdAt;
  const id = c?.id;
  const valid =
    typeof createdAt === 'string' &&
    CURSOR_TIME.test(createdAt) &&
    !createdAt.startsWith('0000') &&
    !Number.isNaN(Date.parse(createdAt)) &&
    new Date(createdAt).toISOString() === createdAt &&
    typeof id === 'string' &&
    id.length > 0 &&
    !id.includes('\u0000');
  if (!valid) {
    throw new ValidationError('cursor is not a nextCursor handed out by a previous page', [
      { field: 'cursor', message: 'not a cursor from a previous page' },
    ]);
  }
  return { createdAt, id };
}

export interface ProjectionGroupOptions {
  sql: Sql;
  group?: string;
}

/** The read-model projection as a consumer group. Idempotent by aggregate version. */
export function createProjectionGroup(options: ProjectionGroupOptions): GroupDefinition {
  return {
    group: options.group ?? PROJECTION_GROUP,
    stream: ORDERS_STREAM,
    types: [
      OrderEventType.created,
      OrderEventType.confirmed,
      OrderEventType.paid,
      OrderEventType.cancelled,
      OrderEventType.shipped,
      OrderEventType.delivered,
    ],
    handler: async (event) => {
      await applyToReadModel(options.sql, event);
    },
  };
}
