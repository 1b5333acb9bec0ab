import { randomUUID } from 'node:crypto';
import {
  type EventEnvelope,
  foldOrder,
  getOrderView,
  loadEvents,
  type OrderItem,
  OrderService,
  setStock,
} from '@streamfleet/core';
import {
  type MigratedTestDatabase,
  migratedTestDatabase,
  startWebhookRecorder,
  TestRedisServer,
  type WebhookRecorder,
  waitFor,
  waitForOrderDomainSettled,
} from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOMAIN_GROUPS } from '../../src/groups/index';
import { FleetHarness } from '../support/fleet-harness';
import { PaymentGatewayServer } from '../support/payment-gateway-server';
import type { WorkerProcess } from '../support/worker-process';

/**
 * The order domain in real worker processes (all five groups and the outbox relay) while
 * their Redis is SIGKILLed and restarted mid-flow: orders keep being placed (Postgres is
 * up), effects committed during the outage lose their XACK or retry job, the relay cannot
 * publish. Once Redis is back, every order must reach its one right outcome, with each
 * effect exactly once: nobody charged twice, stock adding up, the read model equal to the
 * event store, nothing pending, nothing dead-lettered, no worker crashed.
 */

const ORDERS = 300;
/** Placed before the kill; the rest are placed while Redis is down (their events wait in the outbox). */
const BEFORE_KILL = 150;
/** Orders settled before Redis is killed, so the kill lands mid-flow. */
const SETTLED_BEFORE_KILL = 30;
const PLENTY = 1000;
const SCARCE = 12;

/**
 * What each order should come to. `scarce`: one of several orders (quantity 1) racing for
 * `SCARCE` units; exactly `SCARCE` of them are paid, the others cancelled out of stock.
 */
type Expected = 'paid' | 'declined' | 'out-of-stock' | 'scarce';

interface PlannedOrder {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  expected: Expected;
}

/** The outbox events each outcome produces, once each, sorted. */
const EVENTS_OF: Record<'PAID' | 'declined' | 'out-of-stock', string[]> = {
  PAID: ['inventory.reserved', 'order.confirmed', 'order.created', 'order.paid', 'payment.succeeded'],
  declined: ['inventory.released', 'inventory.reserved', 'order.cancelled', 'order.created', 'payment.failed'],
  'out-of-stock': ['inventory.reservation_failed', 'order.cancelled', 'order.created'],
};

const run = randomUUID().slice(0, 6);
const plentySkus = Array.from({ length: 5 }, (_, i) => `SKU-${i}-${run}`);
const noneSku = `SKU-NONE-${run}`;
const scarceSku = `SKU-SCARCE-${run}`;

function plan(): PlannedOrder[] {
  return Array.from({ length: ORDERS }, (_, i): PlannedOrder => {
    const orderId = randomUUID();
    const customerId = `cust-${i % 41}`;
    const price = 100 + i;
    if (i % 10 === 3)
      return {
        orderId,
        customerId: `decline-${i}`,
        items: [{ sku: plentySkus[i % 5] as string, quantity: 2, unitPrice: price }],
        expected: 'declined',
      };
    if (i % 10 === 7)
      return {
        orderId,
        customerId,
        items: [{ sku: noneSku, quantity: 1, unitPrice: price }],
        expected: 'out-of-stock',
      };
    if (i % 10 === 5)
      return { orderId, customerId, items: [{ sku: scarceSku, quantity: 1, unitPrice: price }], expected: 'scarce' };
    return {
      orderId,
      customerId,
      items: [
        { sku: plentySkus[i % 5] as string, quantity: 1 + (i % 3), unitPrice: price },
        { sku: plentySkus[(i + 1) % 5] as string, quantity: 1, unitPrice: 50 },
      ],
      expected: 'paid',
    };
  });
}

async function runInPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function readyzStatus(w: WorkerProcess): Promise<number> {
  return (await fetch(`http://127.0.0.1:${await w.port()}/readyz`)).status;
}

describe('Redis restart under load, order domain in worker processes', () => {
  const redis = new TestRedisServer();
  const gateway = new PaymentGatewayServer();
  let webhook: WebhookRecorder<{ kind: string; orderId: string }>;
  let db: MigratedTestDatabase;
  let fleet: FleetHarness;

  beforeAll(async () => {
    await Promise.all([redis.start(), gateway.start()]);
    webhook = await startWebhookRecorder();
    db = await migratedTestDatabase('sf_e2e_redis_orders', { max: 8 });
    await setStock(db.sql, noneSku, 0);
    await setStock(db.sql, scarceSku, SCARCE);
    for (const sku of plentySkus) await setStock(db.sql, sku, PLENTY);
    fleet = new FleetHarness(redis.url, {
      DATABASE_URL: db.url,
      WORKER_GROUPS: DOMAIN_GROUPS.join(','),
      PAYMENT_GATEWAY_URL: gateway.url,
      NOTIFICATION_WEBHOOK_URL: webhook.url,
      VISIBILITY_TIMEOUT_MS: '2000',
      CONSUMER_CONCURRENCY: '20',
      CONSUMER_BATCH_SIZE: '50',
      CONSUMER_BLOCK_MS: '200',
      // Failures during the outage retry quickly, with attempts to spare.
      RETRY_MAX_ATTEMPTS: '10',
      RETRY_BASE_DELAY_MS: '50',
      RETRY_MAX_DELAY_MS: '500',
    });
  });
  afterAll(async () => {
    await fleet?.close();
    await redis.stop();
    await webhook?.close();
    await gateway.close();
    await db?.close();
  });

  it('every order reaches its outcome once, with nothing lost, doubled or left pending', async () => {
    const { sql } = db;
    const orders = new OrderService(sql);
    const planned = plan();
    const workers = [fleet.spawn(), fleet.spawn()];
    await Promise.all(workers.map((w) => w.ready()));

    const settled = async (): Promise<number> => {
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from orders_view where status in ('PAID', 'CANCELLED')`;
      return row?.n ?? 0;
    };
    const place = (list: readonly PlannedOrder[]) =>
      runInPool(list, 4, async (o) => {
        await orders.create({ orderId: o.orderId, customerId: o.customerId, items: o.items });
      });

    const startedAt = Date.now();
    await place(planned.slice(0, BEFORE_KILL));
    await waitFor(async () => (await settled()) >= SETTLED_BEFORE_KILL, {
      timeoutMs: 30_000,
      message: `${SETTLED_BEFORE_KILL} orders settled before the kill`,
    });

    const killedAt = Date.now();
    await redis.kill();
    const settledAtKill = await settled();
    // The kill must land mid-flow, not after the work is done.
    expect(settledAtKill).toBeLessThan(BEFORE_KILL);
    // Both workers notice (their /readyz turns 503) ...
    await waitFor(async () => (await Promise.all(workers.map(readyzStatus))).every((s) => s === 503), {
      timeoutMs: 10_000,
      intervalMs: 20,
      message: '/readyz of both workers to report the outage',
    });
    const noticedMs = Date.now() - killedAt;
    // ... while customers keep ordering: these commit to Postgres, their events wait in the outbox.
    await place(planned.slice(BEFORE_KILL));
    await redis.start();
    const restartMs = Date.now() - killedAt;
    await Promise.all(workers.map((w) => w.ready(30_000)));
    const outageMs = Date.now() - killedAt;

    // ---- Settled: every order final and projected, outbox drained, sagas closed, every
    // group's pending list, lag and retry queue empty. ----
    await waitForOrderDomainSettled(
      {
        sql,
        redis: fleet.redis,
        keys: fleet.keys,
        groups: DOMAIN_GROUPS,
        retryCounts: (group) => fleet.retryCounts(group),
        orders: ORDERS,
      },
      { timeoutMs: 45_000, intervalMs: 100 },
    );
    const settleMs = Date.now() - killedAt;
    expect(await fleet.deadLetterLength()).toBe(0);
    for (const w of workers) expect(w.exit, `worker ${w.pid}: ${w.stderr}`).toBeUndefined();

    // ---- Load the final state. ----
    const outbox = (await sql<{ event: EventEnvelope }[]>`select event from outbox order by id`).map((r) => r.event);
    expect(new Set(outbox.map((e) => e.id)).size, 'an event enqueued twice').toBe(outbox.length);
    const eventsOf = new Map<string, string[]>();
    for (const e of outbox) {
      const orderId = (e.data as { orderId: string }).orderId;
      eventsOf.set(orderId, [...(eventsOf.get(orderId) ?? []), e.type]);
    }
    const payments = new Map(
      (
        await sql<{ order_id: string; status: string; charge_id: string | null; failure_reason: string | null }[]>`
          select order_id, status, charge_id, failure_reason from payments`
      ).map((p) => [p.order_id, p]),
    );
    const notifications = await sql<{ order_id: string; kind: string }[]>`select order_id, kind from notifications`;
    const sagas = new Map(
      (await sql<{ order_id: string; state: string }[]>`select order_id, state from order_sagas`).map((s) => [
        s.order_id,
        s.state,
      ]),
    );

    // ---- Every order: its outcome, its events once each, its read model, payment, saga, notification. ----
    const outcomes = { paid: 0, outOfStock: 0, declined: 0 };
    const paidQuantity = new Map<string, number>();
    for (const o of planned) {
      const view = await getOrderView(sql, o.orderId);
      // The read model equals the aggregate folded from the event store.
      expect(view, `read model of ${o.orderId}`).toEqual(foldOrder(await loadEvents(sql, o.orderId)));
      const payment = payments.get(o.orderId);
      const charges = gateway.chargesOf(o.orderId);
      const paid = view?.status === 'PAID';
      const outcome: keyof typeof EVENTS_OF = paid ? 'PAID' : o.expected === 'declined' ? 'declined' : 'out-of-stock';
      if (o.expected === 'paid' || (o.expected === 'scarce' && paid)) {
        expect(view?.status, `${o.orderId} (${o.expected})`).toBe('PAID');
        expect(charges, `charges of ${o.orderId}`).toHaveLength(1);
        expect(payment).toMatchObject({ status: 'succeeded', charge_id: charges[0]?.chargeId });
        expect(sagas.get(o.orderId)).toBe('completed');
        for (const item of o.items) paidQuantity.set(item.sku, (paidQuantity.get(item.sku) ?? 0) + item.quantity);
        outcomes.paid += 1;
      } else {
        expect(view?.status, `${o.orderId} (${o.expected})`).toBe('CANCELLED');
        expect(view?.cancelledBy).toBe('order-saga');
        expect(charges, `charges of ${o.orderId}`).toEqual([]);
        expect(sagas.get(o.orderId)).toBe('cancelled');
        if (o.expected === 'declined') {
          expect(view?.cancellationReason).toMatch(/^payment_failed/);
          expect(payment).toMatchObject({ status: 'failed', charge_id: null, failure_reason: 'card_declined' });
          outcomes.declined += 1;
        } else {
          expect(view?.cancellationReason).toMatch(/^out_of_stock/);
          expect(payment?.status).toBe('void');
          outcomes.outOfStock += 1;
        }
      }
      expect([...(eventsOf.get(o.orderId) ?? [])].sort(), `events of ${o.orderId} (${o.expected})`).toEqual(
        EVENTS_OF[outcome],
      );
      expect(
        notifications.filter((n) => n.order_id === o.orderId).map((n) => n.kind),
        `notifications of ${o.orderId}`,
      ).toEqual([paid ? 'order_confirmed' : 'order_cancelled']);
      // Re-sent webhooks carry the same Idempotency-Key: one key per order.
      const keys = new Set(webhook.received.filter((r) => r.body.orderId === o.orderId).map((r) => r.key));
      expect(keys.size, `webhook keys of ${o.orderId}`).toBe(1);
    }
    expect(payments.size).toBe(ORDERS);
    expect(notifications).toHaveLength(ORDERS);
    expect(gateway.refunds).toEqual([]);
    expect([...new Set(gateway.charges.map((c) => c.orderId))]).toHaveLength(gateway.charges.length);
    // Exactly SCARCE of the racing orders got the scarce stock.
    expect(paidQuantity.get(scarceSku) ?? 0).toBe(SCARCE);

    // ---- Stock adds up: what paid orders hold is reserved; everything else is back. ----
    const initial = new Map<string, number>([
      [noneSku, 0],
      [scarceSku, SCARCE],
      ...plentySkus.map((s): [string, number] => [s, PLENTY]),
    ]);
    const stock = await sql<{ sku: string; available: number; reserved: number }[]>`
      select sku, available, reserved from inventory where sku = any(${[...initial.keys()]})`;
    expect(stock).toHaveLength(initial.size);
    for (const s of stock) {
      const held = paidQuantity.get(s.sku) ?? 0;
      expect({ sku: s.sku, available: s.available, reserved: s.reserved }).toEqual({
        sku: s.sku,
        available: (initial.get(s.sku) ?? 0) - held,
        reserved: held,
      });
    }

    expect(outcomes.paid).toBeGreaterThan(ORDERS / 2);
    expect(outcomes.declined).toBe(ORDERS / 10);
    expect(outcomes.outOfStock).toBe(ORDERS / 10 + ORDERS / 10 - SCARCE);
    // Entries whose delivery was lost with the connection come back through XAUTOCLAIM.
    const claimed = workers.flatMap((w) => w.logs()).filter((l) => l.msg === 'claimed an idle entry').length;
    console.log(
      `[redis restart, orders] ${ORDERS} orders: paid=${outcomes.paid} out-of-stock=${outcomes.outOfStock}`,
      `declined=${outcomes.declined}; settled at the kill ${settledAtKill}/${BEFORE_KILL} placed,`,
      `${ORDERS - BEFORE_KILL} placed during the outage; outage noticed after ${noticedMs} ms, redis down+up in`,
      `${restartMs} ms, workers ready again ${outageMs} ms`,
      `and everything settled ${settleMs} ms after the kill (${Date.now() - startedAt} ms in all);`,
      `gateway requests=${gateway.requests} charges=${gateway.charges.length},`,
      `webhooks=${webhook.received.length} for ${notifications.length} notifications, entries claimed=${claimed}`,
    );
  });
});
