import { createServer, type Socket } from 'node:net';
import { loadConfig, silentLogger } from '@streamfleet/core';
import { cleanupPrefix, createTestDatabase, testRedisUrl, uniquePrefix } from '@streamfleet/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { domainGroupSet, GroupRegistry } from './groups/index';
import { Worker } from './worker';

/** A started worker running the order domain (the default group set) on `databaseUrl`. */
async function startDomainWorker(
  databaseUrl: string,
  options: { migrate: boolean },
): Promise<{ worker: Worker; readyz(): Promise<Response>; close(): Promise<void> }> {
  const redisUrl = testRedisUrl();
  const prefix = uniquePrefix('wr');
  const config = loadConfig({
    REDIS_URL: redisUrl,
    DATABASE_URL: databaseUrl,
    STREAMFLEET_PREFIX: prefix,
    WORKER_PORT: '0',
  });
  const registry = new GroupRegistry().add(domainGroupSet({ migrate: options.migrate }));
  const worker = await Worker.create({ config, logger: silentLogger, registry, defaultMetrics: false });
  const close = async () => {
    await worker.close({ timeoutMs: 1000 });
    await cleanupPrefix(redisUrl, prefix);
  };
  try {
    await worker.start();
  } catch (err) {
    await close();
    throw err;
  }
  expect(worker.port).toBeGreaterThan(0);
  return { worker, readyz: () => fetch(`http://127.0.0.1:${worker.port}/readyz`), close };
}

describe('worker /readyz with the order domain', () => {
  const cleanups: (() => Promise<void>)[] = [];

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('answers 200 while its database answers', async () => {
    const db = await createTestDatabase('sf_ready');
    cleanups.push(() => db.drop());
    const { readyz, close } = await startDomainWorker(db.url, { migrate: true });
    cleanups.push(close);

    const res = await readyz();
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready' });
  });

  it('starts, but answers 503 naming postgres, while its database is unreachable', async () => {
    // Nothing listens on port 1: every connection is refused.
    const { worker, readyz, close } = await startDomainWorker('postgres://postgres@127.0.0.1:1/nope', {
      migrate: false,
    });
    cleanups.push(close);
    expect(worker.definitions.length).toBeGreaterThan(0);

    const res = await readyz();
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; reason: string; checks: Record<string, string> };
    expect(body.status).toBe('not-ready');
    expect(body.reason).toMatch(/^postgres: .*ECONNREFUSED/);
    expect(body.checks.postgres).toMatch(/ECONNREFUSED/);
    // The worker keeps serving its endpoints: it is not ready, not dead.
    expect((await fetch(`http://127.0.0.1:${worker.port}/healthz`)).status).toBe(200);
  });

  it('answers 503 within the check timeout while its database hangs', async () => {
    // Accepts connections and never answers, like a database behind a dropped network.
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const port = (hung.address() as { port: number }).port;
    const stopHung = async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    };
    const started = await startDomainWorker(`postgres://postgres@127.0.0.1:${port}/nope`, { migrate: false }).catch(
      async (err: unknown) => {
        await stopHung();
        throw err;
      },
    );
    // The database goes first: a pool waiting on a hung server would hold up the worker's close.
    cleanups.push(async () => {
      await stopHung();
      await started.close();
    });

    const startedAt = Date.now();
    const res = await started.readyz();
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({
      status: 'not-ready',
      reason: 'postgres: no answer within 2000 ms',
      checks: { postgres: 'no answer within 2000 ms' },
    });
  });
});
