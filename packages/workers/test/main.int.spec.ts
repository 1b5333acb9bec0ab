import { createServer, type Server } from 'node:net';
import { createCatalog, createEvent, StreamfleetKeys, StreamProducer } from '@streamfleet/core';
import { cleanupPrefix, testRedisUrl, uniquePrefix, waitFor } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { E2E_EVENT_TYPE, E2E_STREAM, e2eKeys, registerE2eEvents } from '../src/groups/index';
import { spawnWorker, type WorkerProcess } from './support/worker-process';

describe('worker process (src/main.ts)', () => {
  const redisUrl = testRedisUrl();
  const prefixes: string[] = [];
  const running: WorkerProcess[] = [];
  const start = (env: Record<string, string>) => {
    const prefix = uniquePrefix('wm');
    prefixes.push(prefix);
    const w = spawnWorker({ REDIS_URL: redisUrl, STREAMFLEET_PREFIX: prefix, WORKER_PORT: '0', ...env });
    running.push(w);
    return { w, prefix };
  };

  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.kill()));
  });
  afterAll(async () => {
    for (const p of prefixes) await cleanupPrefix(redisUrl, p);
  });

  it('exits 1 with a message naming an invalid variable', async () => {
    const { w } = start({ RETRY_MAX_ATTEMPTS: 'abc' });
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.stderr).toContain('RETRY_MAX_ATTEMPTS');
    expect(w.stderr).toContain('"abc"');
  });

  it('exits 1 naming unknown groups in WORKER_GROUPS', async () => {
    const { w } = start({ WORKER_GROUPS: 'e2e-a,no-such-group' });
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.stderr).toContain('WORKER_GROUPS');
    expect(w.stderr).toContain('no-such-group');
  });

  it('exits 1 naming RETRY_OVERRIDES and a group it names that no group set defines', async () => {
    const { w } = start({ WORKER_GROUPS: 'e2e-a', RETRY_OVERRIDES: '{"paymnet":{"maxAttempts":5}}' });
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.stderr).toContain('RETRY_OVERRIDES: unknown group(s) paymnet');
  });

  it('exits 1 naming RETRY_OVERRIDES when an override value is not a JSON integer', async () => {
    const { w } = start({ WORKER_GROUPS: 'e2e-a', RETRY_OVERRIDES: '{"payment":{"maxAttempts":true}}' });
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.stderr).toContain('RETRY_OVERRIDES: payment.maxAttempts: must be a JSON number');
  });

  it('exits 1 naming SHUTDOWN_TIMEOUT_MS longer than a Node timer can wait (its watchdog would fire at once)', async () => {
    const { w } = start({ WORKER_GROUPS: 'e2e-a', SHUTDOWN_TIMEOUT_MS: String(2 ** 31) });
    const exit = await w.exited;
    expect(exit.code).toBe(1);
    expect(w.stderr).toContain('SHUTDOWN_TIMEOUT_MS: must be at most 2073600000 (24 days)');
  });

  it('runs without its endpoints when WORKER_PORT is taken, and exits 0 on SIGTERM', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { w } = start({ WORKER_GROUPS: 'e2e-a', WORKER_PORT: String(port) });
      await waitFor(() => w.logs().some((l) => l.msg === 'worker started'), {
        timeoutMs: 20_000,
        message: 'worker started',
      });
      expect(w.logs().some((l) => String(l.msg).includes('could not listen'))).toBe(true);
      w.signal('SIGTERM');
      expect((await w.exited).code).toBe(0);
    } finally {
      blocker.close();
    }
  });

  it('a repeated signal within a second is the same request: graceful shutdown, exit 0', async () => {
    const { w } = start({ WORKER_GROUPS: 'e2e-a' });
    await w.ready();
    // What Ctrl-C under `pnpm start` delivers: the terminal's SIGINT, then pnpm's relay of it.
    w.signal('SIGINT');
    w.signal('SIGINT');
    w.signal('SIGTERM');
    const exit = await w.exited;
    expect(exit.code).toBe(0);
    expect(w.logs().some((l) => l.msg === 'shutdown complete')).toBe(true);
    expect(w.logs().some((l) => l.msg === 'second signal: exiting now')).toBe(false);
  });

  it('a second SIGTERM during a slow shutdown exits at once with 143', async () => {
    const { w, prefix } = start({
      WORKER_GROUPS: 'e2e-a',
      E2E_HANDLER_DELAY_MS: '20000',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    await w.ready();
    const redis = new Redis(redisUrl);
    try {
      const catalog = createCatalog();
      registerE2eEvents(catalog);
      const producer = new StreamProducer({ redis, keys: new StreamfleetKeys(prefix), catalog });
      await producer.publish(E2E_STREAM, createEvent({ type: E2E_EVENT_TYPE, data: { n: 1 } }));
      // The handler is now sleeping: wait until the entry is pending for this consumer.
      const streamKey = new StreamfleetKeys(prefix).stream(E2E_STREAM);
      await waitFor(async () => ((await redis.xpending(streamKey, 'e2e-a')) as [number])[0] === 1, {
        message: 'entry in flight',
      });
      w.signal('SIGTERM');
      await waitFor(() => w.logs().some((l) => l.msg === 'worker stopping'), { message: 'graceful shutdown begun' });
      // Repeats within a second of the first are ignored: keep signalling until one counts.
      await waitFor(
        () => {
          w.signal('SIGTERM');
          return w.exit;
        },
        { intervalMs: 100, message: 'a later SIGTERM to force the exit' },
      );
      const exit = await w.exited;
      expect(exit.code).toBe(143);
      const forced = w.logs().find((l) => l.msg === 'second signal: exiting now');
      expect(forced?.sinceFirstMs).toBeGreaterThanOrEqual(1000);
      // The interrupted event was not acknowledged: another worker will claim it.
      expect(await redis.scard(e2eKeys(new StreamfleetKeys(prefix), 'e2e-a').seen)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });
});
