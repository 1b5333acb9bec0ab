import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DeadLetterStream } from '../dead-letter/dead-letter-stream';
import type { EventCatalog } from '../events/catalog';
import { Periodic } from '../housekeeping/periodic';
import { type Logger, silentLogger } from '../logging/index';
import { DEFAULT_RETRY, RetryPolicy, type RetryPolicyOptions } from '../retry/retry-policy';
import { RetryQueues } from '../retry/retry-queues';
import { RetryWorker } from '../retry/retry-worker';
import type { RedisClient } from '../streams/connection';
import { createRedis } from '../streams/connection';
import { ConsumerGroup, type ConsumerTuning } from '../streams/consumer-group';
import type { GroupDefinition, GroupObserver } from '../streams/handler';
import { StreamfleetKeys } from '../streams/keys';
import { StreamProducer } from '../streams/producer';
import { StreamTrimmer } from '../streams/stream-trimmer';
import { settleWithin } from '../timing';

export interface FleetOptions {
  redisUrl: string;
  /** `redisUrl` is one node of a Redis Cluster. */
  redisCluster?: boolean;
  prefix: string;
  catalog: EventCatalog;
  groups: GroupDefinition[];
  /** Unique per process. Default: `<host>-<pid>-<random>`. */
  consumerName?: string;
  retry?: Partial<RetryPolicyOptions>;
  /** Per-group retry overrides, e.g. from `RETRY_OVERRIDES`. */
  retryOverrides?: Record<string, Partial<RetryPolicyOptions>>;
  consumer?: ConsumerTuning;
  /** Retry jobs running at once per group in this process. */
  retryConcurrency?: number;
  /**
   * How long a failed entry's retry job may wait to be stored with others, in ms (never past
   * its due time; its entry is acked once it is stored). Default: 20.
   */
  retryLingerMs?: number;
  logger?: Logger;
  observer?: GroupObserver;
  /**
   * How often this process trims the streams its groups read, in ms; 0 turns trimming off.
   * Trimming never drops an entry any group of the stream (this process's or another's) has
   * not acknowledged. Default: 60 000.
   */
  trimIntervalMs?: number;
  /** Acknowledged entries younger than this are kept (for replays and debugging). Default: 0. */
  trimRetentionMs?: number;
}

const DEFAULT_TRIM_INTERVAL_MS = 60_000;

/** How long `close()` waits for a trim run in progress; abandoning one is harmless (it is one script call). */
const TRIM_CLOSE_WAIT_MS = 1000;

export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Everything one process needs to run consumer groups: connections, the producer, the
 * dead-letter stream, retry queues, per group a `ConsumerGroup` loop plus its
 * `RetryWorker`, and a periodic trim of the streams its groups read (off the hot path, on
 * the shared connection). `close()` stops them all under one timeout and ends every
 * connection it opened.
 */
export class Fleet {
  readonly keys: StreamfleetKeys;
  readonly redis: RedisClient;
  readonly producer: StreamProducer;
  readonly retryQueues: RetryQueues;
  readonly deadLetters: DeadLetterStream;
  readonly consumerName: string;
  readonly consumers: ConsumerGroup[] = [];
  readonly retryWorkers: RetryWorker[] = [];
  private readonly logger: Logger;
  private started = false;
  private trimming: Periodic | undefined;
  private closing = false;

  constructor(private readonly options: FleetOptions) {
    this.keys = new StreamfleetKeys(options.prefix);
    // No auto-pipelining on this connection (nor on the readers duplicated from it): measured,
    // it makes the consumer loop ~20% slower. BullMQ also defines its 64 script commands here,
    // and ioredis copies them onto every pipeline or MULTI built on it (~100 us each).
    this.redis = createRedis(options.redisUrl, {
      cluster: options.redisCluster ?? false,
      connectionName: `${options.prefix}:fleet`,
    });
    this.logger = options.logger ?? silentLogger;
    this.redis.on('error', (err: Error) => this.logger.debug({ err }, 'redis connection error'));
    this.consumerName = options.consumerName ?? defaultConsumerName();
    this.producer = new StreamProducer({ redis: this.redis, keys: this.keys, catalog: options.catalog });
    this.retryQueues = new RetryQueues({
      connection: this.redis,
      keys: this.keys,
      lingerMs: options.retryLingerMs,
      logger: this.logger,
    });
    this.deadLetters = new DeadLetterStream({
      redis: this.redis,
      keys: this.keys,
      retryQueues: this.retryQueues,
      catalog: options.catalog,
      logger: this.logger,
    });
  }

  policyFor(definition: GroupDefinition): RetryPolicy {
    return RetryPolicy.forGroup(
      { ...DEFAULT_RETRY, ...this.options.retry },
      this.options.retryOverrides,
      definition.group,
      definition.retry,
    );
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const c = this.options.consumer ?? {};
    const maxDeliveries = c.maxDeliveries ?? 5;
    for (const definition of this.options.groups) {
      const policy = this.policyFor(definition);
      const consumer = new ConsumerGroup({
        redis: this.redis,
        keys: this.keys,
        definition,
        catalog: this.options.catalog,
        consumer: this.consumerName,
        deadLetters: this.deadLetters,
        retryQueues: this.retryQueues,
        policy,
        ...c,
        maxDeliveries,
        logger: this.logger,
        ...(this.options.observer ? { observer: this.options.observer } : {}),
      });
      const retry = new RetryWorker({
        connection: this.redis,
        keys: this.keys,
        definition,
        catalog: this.options.catalog,
        policy,
        deadLetters: this.deadLetters,
        maxDeliveries,
        concurrency: this.options.retryConcurrency ?? 10,
        ...(c.handlerTimeoutMs === undefined ? {} : { handlerTimeoutMs: c.handlerTimeoutMs }),
        logger: this.logger,
        ...(this.options.observer ? { observer: this.options.observer } : {}),
      });
      this.consumers.push(consumer);
      this.retryWorkers.push(retry);
      await consumer.start();
      retry.start();
    }
    this.startTrimming();
  }

  /**
   * Every process running a group of a stream trims it: no election needed, since each run
   * trims atomically to a floor that is safe when it runs. A failing run is logged and
   * changes nothing else; the next one tries again.
   */
  private startTrimming(): void {
    const intervalMs = this.options.trimIntervalMs ?? DEFAULT_TRIM_INTERVAL_MS;
    const streams = [...new Set(this.options.groups.map((g) => g.stream))];
    if (intervalMs <= 0 || streams.length === 0) return;
    const trimmer = new StreamTrimmer({
      redis: this.redis,
      keys: this.keys,
      ...(this.options.trimRetentionMs ? { retentionMs: this.options.trimRetentionMs } : {}),
    });
    const logger = this.logger.child({ component: 'stream-trim' });
    this.trimming = new Periodic({ name: 'stream-trim', intervalMs, logger: this.logger }, async () => {
      for (const stream of streams) {
        if (this.closing) return;
        try {
          const removed = await trimmer.trim(stream);
          if (removed > 0) logger.debug({ stream, removed }, 'trimmed acknowledged entries');
        } catch (err) {
          logger.warn({ err, stream }, 'could not trim stream; trying again later');
        }
      }
    });
    this.trimming.start();
  }

  /** Stops trimming; waits briefly for a run in progress. */
  private async stopTrimming(): Promise<void> {
    if (this.trimming) await settleWithin(this.trimming.close(), TRIM_CLOSE_WAIT_MS);
  }

  /**
   * Stops reading and fetching retry jobs, finishes in-flight work (handlers and retry jobs
   * alike, up to `timeoutMs`), then closes every connection.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing = true;
    await Promise.all([
      this.stopTrimming(),
      ...this.consumers.map((c) => c.close(options)),
      ...this.retryWorkers.map((w) => w.close(options)),
    ]);
    await this.retryQueues.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
