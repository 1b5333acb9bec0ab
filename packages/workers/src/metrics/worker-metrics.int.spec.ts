import { DeadLetterStream, type RetryJobData, RetryQueues, StreamfleetKeys } from '@streamfleet/core';
import { cleanupPrefix, deadLetterInput, testRedisUrl, uniquePrefix } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerMetrics, type WorkerMetricsOptions } from './worker-metrics';

describe('WorkerMetrics at scrape time', () => {
  const url = testRedisUrl();
  const prefix = uniquePrefix('wm');
  const keys = new StreamfleetKeys(prefix);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(url);
  });
  afterAll(async () => {
    redis.disconnect();
    await cleanupPrefix(url, prefix);
  });

  /** Metrics of a worker running payment and inventory, both reading `orders`. */
  const paymentAndInventory = (extra: Partial<WorkerMetricsOptions> = {}) =>
    new WorkerMetrics({
      redis,
      keys,
      groups: [
        { group: 'payment', stream: 'orders' },
        { group: 'inventory', stream: 'orders' },
      ],
      defaultMetrics: false,
      ...extra,
    });

  it('reports each of its groups as paused or not, from the set operators change', async () => {
    const metrics = paymentAndInventory();
    await redis.sadd(keys.pausedGroups, 'payment');
    const text = await metrics.registry.getSingleMetricAsString('streamfleet_group_paused');
    expect(text).toContain('streamfleet_group_paused{group="payment"} 1');
    expect(text).toContain('streamfleet_group_paused{group="inventory"} 0');
    await redis.srem(keys.pausedGroups, 'payment');
    expect(await metrics.registry.getSingleMetricAsString('streamfleet_group_paused')).toContain(
      'streamfleet_group_paused{group="payment"} 0',
    );
  });

  it('reports how many dead letters each of its groups has, as writes and discards change it', async () => {
    const metrics = paymentAndInventory();
    const dlq = new DeadLetterStream({ redis, keys });
    const dead = (entryId: string) =>
      dlq.write(deadLetterInput('payment', 'non-retryable', { type: 'order.created', data: {} }, { entryId }));
    const first = await dead('1-0');
    await dead('2-0');
    const gauge = () => metrics.registry.getSingleMetricAsString('streamfleet_group_dead_lettered');
    expect(await gauge()).toContain('streamfleet_group_dead_lettered{group="payment"} 2');
    expect(await gauge()).toContain('streamfleet_group_dead_lettered{group="inventory"} 0');
    await dlq.discard(first.id, { actor: 'test' });
    expect(await gauge()).toContain('streamfleet_group_dead_lettered{group="payment"} 1');
  });

  it('reports how many events each of its groups is retrying, from its BullMQ retry queue', async () => {
    const queues = new RetryQueues({ connection: redis, keys, lingerMs: 0 });
    try {
      const metrics = paymentAndInventory({ retryQueues: queues });
      const job = (eventId: string): RetryJobData => ({
        group: 'payment',
        stream: 'orders',
        entryId: '1-0',
        fields: ['id', eventId],
        eventId,
        type: 'order.created',
        attemptOffset: 1,
        replayCount: 0,
        firstFailedAt: '2026-01-01T00:00:00.000Z',
        failures: [],
      });
      await queues.schedule(job('due'), 0);
      await queues.schedule(job('later'), 3_600_000);
      const text = await metrics.registry.getSingleMetricAsString('streamfleet_group_retrying');
      expect(text).toContain('streamfleet_group_retrying{group="payment"} 2');
      expect(text).toContain('streamfleet_group_retrying{group="inventory"} 0');
    } finally {
      await queues.close();
    }
  });
});
