/**
 * Test support shared by every package: real Redis and Postgres from `REDIS_URL` /
 * `DATABASE_URL` (CI, or a laptop with local services), or testcontainers when unset
 * (started once by `globalSetup`). Each test file owns a random key prefix or database.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { createPostgres, type PostgresOptions, type Sql } from '../store/client';
import { migrate } from '../store/migrations';
import { StreamfleetKeys } from '../streams/keys';

export { type CapturingLogger, capturingLogger, type LogLine } from './capturing-logger';
export { deadLetterInput } from './dead-letter-input';
export { type FleetWithRelayOptions, startFleetWithRelay } from './fleet-with-relay';
export { handlerContext } from './handler-context';
export { type ProcessExit, TestNodeProcess } from './node-process';
export { type OrderDomainRun, orderDomainBacklog, waitForOrderDomainSettled } from './order-domain-settled';
export { TestRedisCluster } from './redis-cluster';
export { freePort, TestRedisServer } from './redis-server';
export { type RecordedWebhook, startWebhookRecorder, type WebhookRecorder } from './webhook-recorder';

export function testRedisUrl(): string {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set: run through vitest (globalSetup starts a container)');
  return url;
}

export function testDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run through vitest (globalSetup starts a container)');
  return url;
}

/** A fresh prefix, e.g. `t-3f9a1c2b`, so parallel test files never share keys. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under a prefix. */
export async function cleanupPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    const pattern = new StreamfleetKeys(prefix).pattern;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  message?: string;
}

/** Polls `condition` until it returns a truthy value; fails with `message` on timeout. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? ` (last error: ${last.message})` : '';
      throw new Error(`timed out waiting for ${options.message ?? 'condition'}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 20));
  }
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Creates an empty database for one spec file ("a database costs milliseconds"). */
export async function createTestDatabase(label = 'sf_test'): Promise<TestDatabase> {
  const adminUrl = testDatabaseUrl();
  const name = `${label}_${randomBytes(5).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    async drop() {
      const sql = postgres(adminUrl, { max: 1, onnotice: () => undefined });
      try {
        await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await sql.end();
      }
    },
  };
}

export interface MigratedTestDatabase {
  readonly url: string;
  readonly name: string;
  /** A pool on the database, every migration applied. */
  readonly sql: Sql;
  /** Ends the pool, then drops the database. */
  close(): Promise<void>;
}

/** `createTestDatabase` with the schema migrated and a pool open on it. */
export async function migratedTestDatabase(
  label: string,
  options: PostgresOptions = {},
): Promise<MigratedTestDatabase> {
  const db = await createTestDatabase(label);
  const sql = createPostgres(db.url, options);
  const close = async () => {
    await sql.end();
    await db.drop();
  };
  try {
    await migrate(sql);
  } catch (err) {
    await close();
    throw err;
  }
  return { url: db.url, name: db.name, sql, close };
}
