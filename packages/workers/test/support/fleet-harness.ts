import {
  createCatalog,
  createEvent,
  createRedis,
  type PublishTarget,
  RetryQueues,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import { cleanupPrefix, uniquePrefix, waitFor } from '@streamfleet/core/testing';
import type { Redis } from 'ioredis';
import { E2E_EVENT_TYPE, E2E_GROUPS, E2E_STREAM, e2eKeys, registerE2eEvents } from '../../src/groups/index';
import { spawnWorker, type WorkerProcess } from './worker-process';

/**
 * Worker settings the fault tests share: the e2e groups, small batches and short timeouts
 * so that a crash or restart is noticed within seconds, a little simulated work per event.
 */
export const FAULT_TEST_ENV: Readonly<Record<string, string>> = {
  WORKER_GROUPS: E2E_GROUPS.join(','),
  VISIBILITY_TIMEOUT_MS: '2000',
  E2E_HANDLER_DELAY_MS: '2',
  CONSUMER_CONCURRENCY: '20',
  CONSUMER_BATCH_SIZE: '50',
  CONSUMER_BLOCK_MS: '200',
};

export interface GroupTally {
  group: string;
  /** Distinct events handled (SCARD). */
  handled: number;
  /** Handler calls that completed (INCR): calls - handled = duplicate effects. */
  calls: number;
  duplicates: number;
  /** Entries delivered and not acknowledged (XPENDING). */
  pending: number;
}

/**
 * A test's view of a fleet of real worker processes on its own prefix: spawns them,
 * publishes e2e events, and reads back what the e2e groups recorded.
 */
export class FleetHarness {
  readonly prefix = uniquePrefix('e2e');
  readonly keys = new StreamfleetKeys(this.prefix);
  readonly redis: Redis;
  readonly producer: StreamProducer;
  readonly workers: WorkerProcess[] = [];
  private readonly retryQueues: RetryQueues;

  constructor(
    readonly redisUrl: string,
    private readonly baseEnv: Record<string, string>,
  ) {
    this.redis = createRedis(redisUrl);
    // Tests restart Redis on purpose; commands wait for the reconnect, errors are expected noise.
    this.redis.on('error', () => undefined);
    const catalog = createCatalog();
    registerE2eEvents(catalog);
    this.producer = new StreamProducer({ redis: this.redis, keys: this.keys, catalog });
    this.retryQueues = new RetryQueues({ connection: this.redis, keys: this.keys });
  }

  spawn(env: Record<string, string> = {}): WorkerProcess {
    const w = spawnWorker({
      REDIS_URL: this.redisUrl,
      STREAMFLEET_PREFIX: this.prefix,
      WORKER_PORT: '0',
      ...this.baseEnv,
      ...env,
    });
    this.workers.push(w);
    return w;
  }

  /** Running (not exited) workers. */
  live(): WorkerProcess[] {
    return this.workers.filter((w) => !w.exit);
  }

  /** Events `from` .. `to - 1`; every `failEvery`-th fails its first attempt. Resolves to their event ids. */
  async publishRange(from: number, to: number, failEvery = 0): Promise<string[]> {
    const targets: PublishTarget[] = [];
    for (let n = from; n < to; n++) {
      const failFirst = failEvery > 0 && n % failEvery === 0;
      targets.push({
        stream: E2E_STREAM,
        event: createEvent({ type: E2E_EVENT_TYPE, data: failFirst ? { n, failFirst } : { n } }),
      });
    }
    await this.producer.publishMany(targets);
    return targets.map((t) => t.event.id);
  }

  /**
   * Paces a load generator on a condition: returns once `group` has handled all but
   * `window` of the `published` events, so publishing stays just ahead of the workers.
   * Throws when they make no such progress within `timeoutMs`.
   */
  async keepPace(group: string, published: number, window = 500, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await this.tally(group)).handled >= published - window, {
      timeoutMs,
      message: `${group} to come within ${window} of ${published} published events`,
    });
  }

  async tally(group: string): Promise<GroupTally> {
    const k = e2eKeys(this.keys, group);
    const [handled, calls, pending] = await Promise.all([
      this.redis.scard(k.seen),
      this.redis.get(k.calls),
      this.pending(group),
    ]);
    const c = Number(calls ?? 0);
    return { group, handled, calls: c, duplicates: c - handled, pending };
  }

  async pending(group: string): Promise<number> {
    try {
      const reply = (await this.redis.xpending(this.keys.stream(E2E_STREAM), group)) as [number, ...unknown[]];
      return Number(reply[0]);
    } catch {
      return -1; // group not created yet
    }
  }

  /** Event ids (of `ids`) that `group` has not recorded. */
  async missing(group: string, ids: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    const seen = e2eKeys(this.keys, group).seen;
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      const flags = (await this.redis.smismember(seen, ...chunk)) as number[];
      chunk.forEach((id, j) => {
        if (!flags[j]) out.push(id);
      });
    }
    return out;
  }

  async retryCounts(group: string) {
    return this.retryQueues.counts(group);
  }

  async deadLetterLength(): Promise<number> {
    return this.redis.xlen(this.keys.deadLetter);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.kill()));
    await this.retryQueues.close().catch(() => undefined);
    await cleanupPrefix(this.redisUrl, this.prefix).catch(() => undefined);
    this.redis.disconnect();
  }
}
