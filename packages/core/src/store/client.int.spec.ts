import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, testDatabaseUrl, waitFor } from '../testing/index';
import { createPostgres, type Sql } from './client';

/**
 * Backends terminated under a postgres.js pool (`pg_terminate_backend`, a failover, an
 * idle-session killer). postgres.js 3.4.9 as published crashes the process here: the
 * ROLLBACK of a transaction whose connection died is written to a null socket from
 * setImmediate (uncaught TypeError, porsager/postgres#1154, #1208), and a statement a dead
 * transaction issues after the pool reconnected runs outside any transaction. Both are
 * fixed by patches/postgres@3.4.9.patch; these tests fail without it (vitest reports the
 * uncaught error). So does a database refusing connections for a while: unpatched, a
 * reconnect refused after a terminated query left that query's state behind, and the
 * next query hung while the connection reconnected in a loop.
 */

let db: TestDatabase;
let owner: Sql; // the test database's tables
let admin: Sql; // on the server's own database: watches and terminates the test database's backends

/** Error codes a statement may fail with when its backend is terminated. */
const CONNECTION_LOST = ['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'ECONNRESET', 'EPIPE', '57P01'];

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String(err);
}

async function terminateBackends(): Promise<number> {
  const [row] = await admin<{ n: number }[]>`
    select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
    where datname = ${db.name}`;
  return row?.n ?? 0;
}

beforeAll(async () => {
  db = await createTestDatabase('sf_pgkill');
  owner = postgres(db.url, { max: 1, onnotice: () => undefined });
  admin = postgres(testDatabaseUrl(), { max: 1, onnotice: () => undefined });
  await owner`create table writes (tag text not null, step int not null)`;
});

afterAll(async () => {
  await admin?.unsafe(`alter database "${db.name}" with allow_connections true`).catch(() => undefined);
  await owner?.end();
  await admin?.end();
  await db?.drop();
});

describe('postgres.js pool with backends terminated', () => {
  it('transactions cut off mid-way fail with a connection error, write all or nothing, and the pool recovers', async () => {
    const sql = createPostgres(db.url, { max: 4, applicationName: 'sf-pgkill' });
    const committed: string[] = [];
    const attempted: string[] = [];
    const failures: string[] = [];
    let stop = false;
    let running = 0;
    const worker = async (): Promise<void> => {
      running += 1;
      while (!stop) {
        const tag = randomUUID();
        attempted.push(tag);
        try {
          await sql.begin(async (tx) => {
            await tx`insert into writes (tag, step) values (${tag}, 1)`;
            // A little work between the statements, so that kills land inside transactions.
            await tx`select count(*) from generate_series(1, 5000)`;
            await tx`insert into writes (tag, step) values (${tag}, 2)`;
          });
          committed.push(tag);
        } catch (err) {
          failures.push(codeOf(err));
        }
      }
      running -= 1;
    };
    const workers = Array.from({ length: 8 }, worker);
    try {
      let killed = 0;
      for (let round = 0; round < 12; round++) {
        // Let some transactions run (and the pool reconnect) before the next kill.
        const target = committed.length + 5 + (round % 4) * 5;
        await waitFor(() => committed.length >= target, { timeoutMs: 15_000, message: `commits after kill ${round}` });
        killed += await terminateBackends();
      }
      expect(killed).toBeGreaterThan(0);
    } finally {
      stop = true;
      // Unpatched, some transactions never settle (a query stuck on a dead connection).
      await waitFor(() => running === 0, { timeoutMs: 10_000, message: 'every transaction settled' });
      await Promise.all(workers);
    }

    expect(failures.length).toBeGreaterThan(0);
    expect(failures.filter((code) => !CONNECTION_LOST.includes(code))).toEqual([]);
    // A transaction either wrote both rows or none; every one reported committed wrote both.
    const rows = await owner<{ tag: string; n: number }[]>`select tag, count(*)::int as n from writes group by tag`;
    const written = new Map(rows.map((r) => [r.tag, r.n]));
    expect([...written.values()].filter((n) => n !== 2)).toEqual([]);
    expect(committed.filter((tag) => written.get(tag) !== 2)).toEqual([]);
    expect([...written.keys()].filter((tag) => !attempted.includes(tag))).toEqual([]);
    // The pool serves again at once (no stale connection stalls it).
    let served = false;
    const queries = Promise.all(Array.from({ length: 8 }, () => sql`select 1`)).then(() => {
      served = true;
    });
    await waitFor(() => served, { timeoutMs: 5000, message: 'the pool to serve again (no stale connection)' });
    await queries;
    await sql.end({ timeout: 5 });
  });

  it('while the database refuses connections, queries fail at once; afterwards the pool serves again', async () => {
    const sql = createPostgres(db.url, { max: 2, applicationName: 'sf-pgkill-refused' });
    const refused = [...CONNECTION_LOST, '55000']; // 55000: database not accepting connections
    /** Settles `query` within a bound: unpatched, a query after a refused reconnect hung forever. */
    const outcome = async (query: () => Promise<unknown>): Promise<string> => {
      let result: string | undefined;
      query().then(
        () => {
          result = 'ok';
        },
        (err: unknown) => {
          result = codeOf(err);
        },
      );
      return waitFor(() => result, { timeoutMs: 5000, message: 'query settled' });
    };
    try {
      await sql`select 1`;
      await admin.unsafe(`alter database "${db.name}" with allow_connections false`);
      await terminateBackends();
      for (let round = 0; round < 3; round++) {
        expect(refused).toContain(await outcome(() => sql`select 1`));
        expect(refused).toContain(await outcome(() => sql.begin((tx) => tx`select 1`)));
      }
    } finally {
      await admin.unsafe(`alter database "${db.name}" with allow_connections true`);
    }
    expect(await outcome(() => sql`select 1`)).toBe('ok');
    expect(await outcome(() => sql.begin((tx) => tx`select 1`))).toBe('ok');
    await sql.end({ timeout: 5 });
  });

  it('a backend terminated while a new connection fetches its array types is no unhandled rejection', async () => {
    // Hold pg_type so the type fetch every new postgres.js connection runs first has to wait.
    const blocker = postgres(db.url, { max: 1, onnotice: () => undefined });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked = false;
    const holding = blocker.begin(async (tx) => {
      await tx`lock table pg_catalog.pg_type in access exclusive mode`;
      locked = true;
      await held;
    });
    const sql = createPostgres(db.url, { max: 1, applicationName: 'sf-pgkill-types' });
    try {
      await waitFor(() => locked, { message: 'pg_type locked' });
      const first = sql`select 1 as one`.then(
        (rows) => rows,
        (err: unknown) => codeOf(err),
      );
      const fetching = await waitFor(
        async () =>
          (
            await admin<{ pid: number }[]>`
              select pid from pg_stat_activity
              where datname = ${db.name} and application_name = 'sf-pgkill-types' and query like '%typarray%'`
          )[0],
        { message: 'type fetch waiting on the lock' },
      );
      await admin`select pg_terminate_backend(${fetching.pid})`;
      release();
      await holding;
      // The waiting query fails with a connection error or runs on the reconnected connection.
      const outcome = await first;
      if (typeof outcome === 'string') expect(CONNECTION_LOST).toContain(outcome);
      else expect(outcome).toEqual([{ one: 1 }]);
      expect(await sql`select 2 as two`).toEqual([{ two: 2 }]);
    } finally {
      release();
      await sql.end({ timeout: 5 });
      await blocker.end({ timeout: 5 });
    }
  });

  it('a transaction whose backend is terminated while it awaits something else runs nothing afterwards', async () => {
    const sql = createPostgres(db.url, { max: 1, applicationName: 'sf-pgkill-idle' });
    const tag = randomUUID();
    let resume: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      resume = resolve;
    });
    let lateWrite: Promise<unknown> | undefined;
    let inside = false;
    const transaction = sql
      .begin(async (tx) => {
        await tx`insert into writes (tag, step) values (${tag}, 1)`;
        inside = true;
        await gate; // e.g. a payment gateway call inside the transaction
        lateWrite = tx`insert into writes (tag, step) values (${tag}, 2)`;
        await lateWrite;
      })
      .then(
        () => 'committed',
        (err: unknown) => codeOf(err),
      );
    try {
      await waitFor(() => inside, { message: 'transaction open' });
      expect(await terminateBackends()).toBeGreaterThan(0);
      expect(CONNECTION_LOST).toContain(await transaction);
      // Another caller makes the pool reconnect its one connection.
      expect(await sql`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      resume();
    }
    await waitFor(() => lateWrite !== undefined, { message: 'late write issued' });
    await expect(lateWrite).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    const rows = await owner`select step from writes where tag = ${tag}`;
    expect(rows).toEqual([]);
    await sql.end({ timeout: 5 });
  });
});
