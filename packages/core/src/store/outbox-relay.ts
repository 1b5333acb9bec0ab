import type postgres from 'postgres';
import type { EventEnvelope } from '../events/envelope';
import { type Logger, silentLogger } from '../logging/index';
import type { StreamProducer } from '../streams/producer';
import type { Sql } from './client';

export interface OutboxRelayOptions {
  sql: Sql;
  producer: StreamProducer;
  /** Rows published per round trip. Default 200. */
  batchSize?: number;
  /** Pause when the outbox is empty. Default 100 ms. */
  pollIntervalMs?: number;
  /** How often a follower tries to become leader. Default 1000 ms. */
  acquireIntervalMs?: number;
  /** Advisory lock key shared by every relay of one database. */
  lockKey?: number;
  logger?: Logger;
}

const DEFAULT_LOCK_KEY = 727_100_002;

interface OutboxRow {
  id: string;
  stream: string;
  event: EventEnvelope;
}

/**
 * Publishes committed outbox rows to their streams. Many relays may run; one leads: the
 * one holding a session advisory lock on a dedicated connection. Followers retry every
 * `acquireIntervalMs`; when the leader closes or its connection drops, Postgres releases
 * the lock and a follower takes over.
 *
 * No high-water mark: each round selects `published_at is null order by id ... for update
 * skip locked`, so a row whose transaction commits late (with a lower id than rows already
 * published) is picked up by the next round, never skipped. A crash between XADD and the
 * update publishes a batch twice: consumers are idempotent (at-least-once).
 */
export class OutboxRelay {
  private readonly sql: Sql;
  private readonly producer: StreamProducer;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly acquireIntervalMs: number;
  private readonly lockKey: number;
  private readonly logger: Logger;
  private lockConnection: postgres.ReservedSql | undefined;
  private leader = false;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private published = 0;

  constructor(options: OutboxRelayOptions) {
    this.sql = options.sql;
    this.producer = options.producer;
    this.batchSize = options.batchSize ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
    this.acquireIntervalMs = options.acquireIntervalMs ?? 1000;
    this.lockKey = options.lockKey ?? DEFAULT_LOCK_KEY;
    this.logger = (options.logger ?? silentLogger).child({ component: 'outbox-relay' });
  }

  /** Whether this relay currently holds the lock and publishes. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** Rows this relay has published since it started. */
  get publishedCount(): number {
    return this.published;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the current batch, releases leadership and the lock connection. */
  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.resign();
  }

  /** Publishes one batch if leader; returns how many rows it published. */
  async publishBatch(): Promise<number> {
    return (await this.sql.begin(async (tx) => {
      const rows = await tx<OutboxRow[]>`
        select id, stream, event from outbox
        where published_at is null
        order by id
        limit ${this.batchSize}
        for update skip locked`;
      if (rows.length === 0) return 0;
      await this.producer.publishMany(rows.map((r) => ({ stream: r.stream, event: r.event })));
      const ids = rows.map((r) => r.id);
      await tx`update outbox set published_at = now() where id = any(${ids}::bigint[])`;
      return rows.length;
    })) as number;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (!this.leader) {
          await this.tryAcquire();
          if (!this.leader) {
            await this.pause(this.acquireIntervalMs);
            continue;
          }
        }
        const count = await this.publishBatch();
        this.published += count;
        if (count < this.batchSize) {
          // Idle: check the lock connection is alive (a dropped connection lost the lock).
          await this.checkLock();
          await this.pause(this.pollIntervalMs);
        }
      } catch (err) {
        this.logger.warn({ err }, 'outbox relay round failed');
        await this.checkLock();
        await this.pause(this.pollIntervalMs);
      }
    }
  }

  private async tryAcquire(): Promise<void> {
    try {
      this.lockConnection ??= await this.sql.reserve();
      const [row] = await this.lockConnection<
        { locked: boolean }[]
      >`select pg_try_advisory_lock(${this.lockKey}) as locked`;
      if (row?.locked) {
        this.leader = true;
        this.logger.info('outbox relay became leader');
      }
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay could not try the leader lock');
      this.dropLockConnection();
    }
  }

  private async checkLock(): Promise<void> {
    if (!this.leader || !this.lockConnection) return;
    try {
      await this.lockConnection`select 1`;
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay lost its lock connection; stepping down');
      this.leader = false;
      this.dropLockConnection();
    }
  }

  private async resign(): Promise<void> {
    const connection = this.lockConnection;
    this.lockConnection = undefined;
    if (!connection) return;
    if (this.leader) {
      this.leader = false;
      // Unlock before the connection goes back to the pool: a session lock outlives release().
      await connection`select pg_advisory_unlock(${this.lockKey})`.catch(() => undefined);
    }
    connection.release();
  }

  private dropLockConnection(): void {
    const connection = this.lockConnection;
    this.lockConnection = undefined;
    this.leader = false;
    try {
      connection?.release();
    } catch {
      // already gone
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
