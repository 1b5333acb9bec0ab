import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../events/envelope';
import type { Fleet } from '../fleet/fleet';
import { getStock, setStock } from '../inventory/inventory-service';
import { listNotifications } from '../notification/notification-service';
import { type PaymentGateway, SimulatedPaymentGateway } from '../payment/payment-gateway';
import { getPayment } from '../payment/payment-service';
import { getOrderView } from '../projection/order-projection';
import { getSaga } from '../saga/order-saga';
import type { Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import type { OutboxRelay } from '../store/outbox-relay';
import type { GroupDefinition } from '../streams/handler';
import {
  cleanupPrefix,
  handlerContext,
  type MigratedTestDatabase,
  migratedTestDatabase,
  startFleetWithRelay,
  startWebhookRecorder,
  testRedisUrl,
  uniquePrefix,
  type WebhookRecorder,
  waitFor,
} from '../testing/index';
import { foldOrder, type OrderItem } from './order';
import { createOrderGroups } from './order-groups';
import { OrderService } from './order-service';

let db: MigratedTestDatabase;
let sql: Sql;
let fleet: Fleet;
let relay: OutboxRelay;
let groups: GroupDefinition[];
let orders: OrderService;
let webhook: WebhookRecorder<{ kind: string; orderId: string }>;
const gateway = new SimulatedPaymentGateway();
/** When each charge attempt reached the gateway, by order id (failed attempts included). */
const chargeAttempts = new Map<string, number[]>();
const recordingGateway: PaymentGateway = {
  charge(request) {
    chargeAttempts.set(request.orderId, [...(chargeAttempts.get(request.orderId) ?? []), performance.now()]);
    return gateway.charge(request);
  },
  refund: (request) => gateway.refund(request),
};
const RETRY = { maxAttempts: 6, baseDelayMs: 20, maxDelayMs: 100 };
/** Payment retries wait long enough (and without jitter) for the test to see the delays double. */
const PAYMENT_RETRY = { baseDelayMs: 100, maxDelayMs: 800, jitter: 0 };
const prefix = uniquePrefix('domain');
const redisUrl = testRedisUrl();

beforeAll(async () => {
  db = await migratedTestDatabase('sf_domain', { max: 20 });
  sql = db.sql;
  webhook = await startWebhookRecorder();
  groups = createOrderGroups({ sql, gateway: recordingGateway, notificationWebhookUrl: webhook.url }).map((g) =>
    g.group === 'payment' ? { ...g, retry: PAYMENT_RETRY } : g,
  );
  ({ fleet, relay } = await startFleetWithRelay({
    redisUrl,
    prefix,
    groups,
    retry: RETRY,
    sql,
    databaseUrl: db.url,
  }));
  orders = new OrderService(sql);
});

afterAll(async () => {
  await relay?.close();
  await fleet?.close();
  await webhook?.close();
  await db?.close();
  await cleanupPrefix(redisUrl, prefix);
});

function sku(): string {
  return `SKU-${randomUUID().slice(0, 8)}`;
}

async function place(customerId: string, items: OrderItem[]): Promise<string> {
  const orderId = randomUUID();
  await orders.create({ orderId, customerId, items });
  return orderId;
}

async function statusOf(orderId: string): Promise<string | undefined> {
  return (await getOrderView(sql, orderId))?.status;
}

describe('order domain on a running fleet', () => {
  it('happy path: stock reserved, charged once, confirmed and paid, one notification', async () => {
    const a = sku();
    await setStock(sql, a, 10);
    const orderId = await place('cust-1', [{ sku: a, quantity: 3, unitPrice: 1000 }]);

    await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid' });
    expect(await getStock(sql, a)).toMatchObject({ available: 7, reserved: 3 });
    expect(await getPayment(sql, orderId)).toMatchObject({ status: 'succeeded', amount: 3000 });
    expect((await getSaga(sql, orderId))?.state).toBe('completed');
    const history = (await loadEvents(sql, orderId)).map((e) => e.type);
    expect(history).toEqual(['order.created', 'order.confirmed', 'order.paid']);

    await waitFor(async () => (await listNotifications(sql, orderId)).length === 1, { message: 'notification' });
    const sent = webhook.received.filter((r) => r.body.orderId === orderId);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body.kind).toBe('order_confirmed');
    expect(sent[0]?.key).toBeTruthy();

    // The read model equals the aggregate rebuilt from its events.
    const view = await getOrderView(sql, orderId);
    expect(view).toEqual(foldOrder(await loadEvents(sql, orderId)));
  });

  it('shipping commits the reservation: reserved back to zero, available unchanged', async () => {
    const s = sku();
    await setStock(sql, s, 5);
    const orderId = await place('cust-ship', [{ sku: s, quantity: 1, unitPrice: 1200 }]);
    await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid' });
    expect(await getStock(sql, s)).toMatchObject({ available: 4, reserved: 1 });

    await orders.ship(orderId, { carrier: 'dhl' });
    await orders.deliver(orderId);
    await waitFor(async () => (await getStock(sql, s))?.reserved === 0, { message: 'reservation committed' });
    await waitFor(async () => (await statusOf(orderId)) === 'DELIVERED', { message: 'order delivered' });
    expect(await getStock(sql, s)).toMatchObject({ available: 4, reserved: 0 });
    const [reservation] = await sql<{ status: string }[]>`select status from reservations where order_id = ${orderId}`;
    expect(reservation?.status).toBe('committed');
  });

  it('out of stock: cancelled with a reason, nothing reserved, no charge', async () => {
    const b = sku();
    await setStock(sql, b, 1);
    const charges = gateway.chargeCount;
    const calls = gateway.calls;
    const orderId = await place('cust-2', [{ sku: b, quantity: 2, unitPrice: 500 }]);

    await waitFor(async () => (await statusOf(orderId)) === 'CANCELLED', { message: 'order cancelled' });
    const view = await getOrderView(sql, orderId);
    expect(view?.cancellationReason).toContain('out_of_stock');
    expect(view?.cancelledBy).toBe('order-saga');
    expect(await getStock(sql, b)).toMatchObject({ available: 1, reserved: 0 });
    await waitFor(async () => (await getPayment(sql, orderId))?.status === 'void', { message: 'payment voided' });
    expect(gateway.chargeCount).toBe(charges);
    expect(gateway.calls).toBe(calls);
    await waitFor(async () => (await listNotifications(sql, orderId)).some((n) => n.kind === 'order_cancelled'));
  });

  it('payment declined: cancelled, stock released', async () => {
    const c = sku();
    await setStock(sql, c, 5);
    const orderId = await place('decline-cust', [{ sku: c, quantity: 2, unitPrice: 700 }]);

    await waitFor(async () => (await statusOf(orderId)) === 'CANCELLED', { message: 'order cancelled' });
    expect((await getOrderView(sql, orderId))?.cancellationReason).toContain('payment_failed');
    expect((await getPayment(sql, orderId))?.status).toBe('failed');
    await waitFor(async () => (await getStock(sql, c))?.available === 5, { message: 'stock released' });
    expect(await getStock(sql, c)).toMatchObject({ available: 5, reserved: 0 });
    const [released] =
      await sql`select 1 from outbox where event->>'type' = 'inventory.released' and event->'data'->>'orderId' = ${orderId}`;
    expect(released).toBeDefined();
  });

  it('transient gateway failures are retried with backoff, then the order is confirmed, charged once', async () => {
    const d = sku();
    await setStock(sql, d, 5);
    const charges = gateway.chargeCount;
    const calls = gateway.calls;
    gateway.failNextCalls(2);
    const orderId = await place('cust-4', [{ sku: d, quantity: 1, unitPrice: 999 }]);

    await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid after retries' });
    expect(gateway.chargeCount).toBe(charges + 1);
    expect(gateway.calls - calls).toBeGreaterThanOrEqual(3);
    expect((await getPayment(sql, orderId))?.status).toBe('succeeded');
    // Two failed attempts, then the one that charged; the waits double (100 ms, then 200 ms).
    const at = chargeAttempts.get(orderId) ?? [];
    expect(at).toHaveLength(3);
    const [first = 0, second = 0, third = 0] = at;
    expect(second - first).toBeGreaterThanOrEqual(PAYMENT_RETRY.baseDelayMs - 2);
    expect(third - second).toBeGreaterThanOrEqual(2 * PAYMENT_RETRY.baseDelayMs - 2);
  });

  it('a user cancelling a paid order gets stock released and the payment refunded', async () => {
    const e = sku();
    await setStock(sql, e, 4);
    const orderId = await place('cust-5', [{ sku: e, quantity: 4, unitPrice: 250 }]);
    await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid' });

    await orders.cancel(orderId, 'changed my mind', 'customer');
    await waitFor(async () => (await getPayment(sql, orderId))?.status === 'refunded', { message: 'refunded' });
    await waitFor(async () => (await getStock(sql, e))?.available === 4, { message: 'stock released' });
    await waitFor(async () => (await statusOf(orderId)) === 'CANCELLED');
    expect((await getSaga(sql, orderId))?.state).toBe('cancelled');
  });

  it('two orders racing for the last stock: exactly one reserves, the other is cancelled', async () => {
    const g = sku();
    await setStock(sql, g, 3);
    const [first, second] = await Promise.all([
      place('cust-7', [{ sku: g, quantity: 2, unitPrice: 100 }]),
      place('cust-8', [{ sku: g, quantity: 2, unitPrice: 100 }]),
    ]);
    const settled = async () => [await statusOf(first), await statusOf(second)];
    await waitFor(async () => (await settled()).every((s) => s === 'PAID' || s === 'CANCELLED'), {
      message: 'both orders settled',
    });
    expect((await settled()).sort()).toEqual(['CANCELLED', 'PAID']);
    expect(await getStock(sql, g)).toMatchObject({ available: 1, reserved: 2 });
  });

  it('the same events delivered twice change nothing', async () => {
    const f = sku();
    await setStock(sql, f, 10);
    const orderId = await place('cust-6', [{ sku: f, quantity: 2, unitPrice: 100 }]);
    await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid' });
    await waitFor(async () => (await listNotifications(sql, orderId)).length === 1);

    const snapshot = async () => ({
      stock: await getStock(sql, f),
      payment: await getPayment(sql, orderId),
      view: await getOrderView(sql, orderId),
      saga: (await getSaga(sql, orderId))?.state,
      events: (await loadEvents(sql, orderId)).length,
      outbox: (await sql`select count(*)::int as n from outbox`)[0]?.n,
      notifications: (await listNotifications(sql, orderId)).length,
      charges: gateway.chargeCount,
    });
    const before = await snapshot();

    // Every event of this order, fed again to every group that handles its type, twice.
    const rows = await sql<{ event: EventEnvelope }[]>`
      select event from outbox where event->'data'->>'orderId' = ${orderId} order by id`;
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (let round = 0; round < 2; round++) {
      for (const { event } of rows) {
        for (const g of groups) {
          if (g.types && !g.types.includes(event.type)) continue;
          await g.handler(event, handlerContext(g.group));
        }
      }
    }
    expect(await snapshot()).toEqual(before);

    // And a real re-delivery through the stream: publish one again and see it ignored.
    const first = rows[0]?.event;
    if (!first) throw new Error('no event');
    await fleet.producer.publish('orders', first);
    const marker = await place('cust-6b', [{ sku: f, quantity: 1, unitPrice: 100 }]);
    await waitFor(async () => (await statusOf(marker)) === 'PAID', { message: 'marker order paid' });
    const after = await snapshot();
    expect(after.payment).toEqual(before.payment);
    expect(after.stock?.reserved).toBe((before.stock?.reserved ?? 0) + 1);
    expect(after.events).toBe(before.events);
  });

  it('gateway always failing: dead-lettered, then replayed after recovery, confirmed and charged once', async () => {
    const h = sku();
    await setStock(sql, h, 5);
    const charges = gateway.chargeCount;
    gateway.failNextCalls(Number.MAX_SAFE_INTEGER);
    let orderId = '';
    try {
      orderId = await place('cust-9', [{ sku: h, quantity: 2, unitPrice: 400 }]);
      const deadLetter = async () =>
        (await fleet.deadLetters.list({ group: 'payment', reason: 'retries-exhausted' })).items.find(
          (e) => e.aggregateId === orderId || JSON.stringify(e.event).includes(orderId),
        );
      await waitFor(async () => (await deadLetter()) !== undefined, { message: 'payment dead-lettered' });
      gateway.failNextCalls(0);
      const entry = await deadLetter();
      if (!entry) throw new Error('no dead letter');
      expect(entry).toMatchObject({ group: 'payment', reason: 'retries-exhausted' });
      expect(await statusOf(orderId)).toBe('PENDING'); // confirmed only once paid
      expect(gateway.chargeCount).toBe(charges);

      await fleet.deadLetters.replay(entry.id, { actor: 'domain-test' });
      await waitFor(async () => (await statusOf(orderId)) === 'PAID', { message: 'order paid after replay' });
    } finally {
      gateway.failNextCalls(0);
    }
    const history = (await loadEvents(sql, orderId)).map((e) => e.type);
    expect(history).toEqual(['order.created', 'order.confirmed', 'order.paid']);
    expect((await getPayment(sql, orderId))?.status).toBe('succeeded');
    expect((await getSaga(sql, orderId))?.state).toBe('completed');
    expect(gateway.chargeCount).toBe(charges + 1);
  });
});
