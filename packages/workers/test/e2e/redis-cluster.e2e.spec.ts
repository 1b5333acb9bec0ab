import { createRedis, StreamfleetKeys } from '@streamfleet/core';
import {
  createTestDatabase,
  type TestDatabase,
  TestRedisCluster,
  uniquePrefix,
  waitFor,
} from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOMAIN_GROUPS } from '../../src/groups/index';
import { WorkerProcess } from '../support/worker-process';

const ADMIN_TOKEN = 'cluster-e2e-admin-token';
const ORDERS_PER_ROUND = 20;

/**
 * `pnpm start` (API, relay and every group, `src/all.ts`) with `REDIS_CLUSTER=true` on a
 * Redis Cluster of three masters, each with a replica. Orders placed over HTTP are paid;
 * then the master holding the fleet's keys, which is also the one node `REDIS_URL` names,
 * is SIGKILLed and, once its replica has taken over, the next orders are paid too, with
 * nothing left pending or dead-lettered.
 */
describe('pnpm start on a Redis Cluster', () => {
  const cluster = new TestRedisCluster(3, [0, 1, 2]);
  let prefix: string;
  let db: TestDatabase;
  let p: WorkerProcess | undefined;

  beforeAll(async () => {
    await cluster.start();
    // The hardest case: the fleet's keys live on the seed node itself, which is killed below.
    do prefix = uniquePrefix('wcl');
    while ((await cluster.masterOf(new StreamfleetKeys(prefix).root)) !== cluster.masters[0]);
    db = await createTestDatabase('sf_cluster');
  }, 60_000);
  afterAll(async () => {
    await p?.kill();
    await cluster.stop();
    await db?.drop();
  });

  it('places and pays orders over HTTP, through a failover of the master holding the fleet', async () => {
    p = new WorkerProcess(
      {
        REDIS_URL: cluster.url,
        REDIS_CLUSTER: 'true',
        DATABASE_URL: db.url,
        STREAMFLEET_PREFIX: prefix,
        ADMIN_TOKEN,
        PORT: '0',
        HOST: '127.0.0.1',
        WORKER_PORT: '0',
        CONSUMER_BLOCK_MS: '200',
        VISIBILITY_TIMEOUT_MS: '3000',
        RETRY_BASE_DELAY_MS: '50',
        RETRY_MAX_DELAY_MS: '500',
        RETRY_MAX_ATTEMPTS: '10',
      },
      'src/all.ts',
    );
    const listening = await waitFor(
      () => {
        if (p?.exit) throw new Error(`spawner exited early (${JSON.stringify(p.exit)}): ${p.stderr}`);
        if (!p?.logs().some((l) => l.msg === 'worker started')) return undefined;
        return p.logs().find((l) => l.name === 'streamfleet-api' && l.msg === 'listening');
      },
      { timeoutMs: 45_000, intervalMs: 50, message: 'API listening and worker started' },
    );
    const base = listening.address as string;
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    const sku = `SKU-${prefix.slice(-8)}`;
    expect(
      (
        await call('POST', '/v1/events', {
          type: 'warehouse.stock_received',
          data: { sku, quantity: 1000, receiptId: 'GR-1' },
        })
      ).status,
    ).toBe(202);
    await waitFor(async () => (await call('GET', `/v1/inventory/${sku}`)).body.available === 1000, {
      timeoutMs: 20_000,
      message: 'received stock in the inventory',
    });
    const placeAndPay = async (round: string) => {
      const ids: string[] = [];
      for (let i = 0; i < ORDERS_PER_ROUND; i++) {
        const order = await call('POST', '/v1/orders', {
          customerId: `${round}-${i}`,
          items: [{ sku, quantity: 1, unitPrice: 100 }],
        });
        expect(order.status).toBe(201);
        ids.push(order.body.id as string);
      }
      await waitFor(
        async () => {
          const states = await Promise.all(ids.map(async (id) => (await call('GET', `/v1/orders/${id}`)).body.status));
          return states.every((s) => s === 'PAID');
        },
        { timeoutMs: 60_000, message: `the ${round} orders paid` },
      );
    };

    await placeAndPay('before');
    const keys = new StreamfleetKeys(prefix);
    const master = await cluster.masterOf(keys.root);
    expect(master.url).toBe(cluster.url);
    await master.kill();
    // The API answers 503 while the slot has no master; the orders go in once the replica has taken over.
    await waitFor(async () => (await cluster.masterOf(keys.root)) !== master, {
      timeoutMs: 30_000,
      message: 'the replica to take over',
    });
    await waitFor(async () => (await call('GET', '/readyz')).status === 200, {
      timeoutMs: 30_000,
      message: 'API ready',
    });
    await placeAndPay('after');

    // Every group settled: nothing pending or dead-lettered, and the stock adds up.
    await waitFor(
      async () => {
        const streams = (await call('GET', '/admin/groups')).body.streams as Array<{
          groups: Array<Record<string, unknown>>;
        }>;
        const groups = streams.flatMap((s) => s.groups);
        const names = new Set(groups.map((g) => g.group));
        return (
          DOMAIN_GROUPS.every((g) => names.has(g)) &&
          groups.every((g) => g.pending === 0 && g.lag === 0 && g.retrying === 0 && g.deadLettered === 0)
        );
      },
      { timeoutMs: 30_000, message: 'every domain group caught up' },
    );
    expect((await call('GET', '/admin/dlq')).body.items).toEqual([]);
    expect((await call('GET', `/v1/inventory/${sku}`)).body).toMatchObject({
      available: 1000 - 2 * ORDERS_PER_ROUND,
      reserved: 2 * ORDERS_PER_ROUND,
    });
    expect(p.exit).toBeUndefined();
    // The fleet's keys are all on the promoted master (one hash tag), seen through a cluster
    // client that starts from a list of seeds whose first is the dead master.
    const observer = createRedis(cluster.seeds, { cluster: true, maxRetriesPerRequest: 0 });
    observer.on('error', () => undefined);
    try {
      expect(await observer.xlen(keys.deadLetter)).toBe(0);
    } finally {
      observer.disconnect();
    }
  }, 180_000);
});
