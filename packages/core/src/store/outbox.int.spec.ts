import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '../events/envelope';
import { type MigratedTestDatabase, migratedTestDatabase } from '../testing/index';
import type { Sql } from './client';
import { enqueueOutbox, outboxStats } from './outbox';

let db: MigratedTestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await migratedTestDatabase('sf_outbox', { max: 2 });
  sql = db.sql;
});

afterAll(async () => {
  await db?.close();
});

const delivered = (orderId: string) => ({
  stream: 'orders',
  event: createEvent({ type: 'order.delivered', data: { orderId }, aggregateId: orderId }),
});

describe('outboxStats', () => {
  it('counts rows waiting for the relay, the age of the oldest, and parked rows apart', async () => {
    expect(await outboxStats(sql)).toEqual({ unpublished: 0, oldestUnpublishedAgeSeconds: 0, parked: 0 });

    await enqueueOutbox(sql, [delivered('a'), delivered('b'), delivered('c'), delivered('d')]);
    const ids = (await sql<{ id: string }[]>`select id from outbox order by id`).map((r) => r.id);
    // a: published; b: parked (the catalog refused it); c and d wait, c for an hour already.
    await sql`update outbox set published_at = now() where id = ${ids[0] ?? ''}`;
    await sql`update outbox set failed_at = now(), last_error = 'refused' where id = ${ids[1] ?? ''}`;
    await sql`update outbox set created_at = now() - interval '1 hour' where id = ${ids[2] ?? ''}`;

    const stats = await outboxStats(sql);
    expect(stats).toMatchObject({ unpublished: 2, parked: 1 });
    expect(stats.oldestUnpublishedAgeSeconds).toBeGreaterThanOrEqual(3600);
    expect(stats.oldestUnpublishedAgeSeconds).toBeLessThan(3700);
  });
});
