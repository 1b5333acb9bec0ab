import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '../events/envelope';
import type { Sql } from '../store/client';
import {
  handlerContext,
  type MigratedTestDatabase,
  migratedTestDatabase,
  startWebhookRecorder,
  type WebhookRecorder,
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
        delivered: true,
        statusCode: 204,
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
