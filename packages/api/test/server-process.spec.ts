import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TestNodeProcess, testDatabaseUrl, testRedisUrl, uniquePrefix, waitFor } from '@streamfleet/core/testing';
import { afterEach, describe, expect, it } from 'vitest';

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * `src/server.ts` as `pnpm start:api` runs it (`node --import tsx`). `logs()` parses every
 * stdout line, throwing on one that is not JSON: the API writes nothing else to stdout.
 */
class ApiProcess extends TestNodeProcess {
  constructor(env: Record<string, string>) {
    super(PACKAGE_DIR, 'src/server.ts', env);
  }

  override logs(): Record<string, unknown>[] {
    return this.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

describe('API process (src/server.ts)', () => {
  const running: ApiProcess[] = [];
  const start = (env: Record<string, string> = {}) => {
    const p = new ApiProcess({
      REDIS_URL: testRedisUrl(),
      DATABASE_URL: testDatabaseUrl(),
      STREAMFLEET_PREFIX: uniquePrefix('api-proc'),
      HOST: '127.0.0.1',
      PORT: '0',
      ADMIN_TOKEN: 'a-test-token-long-enough-for-the-schema',
      ...env,
    });
    running.push(p);
    return p;
  };
  afterEach(async () => {
    for (const p of running.splice(0)) await p.kill();
  });

  it('logs one structured listening line, only JSON on stdout; a repeated SIGTERM is one graceful stop', async () => {
    const p = start();
    const listening = await waitFor(() => p.logs().find((l) => l.msg === 'listening'), {
      timeoutMs: 30_000,
      message: 'listening line',
    });
    expect(listening.port).toBeGreaterThan(0);
    expect(listening.address).toBe(`http://127.0.0.1:${listening.port}`);
    expect(listening.docs).toBe(`http://127.0.0.1:${listening.port}/docs`);
    expect(listening).toMatchObject({ host: '127.0.0.1', url: `http://127.0.0.1:${listening.port}` });
    // Every line parses as JSON (logs() throws otherwise); Fastify's own lines are not there.
    expect(p.logs().map((l) => l.msg)).toEqual(['listening']);

    p.child.kill('SIGTERM');
    p.child.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    const messages = p.logs().map((l) => l.msg);
    expect(messages).not.toContain('second signal: exiting now');
    expect(messages.at(-1)).toBe('shutdown complete');
    expect(p.stderr).toBe('');
  });

  it('bound to every interface, logs the address it is bound to and a URL that reaches it', async () => {
    const p = start({ HOST: '0.0.0.0' });
    const listening = await waitFor(() => p.logs().find((l) => l.msg === 'listening'), {
      timeoutMs: 30_000,
      message: 'listening line',
    });
    const { port } = listening;
    expect(listening).toMatchObject({
      address: `http://0.0.0.0:${port}`,
      host: '0.0.0.0',
      url: `http://localhost:${port}`,
      docs: `http://localhost:${port}/docs`,
      openapi: `http://localhost:${port}/docs/json`,
    });
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
  });

  it('exits 1 on an invalid environment with one message naming the variable, prefixed as the worker’s', async () => {
    const p = start({ PORT: 'eighty' });
    const exit = await p.exited;
    expect(exit.code).toBe(1);
    expect(p.stdout.filter((line) => line !== '')).toEqual([]);
    expect(p.stderr).toMatch(/^streamfleet: /);
    expect(p.stderr).toContain('PORT');
  });

  it('exits 1 with one fatal line naming PORT and the address when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const p = start({ PORT: String(port) });
      const exit = await p.exited;
      expect(exit.code).toBe(1);
      const logs = p.logs();
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ level: 60, code: 'EADDRINUSE', port, host: '127.0.0.1' });
      expect(logs[0]?.address).toBe(`127.0.0.1:${port}`);
      expect(logs[0]?.msg).toContain(`PORT ${port} is already in use`);
      // No raw stack trace on stderr.
      expect(p.stderr).toBe('');
    } finally {
      blocker.close();
    }
  });
});
