import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '../events/envelope';
import { silentLogger } from '../logging/index';
import { createPostgres, type Sql } from '../store/client';
import { migrate } from '../store/migrations';
import type { HandlerContext } from '../streams/handler';
import { createTestDatabase, type TestDatabase } from '../testing/index';
import { createNotificationGroup, listNotifications, NotificationDeliveryError } from './notification-service';

const ctx: HandlerContext = {
  group: 'notification',
  stream: 'orders',
  entryId: '0-1',
  attempt: 1,
  deliveryCount: 1,
  replayCount: 0,
  logger: silentLogger,
};

let db: TestDatabase;
let sql: Sql;
let server: Server;
let url: string;
let status = 204;
const hits: Array<{ key: string | undefined; body: Record<string, unknown> }> = [];

beforeAll(async () => {
  db = await createTestDatabase('sf_notify');
  sql = createPostgres(db.url, { max: 5 });
  await migrate(sql);
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      hits.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await sql?.end();
  await db?.drop();
});

describe('notification group', () => {
  it('a failing webhook is retried; once delivered it is recorded and never sent again', async () => {
    const group = createNotificationGroup({ sql, webhookUrl: url });
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
    status = 503;
    await expect(group.handler(event, ctx)).rejects.toBeInstanceOf(NotificationDeliveryError);
    expect(await listNotifications(sql, 'o-n1')).toEqual([]);
    status = 204;
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

  it('without a webhook URL it only records', async () => {
    const group = createNotificationGroup({ sql });
    const event = createEvent({ type: 'order.confirmed', data: { orderId: 'o-n2', customerId: 'c-n' } });
    await group.handler(event, ctx);
    expect(await listNotifications(sql, 'o-n2')).toMatchObject([{ kind: 'order_confirmed', delivered: false }]);
  });
});
