import { randomUUID } from 'node:crypto';
import {
  createOrder,
  createPostgres,
  DeadLetterStream,
  getOrderView,
  getPayment,
  getSaga,
  loadConfig,
  loadOrder,
  PAYMENT_GROUP,
  PROJECTION_GROUP,
  SAGA_GROUP,
  type Sql,
  StreamfleetKeys,
  setStock,
  silentLogger,
} from '@streamfleet/core';
import { cleanupPrefix, createTestDatabase, testRedisUrl, uniquePrefix, waitFor } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../worker';
import { DOMAIN_GROUPS } from './domain-groups';
import { defaultRegistry } from './index';

/**
 * A worker on its own database and key prefix, started (which migrates the empty database
 * and starts the outbox relay), plus a small pool for the test's reads.
 */
async function startWorker(options: {
  database: string;
  prefix: string;
  env?: Record<string, string>;
}): Promise<{ worker: Worker; sql: Sql; prefix: string; close(): Promise<void> }> {
  const prefix = uniquePrefix(options.prefix);
  const redisUrl = testRedisUrl();
  const db = await createTestDatabase(options.database);
  let worker: Worker | undefined;
  let sql: Sql | undefined;
  const close = async () => {
    await worker?.close({ timeoutMs: 2000 });
    await sql?.end({ timeout: 5 });
    await db.drop();
    await cleanupPrefix(redisUrl, prefix);
  };
  try {
    const config = loadConfig({
      REDIS_URL: redisUrl,
      DATABASE_URL: db.url,
      STREAMFLEET_PREFIX: prefix,
      WORKER_PORT: '0',
      ...options.env,
    });
    worker = await Worker.create({ config, logger: silentLogger, registry: defaultRegistry(), defaultMetrics: false });
    await worker.start();
    sql = createPostgres(db.url, { max: 2 });
    return { worker, sql, prefix, close };
  } catch (err) {
    await close();
    throw err;
  }
}

describe('worker running the order domain', () => {
  let worker: Worker;
  let sql: Sql;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ worker, sql, close } = await startWorker({ database: 'sf_workers', prefix: 'wd' }));
  });

  afterAll(async () => {
    await close?.();
  });

  it('runs every domain group by default', () => {
    expect(worker.definitions.map((d) => d.group).sort()).toEqual([...DOMAIN_GROUPS].sort());
  });

  it('an order committed to the outbox is relayed and handled by every group', async () => {
    const orderId = randomUUID();
    await setStock(sql, 'SKU-W1', 10);
    await createOrder(sql, { orderId, customerId: 'cust-w', items: [{ sku: 'SKU-W1', quantity: 1, unitPrice: 500 }] });
    await waitFor(async () => (await getOrderView(sql, orderId)) !== undefined, {
      timeoutMs: 15_000,
      message: 'the projection to show the order',
    });
    const processed = async () => {
      const body = (await worker.metrics.render()).body;
      return DOMAIN_GROUPS.every((g) => {
        const line = body.split('\n').find((l) => l.startsWith(`streamfleet_events_processed_total{group="${g}"}`));
        return line !== undefined && Number(line.split(' ').at(-1)) >= 1;
      });
    };
    await waitFor(processed, { timeoutMs: 15_000, message: 'every domain group to handle an event' });
    const body = (await worker.metrics.render()).body;
    expect(body).toContain('streamfleet_dead_letter_length 0');
  });

  it('reports the outbox backlog and parked rows on /metrics', async () => {
    const gauge = async (name: string) => {
      const line = (await worker.metrics.render()).body.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(' ').at(-1));
    };
    await waitFor(async () => (await gauge('streamfleet_outbox_unpublished')) === 0, {
      message: 'the relay to publish everything',
    });
    expect(await gauge('streamfleet_outbox_oldest_unpublished_age_seconds')).toBe(0);
    expect(await gauge('streamfleet_outbox_parked')).toBe(0);
    // A row the catalog refuses (as one written before validation existed, or by hand).
    await sql`
      insert into outbox (stream, event_id, event)
      values ('orders', ${randomUUID()}, ${sql.json({ id: randomUUID(), type: 'order.delivered', data: {} })})`;
    await waitFor(async () => (await gauge('streamfleet_outbox_parked')) === 1, {
      timeoutMs: 15_000,
      message: 'the refused row parked and counted',
    });
    expect(await gauge('streamfleet_outbox_unpublished')).toBe(0);
  });
});

describe('worker housekeeping', () => {
  let sql: Sql;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ sql, close } = await startWorker({
      database: 'sf_workers_hk',
      prefix: 'wh',
      // No inventory group runs, so a new order's saga waits for a reservation that never comes.
      env: { WORKER_GROUPS: `${SAGA_GROUP},${PROJECTION_GROUP}`, SAGA_TIMEOUT_MS: '400' },
    }));
  });

  afterAll(async () => {
    await close?.();
  });

  it('gives up a saga that waited past SAGA_TIMEOUT_MS: the order is cancelled with a timeout reason', async () => {
    const orderId = randomUUID();
    await createOrder(sql, { orderId, customerId: 'cust-t', items: [{ sku: 'SKU-T1', quantity: 1, unitPrice: 100 }] });
    await waitFor(async () => (await getSaga(sql, orderId))?.state === 'cancelled', {
      timeoutMs: 15_000,
      message: 'the saga to time out',
    });
    expect(await loadOrder(sql, orderId)).toMatchObject({
      status: 'CANCELLED',
      cancellationReason: 'timeout: awaiting_reservation',
    });
    await waitFor(async () => (await getOrderView(sql, orderId))?.status === 'CANCELLED', {
      timeoutMs: 15_000,
      message: 'the read model to show the cancellation',
    });
  });
});

describe('worker with PAYMENT_SIMULATOR_FAILURE_RATE=1', () => {
  let worker: Worker;
  let sql: Sql;
  let redis: Redis;
  let deadLetters: DeadLetterStream;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    let prefix: string;
    ({ worker, sql, prefix, close } = await startWorker({
      database: 'sf_workers_payfail',
      prefix: 'wp',
      env: {
        PAYMENT_SIMULATOR_FAILURE_RATE: '1',
        RETRY_MAX_ATTEMPTS: '2',
        RETRY_BASE_DELAY_MS: '10',
        RETRY_MAX_DELAY_MS: '10',
      },
    }));
    redis = new Redis(testRedisUrl(), { lazyConnect: true });
    deadLetters = new DeadLetterStream({ redis, keys: new StreamfleetKeys(prefix) });
  });

  afterAll(async () => {
    redis?.disconnect();
    await close?.();
  });

  it('every charge fails transiently: the payment is retried, then dead-lettered, and nothing is charged', async () => {
    const orderId = randomUUID();
    await setStock(sql, 'SKU-P1', 10);
    await createOrder(sql, { orderId, customerId: 'cust-p', items: [{ sku: 'SKU-P1', quantity: 1, unitPrice: 500 }] });
    const entry = await waitFor(
      async () => (await deadLetters.list({ group: PAYMENT_GROUP })).items.find((e) => e.aggregateId === orderId),
      { timeoutMs: 15_000, message: "the order's payment to be dead-lettered" },
    );
    expect(entry.attempts).toBe(2);
    expect(entry.lastError.code).toBe('PAYMENT_GATEWAY_UNAVAILABLE');
    const body = (await worker.metrics.render()).body;
    const retried = body
      .split('\n')
      .find((l) => l.startsWith(`streamfleet_events_retried_total{group="${PAYMENT_GROUP}"}`));
    expect(Number(retried?.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    expect((await getPayment(sql, orderId))?.status).not.toBe('succeeded');
  });
});
