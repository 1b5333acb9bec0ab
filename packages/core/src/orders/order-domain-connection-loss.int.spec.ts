import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import type { Fleet } from '../fleet/fleet';
import { INVENTORY_GROUP, setStock } from '../inventory/inventory-service';
import { NOTIFICATION_GROUP } from '../notification/notification-service';
import {
  type ChargeRequest,
  type ChargeResult,
  type PaymentGateway,
  type RefundRequest,
  SimulatedPaymentGateway,
} from '../payment/payment-gateway';
import { PAYMENT_GROUP } from '../payment/payment-service';
import { getOrderView } from '../projection/order-projection';
import { SAGA_GROUP } from '../saga/order-saga';
import { createPostgres, type Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import { migrate } from '../store/migrations';
import type { OutboxRelay } from '../store/outbox-relay';
import type { GroupDefinition } from '../streams/handler';
import {
  cleanupPrefix,
  createTestDatabase,
  startFleetWithRelay,
  type TestDatabase,
  testDatabaseUrl,
  testRedisUrl,
  uniquePrefix,
  waitFor,
  waitForOrderDomainSettled,
} from '../testing/index';
import { OrderEventType } from './events';
import { foldOrder, type OrderItem } from './order';
import { createOrderGroups } from './order-groups';
import { OrderService } from './order-service';

/**
 * Issue 5: Postgres backends terminated (`pg_terminate_backend`) while the order domain's
 * consumer groups, the outbox relay and the order API write: no effect without its
 * (group, event id) record, no record without its effect, nobody charged twice, stock adds
 * up, and everything settles without restarting anything (also after a spell in which
 * the database refuses every new connection).
 */

const ORDERS = 300;
const SKUS = 10;
const STOCK_PER_SKU = 40; // 400 units for 600 ordered: some orders run out of stock
const KILLS = 16;

/** Records what the payment service asked the gateway, to count real charges per order. */
class RecordingGateway implements PaymentGateway {
  readonly charges: Array<{ orderId: string; key: string; result: ChargeResult }> = [];
  readonly refunds: Array<{ chargeId: string; key: string; refundId: string }> = [];
  private readonly inner = new SimulatedPaymentGateway();

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    const result = await this.inner.charge(request);
    this.charges.push({ orderId: request.orderId, key: request.idempotencyKey, result });
    return result;
  }

  async refund(request: RefundRequest): Promise<{ refundId: string }> {
    const result = await this.inner.refund(request);
    this.refunds.push({ chargeId: request.chargeId, key: request.idempotencyKey, refundId: result.refundId });
    return result;
  }
}

interface PlannedOrder {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  /** 'early': cancelled by the customer right after placing; 'late': once it settled. */
  cancel?: 'early' | 'late';
}

let db: TestDatabase;
let sql: Sql; // the consumer groups' pool
let api: Sql; // the order API's pool
let check: Sql; // the test's own reads
let admin: postgres.Sql; // on the server's own database: kills the test database's backends
let fleet: Fleet;
let relay: OutboxRelay;
let groups: GroupDefinition[];
const gateway = new RecordingGateway();
const failures: Record<string, number> = {};
const deadLettered: string[] = [];
let relayWarnings = 0; // failed relay rounds and lock attempts
const relayLogger = pino(
  { level: 'warn' },
  {
    write: () => {
      relayWarnings += 1;
    },
  },
);
const prefix = uniquePrefix('pgkill');
const redisUrl = testRedisUrl();
const skus = Array.from({ length: SKUS }, (_, i) => `SKU-${i}-${randomUUID().slice(0, 6)}`);

const totalFailures = (): number => Object.values(failures).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  db = await createTestDatabase('sf_pgkill_domain');
  sql = createPostgres(db.url, { max: 10, applicationName: 'sf-groups' });
  api = createPostgres(db.url, { max: 5, applicationName: 'sf-api' });
  check = createPostgres(db.url, { max: 2, applicationName: 'sf-check' });
  admin = postgres(testDatabaseUrl(), { max: 1, onnotice: () => undefined });
  await migrate(sql);
  for (const sku of skus) await setStock(sql, sku, STOCK_PER_SKU);
  groups = createOrderGroups({ sql, gateway });
  ({ fleet, relay } = await startFleetWithRelay({
    redisUrl,
    prefix,
    groups,
    // A killed connection is a transient failure: enough quick attempts to ride out the
    // outage below, which lasts until handlers have failed a few times.
    retry: { maxAttempts: 40, baseDelayMs: 10, maxDelayMs: 200 },
    observer: {
      failed: (group) => {
        failures[group] = (failures[group] ?? 0) + 1;
      },
      deadLettered: (group, reason) => {
        deadLettered.push(`${group}: ${reason}`);
      },
    },
    sql,
    databaseUrl: db.url,
    relayLogger,
  }));
});

afterAll(async () => {
  await admin?.unsafe(`alter database "${db.name}" with allow_connections true`).catch(() => undefined);
  await relay?.close();
  await fleet?.close();
  await Promise.all([sql?.end({ timeout: 5 }), api?.end({ timeout: 5 }), check?.end({ timeout: 5 })]);
  await admin?.end({ timeout: 5 });
  await db?.drop();
  await cleanupPrefix(redisUrl, prefix);
});

/** Terminates every backend of the test database. */
async function terminateAll(): Promise<{ killed: number; busy: number }> {
  const [row] = await admin<{ killed: number; busy: number }[]>`
    select count(*)::int as killed, count(*) filter (where state <> 'idle')::int as busy
    from (select pg_terminate_backend(pid), state from pg_stat_activity
          where datname = ${db.name} and pid <> pg_backend_pid()) t`;
  return row ?? { killed: 0, busy: 0 };
}

/** Dedup rows recorded so far: the measure of handling progress. */
async function progress(): Promise<number> {
  const [row] = await check<{ n: number }[]>`select count(*)::int as n from processed_events`;
  return row?.n ?? 0;
}

function plan(): PlannedOrder[] {
  return Array.from({ length: ORDERS }, (_, i) => ({
    orderId: randomUUID(),
    // Every 10th customer's card is declined by the simulator.
    customerId: i % 10 === 3 ? `decline-${i}` : `cust-${i % 37}`,
    items: [{ sku: skus[i % SKUS] as string, quantity: 1 + (i % 3), unitPrice: 100 + i }],
    ...(i % 20 === 11 ? { cancel: 'early' as const } : i % 10 === 7 ? { cancel: 'late' as const } : {}),
  }));
}

/** The API side: retried by the caller while its connection is being killed. */
async function place(orders: OrderService, o: PlannedOrder): Promise<void> {
  await waitFor(
    () =>
      orders.create({ orderId: o.orderId, customerId: o.customerId, items: o.items }).then(
        () => true,
        (err: unknown) => {
          // An earlier attempt committed and only its answer was lost.
          if (err instanceof ConcurrencyError) return true;
          throw err;
        },
      ),
    { timeoutMs: 20_000, message: `order ${o.orderId} placed` },
  );
}

async function cancelByCustomer(orders: OrderService, orderId: string): Promise<void> {
  await waitFor(
    async () => {
      const order = await orders.load(orderId);
      if (order?.status === 'CANCELLED') return true;
      await orders.cancel(orderId, 'changed my mind', 'customer');
      return true;
    },
    { timeoutMs: 20_000, message: `order ${orderId} cancelled by the customer` },
  );
}

async function runInPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item);
      }
    }),
  );
}

interface Row {
  event: EventEnvelope;
}

describe('order domain with Postgres backends terminated during handling', () => {
  it('keeps every effect with its dedup record, charges once, and settles without a restart', async () => {
    const orders = new OrderService(api);
    const planned = plan();
    let placed = 0;
    let clientDone = false;
    const kills: Array<{ killed: number; busy: number }> = [];
    const outage = { handlerFailures: 0, relayWarnings: 0 };

    // The customers: place every order (a few cancel at once), then cancel some settled ones.
    const client = (async () => {
      try {
        await runInPool(planned, 8, async (o) => {
          await place(orders, o);
          placed += 1;
          if (o.cancel === 'early') await cancelByCustomer(orders, o.orderId);
        });
        await runInPool(
          planned.filter((o) => o.cancel === 'late'),
          4,
          async (o) => {
            await waitFor(
              async () => ['PAID', 'CANCELLED'].includes((await getOrderView(check, o.orderId))?.status ?? ''),
              { timeoutMs: 20_000, message: `order ${o.orderId} settled before the customer cancels` },
            );
            await cancelByCustomer(orders, o.orderId);
          },
        );
      } finally {
        clientDone = true;
      }
    })();

    // The saboteur: terminate every backend, at varying points of progress, while work is
    // in flight; once, keep the database closed to new connections until the fleet noticed.
    const saboteur = (async () => {
      for (let round = 0; round < KILLS && !clientDone; round++) {
        const target = (await waitFor(() => progress().catch(() => undefined))) + 15 + ((round * 37) % 70);
        await waitFor(async () => clientDone || (await progress()) >= target, {
          timeoutMs: 20_000,
          message: `handling progress before kill ${round}`,
        });
        if (clientDone) break;
        if (round === KILLS / 2) {
          await admin.unsafe(`alter database "${db.name}" with allow_connections false`);
          const before = { handlers: totalFailures(), relay: relayWarnings };
          kills.push(await terminateAll());
          try {
            // Until the fleet noticed: handlers failing (when a backlog was waiting), and the
            // relay failing its rounds (it polls every 20 ms).
            await waitFor(() => totalFailures() >= before.handlers + 10 || relayWarnings >= before.relay + 10, {
              message: 'the fleet failing during the outage',
            });
            outage.handlerFailures = totalFailures() - before.handlers;
            outage.relayWarnings = relayWarnings - before.relay;
          } finally {
            await admin.unsafe(`alter database "${db.name}" with allow_connections true`);
          }
        } else {
          kills.push(await terminateAll());
        }
      }
    })();

    await Promise.all([client, saboteur]);
    expect(placed).toBe(ORDERS);
    expect(kills.length).toBeGreaterThanOrEqual(10);
    // Backends were busy (in a query or a transaction) when killed, and handlers saw it.
    expect(kills.reduce((n, k) => n + k.busy, 0)).toBeGreaterThan(0);
    expect(totalFailures()).toBeGreaterThan(0);
    expect(outage.handlerFailures + outage.relayWarnings).toBeGreaterThanOrEqual(10);

    // Everything settles: every order final, read model and sagas caught up, outbox drained,
    // every group's pending list and retry queue empty.
    await waitForOrderDomainSettled(
      {
        sql: check,
        redis: fleet.redis,
        keys: fleet.keys,
        groups: groups.map((g) => g.group),
        retryCounts: (group) => fleet.retryQueues.counts(group),
        orders: ORDERS,
      },
      { timeoutMs: 20_000 },
    );
    expect(deadLettered).toEqual([]);
    expect(await fleet.deadLetters.length()).toBe(0);

    // ---- Load the final state. ----
    const outbox = (await check<Row[]>`select event from outbox order by id`).map((r) => r.event);
    const byId = new Map(outbox.map((e) => [e.id, e]));
    expect(byId.size).toBe(outbox.length); // no event enqueued twice
    const stored = await check<{ event_id: string }[]>`select event_id from events`;
    expect(stored.filter((e) => !byId.has(e.event_id))).toEqual([]); // every stored event went out
    const dedup = new Map<string, Set<string>>();
    for (const r of await check<
      { group: string; event_id: string }[]
    >`select "group", event_id from processed_events`) {
      if (!dedup.has(r.group)) dedup.set(r.group, new Set());
      dedup.get(r.group)?.add(r.event_id);
    }
    const handled = (group: string): Set<string> => dedup.get(group) ?? new Set();
    const causedBy = (type: string): Map<string, EventEnvelope[]> => {
      const m = new Map<string, EventEnvelope[]>();
      for (const e of outbox.filter((x) => x.type === type)) {
        const cause = e.metadata.causationId ?? '';
        m.set(cause, [...(m.get(cause) ?? []), e]);
      }
      return m;
    };
    const ofType = (...types: string[]) => outbox.filter((e) => types.includes(e.type));
    const orderIdOf = (e: EventEnvelope) => (e.data as { orderId: string }).orderId;

    // Every dedup row is for a real event, and every event a group handles has its row,
    // exactly once (the projection is idempotent by version and keeps none).
    for (const g of groups) {
      const rows = handled(g.group);
      expect(
        [...rows].filter((id) => !byId.has(id)),
        `${g.group}: dedup rows without an event`,
      ).toEqual([]);
      const expected = outbox.filter((e) => !g.types || g.types.includes(e.type)).map((e) => e.id);
      if (g.group === 'order-projection') {
        expect(rows.size).toBe(0);
        continue;
      }
      expect(rows.size, `${g.group}: one dedup row per event`).toBe(expected.length);
      expect(
        expected.filter((id) => !rows.has(id)),
        `${g.group}: events without a dedup row`,
      ).toEqual([]);
    }

    // ---- Inventory: reservations and releases match its dedup rows one to one. ----
    const reservations = new Map(
      (
        await check<{ order_id: string; status: string; items: Array<{ sku: string; quantity: number }> }[]>`
          select order_id, status, items from reservations`
      ).map((r) => [r.order_id, r]),
    );
    const reservedBy = causedBy(OrderEventType.inventoryReserved);
    const failedBy = causedBy(OrderEventType.inventoryReservationFailed);
    const releasedBy = causedBy(OrderEventType.inventoryReleased);
    for (const created of ofType(OrderEventType.created)) {
      const r = reservations.get(orderIdOf(created));
      const outcomes = [...(reservedBy.get(created.id) ?? []), ...(failedBy.get(created.id) ?? [])];
      if (r?.status === 'void')
        expect(outcomes).toEqual([]); // cancelled before it was handled
      else {
        expect(r, `reservation of ${orderIdOf(created)}`).toBeDefined();
        expect(outcomes.map((e) => e.type)).toEqual([
          r?.status === 'failed' ? OrderEventType.inventoryReservationFailed : OrderEventType.inventoryReserved,
        ]);
      }
    }
    for (const [cause, events] of [...reservedBy, ...failedBy, ...releasedBy]) {
      expect(handled(INVENTORY_GROUP).has(cause), `inventory event caused by ${cause} without its dedup row`).toBe(
        true,
      );
      expect(events).toHaveLength(1);
    }
    for (const cancelled of ofType(OrderEventType.cancelled)) {
      const released = releasedBy.get(cancelled.id) ?? [];
      if (released.length > 0) expect(reservations.get(orderIdOf(cancelled))?.status).toBe('released');
    }
    for (const r of reservations.values()) {
      if (r.status === 'released') {
        const releases = ofType(OrderEventType.inventoryReleased).filter((e) => orderIdOf(e) === r.order_id);
        expect(releases, `releases of ${r.order_id}`).toHaveLength(1);
      }
    }
    // Stock adds up: nothing created or lost, and `reserved` is exactly what live reservations hold.
    const stock = await check<{ sku: string; available: number; reserved: number }[]>`
      select sku, available, reserved from inventory`;
    for (const s of stock) {
      expect(s.available + s.reserved, s.sku).toBe(STOCK_PER_SKU);
      const held = [...reservations.values()]
        .filter((r) => r.status === 'reserved')
        .flatMap((r) => r.items)
        .filter((l) => l.sku === s.sku)
        .reduce((n, l) => n + l.quantity, 0);
      expect(s.reserved, s.sku).toBe(held);
    }

    // ---- Final order states, payments and the gateway: charged at most once, refunds match. ----
    const payments = new Map(
      (
        await check<
          {
            order_id: string;
            status: string;
            charge_id: string | null;
            refund_id: string | null;
            idempotency_key: string;
          }[]
        >`
          select order_id, status, charge_id, refund_id, idempotency_key from payments`
      ).map((p) => [p.order_id, p]),
    );
    const succeededBy = causedBy(OrderEventType.paymentSucceeded);
    const paymentFailedBy = causedBy(OrderEventType.paymentFailed);
    const refundedBy = causedBy(OrderEventType.paymentRefunded);
    for (const [cause, events] of [...succeededBy, ...paymentFailedBy, ...refundedBy]) {
      expect(handled(PAYMENT_GROUP).has(cause), `payment event caused by ${cause} without its dedup row`).toBe(true);
      expect(events).toHaveLength(1);
    }
    const outcomes = { paid: 0, outOfStock: 0, declined: 0, cancelledByCustomer: 0, refunded: 0 };
    for (const o of planned) {
      const view = await getOrderView(check, o.orderId);
      expect(view, o.orderId).toEqual(foldOrder(await loadEvents(check, o.orderId)));
      const payment = payments.get(o.orderId);
      const reservation = reservations.get(o.orderId);
      const charged = new Set(
        gateway.charges
          .filter((c) => c.orderId === o.orderId && c.result.status === 'succeeded')
          .map((c) => (c.result.status === 'succeeded' ? c.result.chargeId : '')),
      );
      expect(charged.size, `charges of ${o.orderId}`).toBeLessThanOrEqual(1);
      const [chargeId] = [...charged];
      if (view?.status === 'PAID') {
        outcomes.paid += 1;
        expect(o.cancel).not.toBe('late'); // a customer cancels every settled 'late' order
        expect(payment).toMatchObject({ status: 'succeeded', charge_id: chargeId });
        expect(reservation?.status).toBe('reserved');
      } else {
        expect(view?.status, o.orderId).toBe('CANCELLED');
        expect(reservation?.status, o.orderId).not.toBe('reserved');
        // Charged (before or despite the cancellation): then refunded once, and recorded.
        if (chargeId) {
          outcomes.refunded += 1;
          expect(payment).toMatchObject({ status: 'refunded', charge_id: chargeId });
          const refunds = new Set(gateway.refunds.filter((r) => r.chargeId === chargeId).map((r) => r.refundId));
          expect(refunds.size, `refunds of ${o.orderId}`).toBe(1);
          expect(payment?.refund_id).toBe([...refunds][0]);
        } else {
          expect(payment?.status ?? 'none', o.orderId).not.toBe('succeeded');
        }
        if (view?.cancelledBy === 'customer') outcomes.cancelledByCustomer += 1;
        else if (view?.cancellationReason?.startsWith('out_of_stock')) outcomes.outOfStock += 1;
        else if (view?.cancellationReason?.startsWith('payment_failed')) outcomes.declined += 1;
      }
      // Every payment record was written by a handled event (charge, void or refund path).
      if (payment) {
        // The charge path keys the record by the inventory.reserved event, the void path by
        // `void:<order.cancelled id>` (a void record a late charge turned into a refund).
        const key = payment.idempotency_key.replace(/^void:/, '');
        expect(handled(PAYMENT_GROUP).has(key), `payment of ${o.orderId}`).toBe(true);
      }
    }
    // Every successful charge belongs to a charge request the payment group recorded.
    for (const c of gateway.charges) expect(handled(PAYMENT_GROUP).has(c.key)).toBe(true);
    expect(outcomes.paid).toBeGreaterThan(0);
    expect(outcomes.outOfStock).toBeGreaterThan(0);
    expect(outcomes.declined).toBeGreaterThan(0);
    expect(outcomes.cancelledByCustomer).toBeGreaterThan(0);
    expect(outcomes.refunded).toBeGreaterThan(0);

    // ---- Notifications: one record per handled event, none without. ----
    const notified = await check<{ event_id: string; kind: string }[]>`select event_id, kind from notifications`;
    expect(new Set(notified.map((n) => n.event_id))).toEqual(handled(NOTIFICATION_GROUP));
    for (const n of notified) {
      const type = byId.get(n.event_id)?.type;
      expect(n.kind).toBe(type === OrderEventType.confirmed ? 'order_confirmed' : 'order_cancelled');
    }

    // ---- Saga: every transition from a handled event, none applied twice; its commands once. ----
    const sagas = await check<{ order_id: string; state: string; history: Array<{ eventId: string }> }[]>`
      select order_id, state, history from order_sagas`;
    expect(sagas).toHaveLength(ORDERS);
    for (const s of sagas) {
      const seen = s.history.map((h) => h.eventId);
      expect(new Set(seen).size, `saga ${s.order_id} history`).toBe(seen.length);
      expect(seen.filter((id) => !handled(SAGA_GROUP).has(id))).toEqual([]);
      const status = (await getOrderView(check, s.order_id))?.status;
      expect(s.state, s.order_id).toBe(status === 'PAID' ? 'completed' : 'cancelled');
    }
    for (const type of [OrderEventType.confirmed, OrderEventType.paid, OrderEventType.cancelled]) {
      for (const [cause, events] of causedBy(type)) {
        if (!byId.has(cause)) continue; // a customer's command, not caused by an event
        expect(handled(SAGA_GROUP).has(cause), `${type} caused by ${cause} without the saga's dedup row`).toBe(true);
        expect(events).toHaveLength(1);
      }
    }
    const paidBy = causedBy(OrderEventType.paid);
    for (const succeeded of ofType(OrderEventType.paymentSucceeded)) {
      const status = (await getOrderView(check, orderIdOf(succeeded)))?.status;
      if (status === 'PAID') expect(paidBy.get(succeeded.id), `order.paid from ${succeeded.id}`).toHaveLength(1);
    }
  }, 55_000);
});
