import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type EventEnvelope } from '../events/envelope';
import { createPostgres, type Sql } from '../store/client';
import { appendToStream } from '../store/event-store';
import {
  handlerContext,
  type MigratedTestDatabase,
  migratedTestDatabase,
  startWebhookRecorder,
  type WebhookRecorder,
  waitFor,
} from '../testing/index';
import { createNotificationGroup, listNotifications, NotificationDeliveryError } from './notification-service';

const ctx = handlerContext('notification');

let db: MigratedTestDatabase;
let sql: Sql;
let webhook: WebhookRecorder;

beforeAll(async () => {
  db = await migratedTestDatabase('sf_notify', { max: 5 });
  sql = db.sql;
  webhook = await startWebhookRecorder();
});

afterAll(async () => {
  await webhook?.close();
  await db?.close();
});

describe('notification group', () => {
  it('a failing webhook is retried; once delivered it is recorded and never sent again', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: webhook.url });
    const hits = webhook.received;
    const event = createEvent({
      type: 'order.cancelled',
      aggregateId: 'o-n1',
      aggregateVersion: 2,
      data: {
        orderId: 'o-n1',
        customerId: 'c-n',
        reason: 'out_of_stock',
        cancelledBy: 'order-saga',
        previousStatus: 'PENDING',
      },
    });
    webhook.status = 503;
    await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(NotificationDeliveryError);
    expect(await listNotifications(sql, 'o-n1')).toEqual([]);
    webhook.status = 204;
    await group.handler(event, ctx);
    await group.handler(event, ctx);
    expect(hits).toHaveLength(2);
    expect(hits.every((h) => h.key === event.id)).toBe(true);
    expect(hits[1]?.body).toMatchObject({ kind: 'order_cancelled', orderId: 'o-n1', reason: 'out_of_stock' });
    expect(await listNotifications(sql, 'o-n1')).toEqual([
      {
        eventId: event.id,
        orderId: 'o-n1',
        kind: 'order_cancelled',
        recipient: 'c-n',
        aggregateVersion: 2,
        status: 'sent',
        delivered: true,
        statusCode: 204,
        supersededBy: null,
      },
    ]);
  });

  it('a webhook that does not answer in time is a retryable failure, nothing recorded', async () => {
    const held: Array<() => void> = [];
    const silent = createServer((_req, res) => {
      held.push(() => res.writeHead(204).end());
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hook`;
      const group = createNotificationGroup({ sql, webhookUrl: url, timeoutMs: 150 });
      const event = createEvent({ type: 'order.confirmed', data: { orderId: 'o-n3', customerId: 'c-n' } });
      const started = performance.now();
      await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(NotificationDeliveryError);
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(140);
      expect(elapsed).toBeLessThan(5000); // the 150 ms timeout, not the 5 s default
      expect(held).toHaveLength(1);
      expect(await listNotifications(sql, 'o-n3')).toEqual([]);
      // The handler's own timeout (its signal) gives the call up too, long before the webhook timeout.
      const patient = createNotificationGroup({ sql, webhookUrl: url, timeoutMs: 60_000 });
      const attempt = new AbortController();
      const sending = patient.handler(event, { ...ctx, signal: attempt.signal });
      await waitFor(() => held.length === 2, { message: 'the webhook called again' });
      attempt.abort(new Error('handler timed out'));
      await expect(sending).rejects.toBeInstanceOf(NotificationDeliveryError);
      expect(await listNotifications(sql, 'o-n3')).toEqual([]);
    } finally {
      for (const answer of held) answer();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('without a webhook URL it only records', async () => {
    const group = createNotificationGroup({ sql });
    const event = createEvent({ type: 'order.confirmed', data: { orderId: 'o-n2', customerId: 'c-n' } });
    await group.handler(event, ctx);
    expect(await listNotifications(sql, 'o-n2')).toMatchObject([{ kind: 'order_confirmed', delivered: false }]);
  });
});

function confirmed(orderId: string, version: number): EventEnvelope {
  return createEvent({
    type: 'order.confirmed',
    aggregateId: orderId,
    aggregateVersion: version,
    data: { orderId, customerId: 'c-s', previousStatus: 'PENDING' },
  });
}

function cancelled(orderId: string, version: number): EventEnvelope {
  return createEvent({
    type: 'order.cancelled',
    aggregateId: orderId,
    aggregateVersion: version,
    data: { orderId, customerId: 'c-s', reason: 'customer_request', cancelledBy: 'c-s', previousStatus: 'CONFIRMED' },
  });
}

/** What the webhook received for one order, as `kind@version`, in arrival order. */
function receivedFor(orderId: string): string[] {
  return webhook.received
    .filter((r) => r.body.orderId === orderId)
    .map((r) => `${String(r.body.kind)}@${String(r.body.aggregateVersion)}`);
}

describe('notification order: a stale notification is never sent after a newer one', () => {
  it('the payload carries the event id and aggregate version', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: webhook.url });
    const event = confirmed('o-p1', 2);
    await group.handler(event, ctx);
    const [hit] = webhook.received.filter((r) => r.body.orderId === 'o-p1');
    expect(hit?.key).toBe(event.id);
    expect(hit?.body).toMatchObject({ kind: 'order_confirmed', eventId: event.id, aggregateVersion: 2 });
  });

  it('a confirmed retried after the cancellation went out is skipped, recorded, and not retried', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: webhook.url });
    const confirm = confirmed('o-s1', 2);
    const cancel = cancelled('o-s1', 3);

    webhook.status = 503;
    await expect(group.handler(confirm, ctx)).rejects.toBeInstanceOf(NotificationDeliveryError);
    webhook.status = 204;
    await group.handler(cancel, ctx);
    // The retry (or a replay from the dead-letter stream days later) of the confirmation.
    await group.handler(confirm, { ...ctx, attempt: 2 });
    await group.handler(confirm, { ...ctx, attempt: 3 });

    // The first confirmed POST failed (503); after the cancellation nothing older went out.
    expect(receivedFor('o-s1')).toEqual(['order_confirmed@2', 'order_cancelled@3']);
    expect(await listNotifications(sql, 'o-s1')).toEqual([
      {
        eventId: cancel.id,
        orderId: 'o-s1',
        kind: 'order_cancelled',
        recipient: 'c-s',
        aggregateVersion: 3,
        status: 'sent',
        delivered: true,
        statusCode: 204,
        supersededBy: null,
      },
      {
        eventId: confirm.id,
        orderId: 'o-s1',
        kind: 'order_confirmed',
        recipient: 'c-s',
        aggregateVersion: 2,
        status: 'skipped',
        delivered: false,
        statusCode: null,
        supersededBy: cancel.id,
      },
    ]);
    const processed =
      await sql`select 1 from processed_events where "group" = 'notification' and event_id = ${confirm.id}`;
    expect(processed).toHaveLength(1);
  });

  it('an older event handled after a newer one is skipped also when only recording (no webhook)', async () => {
    const group = createNotificationGroup({ sql });
    const confirm = confirmed('o-s2', 2);
    const cancel = cancelled('o-s2', 3);
    await group.handler(cancel, ctx);
    await group.handler(confirm, ctx);
    expect(await listNotifications(sql, 'o-s2')).toMatchObject([
      { eventId: cancel.id, status: 'sent', delivered: false },
      { eventId: confirm.id, status: 'skipped', supersededBy: cancel.id },
    ]);
  });

  it('a confirmation read after the order was already cancelled (group paused or behind) is never sent', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: webhook.url });
    const { events } = await appendToStream(sql, 'o-s4', 0, [
      { type: 'order.created', data: { orderId: 'o-s4' } },
      { type: 'order.confirmed', data: { orderId: 'o-s4', customerId: 'c-s' } },
      { type: 'order.cancelled', data: { orderId: 'o-s4', customerId: 'c-s', reason: 'changed my mind' } },
    ]);
    const [, confirm, cancel] = events as [EventEnvelope, EventEnvelope, EventEnvelope];
    await group.handler(confirm, ctx);
    await group.handler(cancel, ctx);
    expect(receivedFor('o-s4')).toEqual(['order_cancelled@3']);
    expect(await listNotifications(sql, 'o-s4')).toMatchObject([
      { eventId: confirm.id, status: 'skipped', delivered: false, supersededBy: cancel.id },
      { eventId: cancel.id, status: 'sent', delivered: true },
    ]);
  });

  it('events without an order version are still notified, and never skipped', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: webhook.url });
    await group.handler(cancelled('o-s3', 5), ctx);
    const unversioned = createEvent({ type: 'order.confirmed', data: { orderId: 'o-s3', customerId: 'c-s' } });
    await group.handler(unversioned, ctx);
    expect(receivedFor('o-s3')).toEqual(['order_cancelled@5', 'order_confirmed@undefined']);
    expect(await listNotifications(sql, 'o-s3')).toMatchObject([
      { kind: 'order_cancelled', aggregateVersion: 5, status: 'sent' },
      { eventId: unversioned.id, aggregateVersion: null, status: 'sent', delivered: true },
    ]);
  });
});

describe('notification order across worker processes (two pools, one order, at once)', () => {
  /** A fetch that holds each POST until `release()`: the send is in flight meanwhile. */
  function heldFetch() {
    const calls: string[] = [];
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const doFetch: typeof fetch = async (input, init) => {
      calls.push(String((JSON.parse(String(init?.body)) as { kind: string }).kind));
      await gate;
      return fetch(input, init);
    };
    return { fetch: doFetch, calls, release: () => open() };
  }

  /** Whether some session waits for an advisory lock (the other process, on this order). */
  async function waitingOnLock(): Promise<boolean> {
    const rows = await sql`select 1 from pg_locks where locktype = 'advisory' and not granted`;
    return rows.length > 0;
  }

  let other: Sql;
  beforeAll(() => {
    other = createPostgres(db.url, { max: 2 });
  });
  afterAll(async () => {
    await other?.end();
  });

  it('a newer event waits for the older one in flight, then goes out after it', async () => {
    const held = heldFetch();
    const processA = createNotificationGroup({ sql, webhookUrl: webhook.url, fetch: held.fetch });
    const processB = createNotificationGroup({ sql: other, webhookUrl: webhook.url });
    const confirm = confirmed('o-c1', 2);
    const cancel = cancelled('o-c1', 3);

    const a = processA.handler(confirm, ctx);
    await waitFor(() => held.calls.length === 1, { message: 'confirmation in flight' });
    const b = processB.handler(cancel, ctx);
    await waitFor(async () => receivedFor('o-c1').length > 0 || (await waitingOnLock()), {
      message: 'cancellation sent or waiting',
    });
    // The cancellation must not overtake the confirmation that is still in flight.
    expect(receivedFor('o-c1')).toEqual([]);
    held.release();
    await Promise.all([a, b]);

    expect(receivedFor('o-c1')).toEqual(['order_confirmed@2', 'order_cancelled@3']);
    expect(await listNotifications(sql, 'o-c1')).toMatchObject([
      { eventId: confirm.id, status: 'sent', delivered: true },
      { eventId: cancel.id, status: 'sent', delivered: true },
    ]);
  });

  it('an older event waits for the newer one in flight, then is skipped', async () => {
    const held = heldFetch();
    const processA = createNotificationGroup({ sql, webhookUrl: webhook.url, fetch: held.fetch });
    const processB = createNotificationGroup({ sql: other, webhookUrl: webhook.url });
    const confirm = confirmed('o-c2', 2);
    const cancel = cancelled('o-c2', 3);

    const a = processA.handler(cancel, ctx);
    await waitFor(() => held.calls.length === 1, { message: 'cancellation in flight' });
    const b = processB.handler(confirm, ctx);
    await waitFor(async () => receivedFor('o-c2').length > 0 || (await waitingOnLock()), {
      message: 'confirmation sent or waiting',
    });
    expect(receivedFor('o-c2')).toEqual([]);
    held.release();
    await Promise.all([a, b]);

    expect(receivedFor('o-c2')).toEqual(['order_cancelled@3']);
    expect(await listNotifications(sql, 'o-c2')).toMatchObject([
      { eventId: cancel.id, status: 'sent', delivered: true },
      { eventId: confirm.id, status: 'skipped', supersededBy: cancel.id },
    ]);
  });
});
