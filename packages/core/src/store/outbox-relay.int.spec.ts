import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCatalog } from '../catalog';
import { fieldsToRecord } from '../events/codec';
import { createEvent } from '../events/envelope';
import { StreamfleetKeys } from '../streams/keys';
import { type PublishTarget, StreamProducer } from '../streams/producer';
import {
  cleanupPrefix,
  type MigratedTestDatabase,
  migratedTestDatabase,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '../testing/index';
import { createPostgres, type Sql } from './client';
import { enqueueOutbox } from './outbox';
import { OutboxRelay } from './outbox-relay';

let db: MigratedTestDatabase;
let sql: Sql;
let redis: Redis;
const redisUrl = testRedisUrl();
const prefixes: string[] = [];
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  db = await migratedTestDatabase('sf_relay', { max: 20 });
  sql = db.sql;
  redis = new Redis(redisUrl);
});

// Relays of one test must not publish another test's rows (they share the outbox table).
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

afterAll(async () => {
  redis?.disconnect();
  await db?.close();
  for (const p of prefixes) await cleanupPrefix(redisUrl, p);
});

/**
 * A fresh stream namespace plus `n` relays on it, each with its own lock key space;
 * `acquireIntervalMs[i]` is relay i's wait between tries for the lock (default 30 ms).
 */
function setup(n: number, lockKey: number, pollIntervalMs = 10, acquireIntervalMs: readonly number[] = []) {
  const prefix = uniquePrefix('relay');
  prefixes.push(prefix);
  const keys = new StreamfleetKeys(prefix);
  const producer = new StreamProducer({ redis, keys, catalog: createCatalog() });
  const made = Array.from(
    { length: n },
    (_, i) =>
      new OutboxRelay({
        sql,
        databaseUrl: db.url,
        producer,
        lockKey,
        pollIntervalMs,
        acquireIntervalMs: acquireIntervalMs[i] ?? 30,
        batchSize: 50,
      }),
  );
  relays.push(...made);
  return { keys, relays: made, stream: `s-${prefix}` };
}

async function enqueue(stream: string, count: number, label: string): Promise<string[]> {
  const events = Array.from({ length: count }, (_, i) =>
    createEvent({ type: 'order.delivered', data: { orderId: `${label}-${i}` }, aggregateId: `${label}-${i}` }),
  );
  await enqueueOutbox(
    sql,
    events.map((event) => ({ stream, event })),
  );
  return events.map((e) => e.id);
}

async function publishedIds(keys: StreamfleetKeys, stream: string): Promise<string[]> {
  const entries = (await redis.xrange(keys.stream(stream), '-', '+')) as Array<[string, string[]]>;
  return entries.map(([, fields]) => fieldsToRecord(fields).id as string);
}

describe('OutboxRelay', () => {
  it('publishes in id order with exactly one leader among two relays', async () => {
    const {
      keys,
      relays: [a, b],
      stream,
    } = setup(2, 990_001);
    if (!a || !b) throw new Error('relays');
    a.start();
    b.start();
    await waitFor(() => a.isLeader || b.isLeader, { message: 'a leader' });
    const ids = await enqueue(stream, 120, 'one');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 120, { message: 'all published' });
    expect(await publishedIds(keys, stream)).toEqual(ids);
    expect(a.isLeader && b.isLeader).toBe(false);
    const [leader, follower] = a.isLeader ? [a, b] : [b, a];
    // The XADDs are visible before the batch's transaction marks the rows and commits.
    await waitFor(() => leader.publishedCount >= 120, { message: 'every batch committed' });
    expect(leader.publishedCount).toBe(120);
    expect(follower.publishedCount).toBe(0);
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where published_at is null`;
    expect(row?.n).toBe(0);
  });

  it('hands over when the leader closes, losing nothing', async () => {
    const {
      keys,
      relays: [a, b],
      stream,
    } = setup(2, 990_002);
    if (!a || !b) throw new Error('relays');
    a.start();
    await waitFor(() => a.isLeader, { message: 'a leads' });
    b.start();
    const first = await enqueue(stream, 30, 'h1');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 30);
    await a.close();
    const second = await enqueue(stream, 30, 'h2');
    await waitFor(() => b.isLeader, { message: 'b takes over' });
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 60, { message: 'all published' });
    const published = await publishedIds(keys, stream);
    expect(published).toEqual([...first, ...second]);
  });

  it('a leader whose connection drops loses the lock; another takes over', async () => {
    // a, having lost its lock, waits 5 s before trying again: b, trying every 30 ms, takes over
    // first however slow the machine is (with equal waits either may win, which is fine in
    // production but not what this test is about).
    const {
      keys,
      relays: [a, b],
      stream,
    } = setup(2, 990_003, 10, [5000, 30]);
    if (!a || !b) throw new Error('relays');
    a.start();
    await waitFor(() => a.isLeader, { message: 'a leads' });
    b.start();
    // Kill the backend holding the advisory lock, as a network partition or crash would.
    await sql`
      select pg_terminate_backend(pid) from pg_locks
      where locktype = 'advisory' and objid = ${990_003} and granted`;
    await waitFor(() => b.isLeader, { message: 'b takes over' });
    await waitFor(() => !a.isLeader, { message: 'a steps down' });
    const ids = await enqueue(stream, 10, 'drop');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 10, { message: 'published' });
    expect(await publishedIds(keys, stream)).toEqual(ids);
  });

  it('a busy leader that lost its lock never publishes beside the new leader: order holds', async () => {
    const lockKey = 990_009;
    const {
      keys,
      relays: [b],
      stream,
    } = setup(1, lockKey);
    if (!b) throw new Error('relay');
    // Relay a's fourth batch hangs in its XADD (a slow Redis) until the test lets it go: a is
    // mid-batch, holding that row, when its lock goes.
    const producer = new StreamProducer({ redis, keys, catalog: createCatalog() });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const slow = Object.create(producer) as StreamProducer;
    slow.publishMany = async (targets: readonly PublishTarget[]) => {
      if (++calls === 4) await gate;
      return producer.publishMany(targets);
    };
    const a = new OutboxRelay({
      sql,
      databaseUrl: db.url,
      producer: slow,
      lockKey,
      pollIntervalMs: 10,
      acquireIntervalMs: 30,
      batchSize: 1,
    });
    relays.push(a);
    a.start();
    await waitFor(() => a.isLeader, { message: 'a leads' });
    b.start();
    const ids = await enqueue(stream, 40, 'busy');
    try {
      await waitFor(() => calls === 4, { message: 'a is stuck in its fourth batch' });
      await sql`
        select pg_terminate_backend(pid) from pg_locks
        where locktype = 'advisory' and objid = ${lockKey} and granted`;
      await waitFor(() => b.isLeader, { message: 'b takes over' });
      // b's first batch either waits for a's (a lock wait) or, unguarded, publishes past it.
      await waitFor(
        async () => {
          const [row] = await sql<{ n: number }[]>`
            select count(*)::int as n from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`;
          return (row?.n ?? 0) > 0 || (await publishedIds(keys, stream)).length > 3;
        },
        { message: "b's first batch" },
      );
    } finally {
      release();
    }
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 40, { message: 'all published' });
    expect(await publishedIds(keys, stream)).toEqual(ids);
  });

  it('publishes a row whose transaction commits after later rows were published', async () => {
    const {
      keys,
      relays: [a],
      stream,
    } = setup(1, 990_004);
    if (!a) throw new Error('relay');
    a.start();
    await waitFor(() => a.isLeader);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let lateIds: string[] = [];
    // Takes a lower outbox id, then holds its transaction open.
    const late = sql.begin(async (tx) => {
      lateIds = await (async () => {
        const event = createEvent({ type: 'order.delivered', data: { orderId: 'late' }, aggregateId: 'late' });
        await enqueueOutbox(tx, [{ stream, event }]);
        return [event.id];
      })();
      await gate;
    });
    await waitFor(() => lateIds.length === 1);
    const early = await enqueue(stream, 5, 'early');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 5, { message: 'early published' });
    release();
    await late;
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 6, { message: 'late published' });
    expect(await publishedIds(keys, stream)).toEqual([...early, ...lateIds]);
  });

  it('wakes on commit (LISTEN/NOTIFY) instead of waiting for the next poll', async () => {
    const {
      keys,
      relays: [a],
      stream,
    } = setup(1, 990_005, 60_000);
    if (!a) throw new Error('relay');
    a.start();
    await waitFor(() => a.isLeader);
    const first = await enqueue(stream, 1, 'notify-1');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 1, { timeoutMs: 3000, message: 'first' });
    // Published after its round: only a wake-up can beat the one-minute poll.
    const second = await enqueue(stream, 3, 'notify-2');
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 4, { timeoutMs: 3000, message: 'woken' });
    const ids = [...first, ...second];
    expect(await publishedIds(keys, stream)).toEqual(ids);
  });

  it('a leader killed between publishing and marking: the batch is published again, nothing lost', async () => {
    const lockKey = 990_007;
    const prefix = uniquePrefix('relay');
    prefixes.push(prefix);
    const keys = new StreamfleetKeys(prefix);
    const stream = `s-${prefix}`;
    const producer = new StreamProducer({ redis, keys, catalog: createCatalog() });
    // The leader runs on its own pool, so "killing its process" can end exactly its sessions.
    const appName = `relay-crash-${prefix}`.slice(0, 60);
    const leaderSql = createPostgres(db.url, { max: 3, applicationName: appName });
    let crashed: () => void = () => undefined;
    const xadded = new Promise<void>((resolve) => {
      crashed = resolve;
    });
    let unfreeze: () => void = () => undefined;
    const frozen = new Promise<void>((resolve) => {
      unfreeze = resolve;
    });
    class FreezingProducer extends StreamProducer {
      override async publishMany(targets: readonly PublishTarget[]): Promise<string[]> {
        const ids = await super.publishMany(targets);
        crashed();
        await frozen; // XADD done, the row update never runs: the process "dies" here
        return ids;
      }
    }
    const common = { databaseUrl: db.url, lockKey, pollIntervalMs: 10, acquireIntervalMs: 30, batchSize: 50 };
    // The "dead" a's loop lives on (its transaction fails once its sessions are killed): it waits
    // 5 s before trying for the lock again, so b takes over first however slow the machine is.
    const a = new OutboxRelay({
      ...common,
      acquireIntervalMs: 5000,
      sql: leaderSql,
      producer: new FreezingProducer({ redis, keys, catalog: createCatalog() }),
    });
    const b = new OutboxRelay({ ...common, sql, producer });
    relays.push(a, b);
    try {
      a.start();
      await waitFor(() => a.isLeader, { message: 'a leads' });
      b.start();
      const ids = await enqueue(stream, 20, 'crash');
      await xadded;
      expect(await publishedIds(keys, stream)).toEqual(ids);
      expect(b.isLeader).toBe(false);

      // Kill the leader: its lock session and its pool's sessions (its open transaction).
      await sql`
        select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = ${appName}
           or pid in (select pid from pg_locks where locktype = 'advisory' and objid = ${lockKey} and granted)`;
      await waitFor(() => b.isLeader, { message: 'b takes over' });
      // b counts a batch once its transaction (XADDs, then the marks) has committed.
      await waitFor(() => b.publishedCount >= 20, { message: 'republished by b' });

      // At-least-once: every row twice (once by the dead leader, once by b), none missing.
      expect(await publishedIds(keys, stream)).toEqual([...ids, ...ids]);
      expect(b.publishedCount).toBe(20);
      const [row] = await sql<{ n: number }[]>`
        select count(*)::int as n from outbox where published_at is null and event->>'aggregateId' like 'crash-%'`;
      expect(row?.n).toBe(0);
    } finally {
      unfreeze();
      await a.close();
      await leaderSql.end({ timeout: 1 });
    }
  });

  it('parks a row the catalog refuses and keeps publishing the others', async () => {
    const {
      keys,
      relays: [a],
      stream,
    } = setup(1, 990_006);
    if (!a) throw new Error('relay');
    const before = await enqueue(stream, 2, 'ok-1');
    const bad = createEvent({ type: 'order.delivered', data: { wrong: true }, aggregateId: 'bad' });
    await enqueueOutbox(sql, [{ stream, event: bad }]);
    const after = await enqueue(stream, 2, 'ok-2');
    a.start();
    await waitFor(async () => (await publishedIds(keys, stream)).length >= 4, { message: 'valid rows published' });
    expect(await publishedIds(keys, stream)).toEqual([...before, ...after]);
    type Row = { failed_at: Date | null; last_error: string | null; published_at: Date | null };
    const parked = async (): Promise<Row | undefined> =>
      (await sql<Row[]>`select failed_at, last_error, published_at from outbox where event_id = ${bad.id}`)[0];
    // The XADDs are visible before the relay's transaction (which parks the row) commits.
    await waitFor(async () => (await parked())?.failed_at != null, { message: 'bad row parked' });
    const row = await parked();
    expect(row?.failed_at).toBeInstanceOf(Date);
    expect(row?.published_at).toBeNull();
    expect(row?.last_error).toMatch(/orderId/);
  });
});
