import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './index';

/** A TCP port nothing listens on (just opened and closed): connecting to it is refused. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A `redis-server` owned by one test: durable (AOF, fsync on every write), so a SIGKILL
 * loses nothing Redis acknowledged, and restartable on the same port and directory.
 */
export class TestRedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'sf-redis-'));
  port = 0;
  private process: ChildProcess | undefined;

  /** `extraArgs`: more `redis-server` options, e.g. `['--maxmemory', '2mb']`. */
  constructor(private readonly extraArgs: readonly string[] = []) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
    this.process = spawn(
      bin,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
        '--maxmemory-policy',
        'noeviction',
        ...this.extraArgs,
      ],
      { stdio: 'ignore' },
    );
    const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await waitFor(
        async () => {
          await probe.connect().catch(() => undefined);
          return (await probe.ping()) === 'PONG';
        },
        { timeoutMs: 10_000, intervalMs: 50, message: `redis-server on port ${this.port}` },
      );
    } finally {
      probe.disconnect();
    }
  }

  /** SIGKILL: no shutdown save, only what the AOF already holds survives. */
  async kill(): Promise<void> {
    const p = this.process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
