import { StreamfleetKeys } from '@streamfleet/core';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerMetrics } from './worker-metrics';

describe('WorkerMetrics', () => {
  // Never connects: the names are checked without a scrape.
  const redis = new Redis({ lazyConnect: true });
  afterEach(() => redis.disconnect());

  it('names the default process metrics streamfleet_worker_*, like the API its streamfleet_api_*', () => {
    const metrics = new WorkerMetrics({ redis, keys: new StreamfleetKeys('wm-names'), groups: [] });
    const names = metrics.registry.getMetricsAsArray().map((m) => m.name);
    expect(names).toContain('streamfleet_worker_process_cpu_user_seconds_total');
    expect(names).toContain('streamfleet_worker_nodejs_eventloop_lag_seconds');
    expect(names.filter((n) => !n.startsWith('streamfleet_'))).toEqual([]);
  });

  it('counts handler timeouts by group, from zero for every group it runs', async () => {
    const metrics = new WorkerMetrics({
      redis,
      keys: new StreamfleetKeys('wm-timeouts'),
      groups: [
        { group: 'payment', stream: 'orders' },
        { group: 'inventory', stream: 'orders' },
      ],
      defaultMetrics: false,
    });
    metrics.timedOut('payment');
    metrics.timedOut('payment');
    const text = await metrics.registry.getSingleMetricAsString('streamfleet_handler_timeouts_total');
    expect(text).toContain('streamfleet_handler_timeouts_total{group="payment"} 2');
    expect(text).toContain('streamfleet_handler_timeouts_total{group="inventory"} 0');
  });
});
