import { StreamfleetKeys } from '@streamfleet/core';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerMetrics } from './worker-metrics';

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

  it('reports each of its groups as paused or not, from the set operators change', async () => {
    const metrics = new WorkerMetrics({
      redis,
      keys,
      groups: [
        { group: 'payment', stream: 'orders' },
        { group: 'inventory', stream: 'orders' },
      ],
      defaultMetrics: false,
    });
    await redis.sadd(keys.pausedGroups, 'payment');
    const text = await metrics.registry.getSingleMetricAsString('streamfleet_group_paused');
    expect(text).toContain('streamfleet_group_paused{group="payment"} 1');
    expect(text).toContain('streamfleet_group_paused{group="inventory"} 0');
    await redis.srem(keys.pausedGroups, 'payment');
    expect(await metrics.registry.getSingleMetricAsString('streamfleet_group_paused')).toContain(
      'streamfleet_group_paused{group="payment"} 0',
    );
  });
});
