import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import {
  cleanupPrefix,
  createTestDatabase,
  type TestDatabase,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@streamfleet/core/testing';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkerProcess } from './support/worker-process';

/** True while `pid` runs (a zombie waiting to be reaped counts as gone). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

describe('pnpm start spawner (src/all.ts)', () => {
  const redisUrl = testRedisUrl();
  const prefixes: string[] = [];
  const running: WorkerProcess[] = [];
  const apiPids: number[] = [];
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('sf_all');
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.kill()));
    // A failed test must not leave an API behind (it runs in its own process group).
    for (const pid of apiPids.splice(0)) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  afterAll(async () => {
    for (const p of prefixes) await cleanupPrefix(redisUrl, p);
    await db?.drop();
  });

  const start = (env: Record<string, string> = {}) => {
    const prefix = uniquePrefix('wall');
    prefixes.push(prefix);
    const p = new WorkerProcess(
      {
        REDIS_URL: redisUrl,
        DATABASE_URL: db.url,
        STREAMFLEET_PREFIX: prefix,
        PORT: '0',
        HOST: '127.0.0.1',
        WORKER_PORT: '0',
        SHUTDOWN_TIMEOUT_MS: '10000',
        ...env,
      },
      'src/all.ts',
    );
    running.push(p);
    return p;
  };
  const apiLogs = (p: WorkerProcess) => p.logs().filter((l) => l.name === 'streamfleet-api');
  /** Waits until the API listens and the worker runs; returns the API's pid. */
  const bothUp = async (p: WorkerProcess): Promise<number> => {
    const listening = await waitFor(
      () => {
        if (p.exit) throw new Error(`spawner exited early (${JSON.stringify(p.exit)}): ${p.stderr}`);
        if (!p.logs().some((l) => l.msg === 'worker started')) return undefined;
        return apiLogs(p).find((l) => l.msg === 'listening');
      },
      { timeoutMs: 45_000, intervalMs: 50, message: 'API listening and worker started' },
    );
    const pid = listening.pid as number;
    apiPids.push(pid);
    return pid;
  };

  /** Calls the API the spawner started. */
  const caller = (p: WorkerProcess) => {
    const base = apiLogs(p).find((l) => l.msg === 'listening')?.address as string;
    return async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
  };
  /** Posts stock for a new SKU and waits until the inventory holds it; returns the SKU. */
  const stocked = async (call: ReturnType<typeof caller>, quantity: number): Promise<string> => {
    const sku = `SKU-${uniquePrefix('s').slice(-8)}`;
    const posted = await call('POST', '/v1/events', {
      type: 'warehouse.stock_received',
      data: { sku, quantity, receiptId: 'GR-1' },
    });
    expect(posted.status).toBe(202);
    await waitFor(async () => (await call('GET', `/v1/inventory/${sku}`)).body.available === quantity, {
      timeoutMs: 20_000,
      message: 'received stock in the inventory',
    });
    return sku;
  };

  it('runs the reference flow: stock posted to /v1/events reaches /v1/inventory, and an order for it is paid', async () => {
    const p = start();
    await bothUp(p);
    const call = caller(p);
    const sku = await stocked(call, 12);

    const order = await call('POST', '/v1/orders', {
      customerId: 'c-1',
      items: [{ sku, quantity: 5, unitPrice: 300 }],
    });
    expect(order.status).toBe(201);
    await waitFor(async () => (await call('GET', `/v1/orders/${order.body.id}`)).body.status === 'PAID', {
      timeoutMs: 20_000,
      message: 'order paid',
    });
    expect((await call('GET', `/v1/inventory/${sku}`)).body).toMatchObject({ available: 7, reserved: 5 });
  });

  it('DATABASE_POOL_MAX bounds the Postgres connections of each process under load', async () => {
    const p = start({ DATABASE_POOL_MAX: '2' });
    await bothUp(p);
    const call = caller(p);
    const sku = await stocked(call, 100);
    const placed = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call('POST', '/v1/orders', { customerId: `c-${i}`, items: [{ sku, quantity: 1, unitPrice: 100 }] }),
      ),
    );
    expect(placed.map((o) => o.status)).toEqual(placed.map(() => 201));
    // postgres.js keeps the connections it opened: the most seen while the orders settle is the peak.
    const admin = postgres(db.url, { max: 1, onnotice: () => undefined });
    const peak: Record<string, number> = {};
    try {
      await waitFor(
        async () => {
          const rows = await admin<{ name: string; n: number }[]>`
            select application_name as name, count(*)::int as n from pg_stat_activity
            where datname = ${db.name} group by 1`;
          for (const r of rows) peak[r.name] = Math.max(peak[r.name] ?? 0, r.n);
          const [row] = await admin<{ n: number }[]>`
            select count(*)::int as n from orders_view where status = 'PAID' and items::text like ${`%${sku}%`}`;
          return row?.n === placed.length;
        },
        { timeoutMs: 30_000, message: 'all 40 orders paid' },
      );
    } finally {
      await admin.end();
    }
    // The worker's pool, plus one connection the outbox relay LISTENs on.
    expect(peak['streamfleet-worker']).toBeGreaterThan(0);
    expect(peak['streamfleet-worker']).toBeLessThanOrEqual(3);
    expect(peak['streamfleet-api']).toBeLessThanOrEqual(2);
  });

  it('SIGTERM stops the worker and the API, then exits 0', async () => {
    const p = start();
    const apiPid = await bothUp(p);
    p.signal('SIGTERM');
    expect((await p.exited).code).toBe(0);
    expect(isRunning(apiPid)).toBe(false);
    expect(apiLogs(p).some((l) => l.msg === 'shutdown complete')).toBe(true);
    expect(p.logs().some((l) => l.name === 'streamfleet' && l.msg === 'shutdown complete')).toBe(true);
  });

  it('Ctrl-C relayed twice within a second is one graceful stop of both, exit 0', async () => {
    const p = start();
    const apiPid = await bothUp(p);
    p.signal('SIGINT');
    p.signal('SIGINT');
    expect((await p.exited).code).toBe(0);
    expect(isRunning(apiPid)).toBe(false);
    expect(p.logs().some((l) => l.msg === 'second signal: exiting now')).toBe(false);
    expect(apiLogs(p).some((l) => l.msg === 'shutdown complete')).toBe(true);
  });

  it('exits 1 when the API cannot listen, after one fatal line naming PORT, and leaves no child', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = start({ PORT: String(port) });
      const exit = await p.exited;
      expect(exit.code).toBe(1);
      const fatal = apiLogs(p).filter((l) => l.level === 60);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]?.msg).toContain(`PORT ${port}`);
      expect(fatal[0]?.address).toBe(`127.0.0.1:${port}`);
      expect(isRunning(fatal[0]?.pid as number)).toBe(false);
      expect(p.stderr).not.toContain('EADDRINUSE');
      expect(
        p.logs().some((l) => l.name === 'streamfleet' && l.msg === 'API process exited unexpectedly; stopping'),
      ).toBe(true);
    } finally {
      blocker.close();
    }
  });

  it('killed outright (SIGKILL), it still leaves no API behind: the API sees its parent gone and stops', async () => {
    const p = start();
    const apiPid = await bothUp(p);
    await p.kill();
    await waitFor(() => !isRunning(apiPid), { timeoutMs: 20_000, message: 'orphaned API to stop' });
    // The API shares the spawner's stdout pipe, so its last words are still read here.
    await waitFor(() => apiLogs(p).some((l) => l.msg === 'shutdown complete'), { message: 'API shutdown complete' });
  });
});
