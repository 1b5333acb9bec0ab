import {
  createCatalog,
  createEvent,
  loadConfig,
  StreamfleetKeys,
  StreamProducer,
  silentLogger,
} from '@streamfleet/core';
import { cleanupPrefix, testRedisUrl, uniquePrefix, waitFor } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRegistry, E2E_EVENT_TYPE, E2E_STREAM, e2eKeys, GroupRegistry, registerE2eEvents } from './groups/index';
import { Worker } from './worker';

describe('Worker endpoints', () => {
  const prefix = uniquePrefix('wk');
  const redisUrl = testRedisUrl();
  const redis = new Redis(redisUrl);
  const keys = new StreamfleetKeys(prefix);
  let worker: Worker;
  let base: string;

  beforeAll(async () => {
    const config = loadConfig({
      REDIS_URL: redisUrl,
      STREAMFLEET_PREFIX: prefix,
      WORKER_PORT: '0',
      WORKER_GROUPS: 'e2e-a,e2e-b',
      RETRY_BASE_DELAY_MS: '10',
      RETRY_MAX_DELAY_MS: '20',
      RETRY_MAX_ATTEMPTS: '2',
      // Overrides may name any known group, not only the selected ones: workers share the env.
      RETRY_OVERRIDES: '{"payment":{"maxAttempts":5}}',
    });
    worker = await Worker.create({ config, logger: silentLogger, registry: defaultRegistry(), defaultMetrics: false });
    await worker.start();
    expect(worker.port).toBeGreaterThan(0);
    base = `http://127.0.0.1:${worker.port}`;
  });

  afterAll(async () => {
    await worker?.close({ timeoutMs: 1000 });
    redis.disconnect();
    await cleanupPrefix(redisUrl, prefix);
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('counts processed, failed and retried events per group and reports pending, lag and dead letters', async () => {
    const catalog = createCatalog();
    registerE2eEvents(catalog);
    const producer = new StreamProducer({ redis, keys, catalog });
    await producer.publishMany(
      Array.from({ length: 20 }, (_, n) => ({
        stream: E2E_STREAM,
        event: createEvent({ type: E2E_EVENT_TYPE, data: n < 2 ? { n, failFirst: true } : { n } }),
      })),
    );
    for (const group of ['e2e-a', 'e2e-b']) {
      await waitFor(async () => (await redis.scard(e2eKeys(keys, group).seen)) === 20, {
        message: `${group} to handle 20 events`,
      });
    }
    const metric = async (line: string) => {
      const body = await (await fetch(`${base}/metrics`)).text();
      return body.split('\n').find((l) => l.startsWith(line));
    };
    await waitFor(async () => (await metric('streamfleet_events_processed_total{group="e2e-a"}'))?.endsWith(' 20'), {
      message: 'processed counter to reach 20',
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    expect(body).toContain('streamfleet_events_processed_total{group="e2e-b"} 20');
    expect(body).toContain('streamfleet_events_failed_total{group="e2e-a"} 2');
    expect(body).toContain('streamfleet_events_retried_total{group="e2e-a"} 2');
    expect(body).toMatch(/streamfleet_handler_duration_seconds_count\{group="e2e-a"\} 20/);
    expect(body).toContain('streamfleet_group_pending{group="e2e-a",stream="e2e"} 0');
    expect(body).toContain('streamfleet_group_lag{group="e2e-b",stream="e2e"} 0');
    expect(body).toContain('streamfleet_dead_letter_length 0');
  });

  it('reports not ready once closing', async () => {
    worker.markClosing();
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'not-ready', reason: 'shutting down' });
  });
});

describe('Worker close', () => {
  it('has its group sets hand over fleet-wide duties before it drains its handlers, and closes them after', async () => {
    const prefix = uniquePrefix('wkc');
    const redisUrl = testRedisUrl();
    const steps: string[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const registry = new GroupRegistry().add({
      name: 'slow-set',
      groups: ['slow'],
      includedByDefault: true,
      registerEvents: registerE2eEvents,
      create: () => [
        {
          group: 'slow',
          stream: E2E_STREAM,
          handler: async () => {
            steps.push('handler started');
            await held;
            steps.push('handler done');
          },
        },
      ],
      handOver: async () => {
        steps.push('hand over');
        // Handed over while the handler is still draining: nothing waits for it.
        release();
      },
      close: async () => void steps.push('close'),
    });
    const config = loadConfig({ REDIS_URL: redisUrl, STREAMFLEET_PREFIX: prefix, WORKER_PORT: '0' });
    const worker = await Worker.create({ config, logger: silentLogger, registry, defaultMetrics: false });
    try {
      await worker.start();
      const catalog = createCatalog();
      registerE2eEvents(catalog);
      const redis = new Redis(redisUrl);
      await new StreamProducer({ redis, keys: new StreamfleetKeys(prefix), catalog }).publish(
        E2E_STREAM,
        createEvent({ type: E2E_EVENT_TYPE, data: { n: 1 } }),
      );
      redis.disconnect();
      await waitFor(() => steps.includes('handler started'));
      await worker.close({ timeoutMs: 10_000 });
      expect(steps).toEqual(['handler started', 'hand over', 'handler done', 'close']);
    } finally {
      release();
      await worker.close({ timeoutMs: 1000 });
      await cleanupPrefix(redisUrl, prefix);
    }
  });
});
