import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../errors/index';
import { createTestDatabase, type TestDatabase, testDatabaseUrl } from '../testing/index';
import { createPostgres, ensureDatabase, type Sql } from './client';
import { appendToStream, loadEvents } from './event-store';
import { MIGRATIONS, migrate } from './migrations';
import { pruneOutbox } from './outbox';
import { markProcessed, pruneProcessedEvents } from './processed-events';

let db: TestDatabase;
let sql: Sql;

beforeAll(async () => {
  db = await createTestDatabase('sf_store');
  sql = createPostgres(db.url, { max: 5 });
  // Concurrent starts apply each migration once.
  const results = await Promise.all([migrate(sql), migrate(sql), migrate(sql)]);
  expect(results.flatMap((r) => r.applied).sort((a, b) => a - b)).toEqual(MIGRATIONS.map((m) => m.version));
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

describe('migrate', () => {
  it('is a no-op when up to date', async () => {
    const again = await migrate(sql);
    expect(again.applied).toEqual([]);
    expect(again.current).toBe(MIGRATIONS.length);
  });
});

describe('ensureDatabase', () => {
  it('creates a missing database once', async () => {
    const url = new URL(testDatabaseUrl());
    const name = `sf_ensure_${randomBytes(4).toString('hex')}`;
    url.pathname = `/${name}`;
    const first = await ensureDatabase(url.toString());
    const second = await ensureDatabase(url.toString());
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    const admin = createPostgres(testDatabaseUrl(), { max: 1 });
    await admin.unsafe(`drop database "${name}" with (force)`);
    await admin.end();
  });
});

describe('event store', () => {
  it('appends with versions and loads them back, writing the outbox in the same transaction', async () => {
    const id = `agg-${randomBytes(4).toString('hex')}`;
    const first = await appendToStream(sql, id, 0, [{ type: 'order.created', data: { n: 1 } }], { stream: 'orders' });
    expect(first.version).toBe(1);
    const second = await appendToStream(
      sql,
      id,
      1,
      [
        { type: 'order.confirmed', data: { n: 2 } },
        { type: 'order.paid', data: { n: 3 } },
      ],
      { stream: 'orders' },
    );
    expect(second.version).toBe(3);
    const events = await loadEvents(sql, id);
    expect(events.map((e) => [e.type, e.aggregateVersion])).toEqual([
      ['order.created', 1],
      ['order.confirmed', 2],
      ['order.paid', 3],
    ]);
    expect((await loadEvents(sql, id, 2)).map((e) => e.aggregateVersion)).toEqual([2, 3]);
    const outbox = await sql<{ event_id: string }[]>`
      select event_id from outbox where event->>'aggregateId' = ${id} order by id`;
    expect(outbox.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
  });

  it('rejects a stale expected version', async () => {
    const id = `agg-${randomBytes(4).toString('hex')}`;
    await appendToStream(sql, id, 0, [{ type: 'order.created', data: {} }]);
    await expect(appendToStream(sql, id, 0, [{ type: 'order.created', data: {} }])).rejects.toBeInstanceOf(
      ConcurrencyError,
    );
  });

  it('lets exactly one of two concurrent appends win', async () => {
    const id = `agg-${randomBytes(4).toString('hex')}`;
    await appendToStream(sql, id, 0, [{ type: 'order.created', data: {} }]);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        appendToStream(sql, id, 1, [{ type: 'order.confirmed', data: {} }], { stream: 'orders' }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
    }
    expect((await loadEvents(sql, id)).length).toBe(2);
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where event->>'aggregateId' = ${id}`;
    expect(row?.n).toBe(1);
  });
});

describe('pruning', () => {
  it('deletes old published outbox rows and old idempotency records only', async () => {
    const id = `agg-${randomBytes(4).toString('hex')}`;
    await appendToStream(
      sql,
      id,
      0,
      [
        { type: 'order.created', data: {} },
        { type: 'order.confirmed', data: {} },
        { type: 'order.paid', data: {} },
      ],
      { stream: 'orders' },
    );
    const rows = await sql<{ id: string }[]>`select id from outbox where event->>'aggregateId' = ${id} order by id`;
    const [oldRow, recent] = rows;
    await sql`update outbox set published_at = now() - interval '2 hours' where id = ${oldRow?.id ?? '0'}`;
    await sql`update outbox set published_at = now() where id = ${recent?.id ?? '0'}`;
    expect(await pruneOutbox(sql, 3_600_000)).toBeGreaterThanOrEqual(1);
    const left = await sql<{ id: string }[]>`select id from outbox where event->>'aggregateId' = ${id} order by id`;
    expect(left.map((r) => r.id)).toEqual(rows.slice(1).map((r) => r.id));

    await markProcessed(sql, 'g', `${id}-old`);
    await markProcessed(sql, 'g', `${id}-new`);
    await sql`update processed_events set processed_at = now() - interval '8 days' where event_id = ${`${id}-old`}`;
    expect(await pruneProcessedEvents(sql, 7 * 86_400_000)).toBe(1);
    expect(await markProcessed(sql, 'g', `${id}-new`)).toBe(false);
  });
});
