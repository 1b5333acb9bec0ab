import postgres from 'postgres';
import { ValidationError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import { type Logger, silentLogger } from '../logging/index';
import type { StreamProducer } from '../streams/producer';
import { withTimeout } from '../timing';
import type { Sql, TransactionSql } from './client';
import { OUTBOX_CHANNEL, pruneOutbox } from './outbox';

export interface OutboxRelayOptions {
  /** Pool the relay reads and marks outbox rows with. */
  sql: Sql;
  /**
   * The same database: the relay opens one dedicated connection to it for the leader
   * lock (a pooled connection could be recycled, silently dropping a session lock).
   */
  databaseUrl: string;
  producer: StreamProducer;
  /** Rows published per round trip. Default 200. */
  batchSize?: number;
  /**
   * Pause when the outbox is empty. Default 500 ms. Commits wake the relay earlier through
   * LISTEN/NOTIFY; polling only covers lost notifications.
   */
  pollIntervalMs?: number;
  /** Listen for outbox commits (see `OUTBOX_CHANNEL`). Default true. */
  listen?: boolean;
  /** How often a follower tries to become leader. Default 1000 ms. */
  acquireIntervalMs?: number;
  /** Published rows older than this are deleted by the leader. Default 1 hour; 0 keeps them. */
  retentionMs?: number;
  /** Advisory lock key shared by every relay of one database. */
  lockKey?: number;
  logger?: Logger;
}

const DEFAULT_LOCK_KEY = 727_100_002;
/** First key of the two-key advisory lock a publishing transaction takes (the second: the relay's lock key, hashed). */
const PUBLISH_LOCK_CLASS = 727_100_003;
const LOCK_QUERY_TIMEOUT_MS = 5000;
const PRUNE_INTERVAL_MS = 60_000;

const lockQuery = <T>(query: Promise<T>): Promise<T> =>
  withTimeout(query, LOCK_QUERY_TIMEOUT_MS, `lock query timed out after ${LOCK_QUERY_TIMEOUT_MS} ms`);

interface OutboxRow {
  id: string;
  stream: string;
  event: EventEnvelope;
}

/**
 * Publishes committed outbox rows to their streams. Many relays may run; one leads: the
 * one holding a session advisory lock on its own dedicated connection. Followers retry every
 * `acquireIntervalMs`; when the leader closes or its connection drops, Postgres releases
 * the lock and a follower takes over (a leader that finds its lock session gone steps down and
 * waits `acquireIntervalMs` before trying again, so a healthy follower gets it). The leader
 * checks its lock session every round; and since a leader that lost it may still be sending
 * one batch, every batch runs under a transaction lock too, so two relays' batches never
 * interleave.
 *
 * No high-water mark: each round selects `published_at is null order by id`, so a row whose
 * transaction commits late (with a lower id than rows already published) is picked up by the
 * next round, never skipped. A crash between XADD and the update publishes a batch twice:
 * consumers are idempotent (at-least-once).
 */
export class OutboxRelay {
  private readonly sql: Sql;
  private readonly producer: StreamProducer;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly acquireIntervalMs: number;
  private readonly lockKey: number;
  private readonly logger: Logger;
  private readonly databaseUrl: string;
  private lockClient: Sql | undefined;
  /** Backend pid of the session holding the lock: a different pid means the lock is gone. */
  private lockPid: number | undefined;
  private leader = false;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A commit was announced since the last round started: do not sleep. */
  private notified = false;
  private readonly listenForCommits: boolean;
  private unlisten: (() => Promise<void>) | undefined;
  private published = 0;
  private readonly retentionMs: number;
  private lastPrune = 0;

  constructor(options: OutboxRelayOptions) {
    this.sql = options.sql;
    this.databaseUrl = options.databaseUrl;
    this.producer = options.producer;
    this.batchSize = options.batchSize ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
    this.listenForCommits = options.listen ?? true;
    this.retentionMs = options.retentionMs ?? 3_600_000;
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

  private async listen(): Promise<void> {
    if (!this.listenForCommits || this.unlisten) return;
    try {
      const { unlisten } = await this.sql.listen(OUTBOX_CHANNEL, () => {
        this.notified = true;
        if (this.leader) this.wake?.();
      });
      this.unlisten = unlisten;
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay could not LISTEN; polling only');
    }
  }

  /** Stops after the current batch, releases leadership and the lock connection. */
  async close(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.unlisten?.().catch(() => undefined);
    this.unlisten = undefined;
    await this.resign();
  }

  /** Publishes one batch if leader; returns how many rows it published. */
  async publishBatch(): Promise<number> {
    return (await this.sql.begin(async (tx) => {
      // One publishing transaction at a time across the fleet. A leader that lost its lock
      // while busy publishes until its next check; its batch and the new leader's must not
      // interleave, or the new one would publish rows after the ones still being sent.
      await tx`select pg_advisory_xact_lock(${PUBLISH_LOCK_CLASS}, hashtext(${String(this.lockKey)}))`;
      const rows = await tx<OutboxRow[]>`
        select id, stream, event from outbox
        where published_at is null and failed_at is null
        order by id
        limit ${this.batchSize}
        for update`;
      if (rows.length === 0) return 0;
      try {
        await this.producer.publishMany(rows.map((r) => ({ stream: r.stream, event: r.event })));
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        // One row the catalog refuses must not wedge the outbox: publish the rest one by
        // one and park the refused rows (failed_at, last_error) for an operator.
        return this.publishOneByOne(tx, rows);
      }
      const ids = rows.map((r) => r.id);
      await tx`update outbox set published_at = now() where id = any(${ids}::bigint[])`;
      return rows.length;
    })) as number;
  }

  private async publishOneByOne(tx: TransactionSql, rows: OutboxRow[]): Promise<number> {
    let published = 0;
    for (const row of rows) {
      try {
        await this.producer.publish(row.stream, row.event);
        await tx`update outbox set published_at = now() where id = ${row.id}`;
        published += 1;
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        this.logger.error(
          { err, outboxId: row.id, eventId: row.event.id },
          'outbox row refused by the catalog; parked',
        );
        await tx`update outbox set failed_at = now(), last_error = ${err.message.slice(0, 2000)} where id = ${row.id}`;
      }
    }
    return published;
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
        // A dropped lock connection lost the lock: check before every batch, busy or idle.
        if (!(await this.stillLeader())) continue;
        await this.listen();
        this.notified = false;
        const count = await this.publishBatch();
        this.published += count;
        if (count < this.batchSize) {
          await this.prune();
          await this.pause(this.pollIntervalMs);
        }
      } catch (err) {
        this.logger.warn({ err }, 'outbox relay round failed');
        // Not woken by commits: a failing Redis must not turn traffic into a retry storm.
        if (await this.stillLeader()) await this.pause(this.pollIntervalMs, false);
      }
    }
  }

  /** At most once a minute, while idle and leading. */
  private async prune(): Promise<void> {
    if (this.retentionMs <= 0 || !this.leader || Date.now() - this.lastPrune < PRUNE_INTERVAL_MS) return;
    this.lastPrune = Date.now();
    const deleted = await pruneOutbox(this.sql, this.retentionMs);
    if (deleted > 0) this.logger.debug({ deleted }, 'pruned published outbox rows');
  }

  private async tryAcquire(): Promise<void> {
    try {
      this.lockClient ??= postgres(this.databaseUrl, {
        max: 1,
        idle_timeout: 0,
        max_lifetime: null,
        onnotice: () => undefined,
        connection: { application_name: 'streamfleet-outbox-relay-lock' },
      });
      const [row] = await lockQuery(
        this.lockClient<{ locked: boolean; pid: number }[]>`
          select pg_try_advisory_lock(${this.lockKey}) as locked, pg_backend_pid() as pid`,
      );
      if (row?.locked) {
        this.leader = true;
        this.lockPid = row.pid;
        this.logger.info({ pgPid: row.pid }, 'outbox relay became leader');
      }
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay could not try the leader lock');
      await this.dropLockClient();
    }
  }

  /**
   * Checks the lock (see `checkLock`). A leader that lost it waits `acquireIntervalMs` before
   * it tries again, as a follower does, so that a follower whose session is sound gets the lock
   * rather than racing the one whose session just failed.
   */
  private async stillLeader(): Promise<boolean> {
    await this.checkLock();
    if (this.leader) return true;
    await this.pause(this.acquireIntervalMs, false);
    return false;
  }

  /**
   * Still leader only if the lock's session is alive: postgres.js reconnects silently, so
   * a query that succeeds on a new backend (new pid) means the old session and its lock
   * are gone.
   */
  private async checkLock(): Promise<void> {
    if (!this.leader || !this.lockClient) return;
    try {
      const [row] = await lockQuery(this.lockClient<{ pid: number }[]>`select pg_backend_pid() as pid`);
      if (row?.pid === this.lockPid) return;
      this.logger.warn('outbox relay lock session was replaced; stepping down');
    } catch (err) {
      this.logger.warn({ err }, 'outbox relay lost its lock connection; stepping down');
    }
    await this.dropLockClient();
  }

  private async resign(): Promise<void> {
    const client = this.lockClient;
    if (client && this.leader) {
      await lockQuery(client`select pg_advisory_unlock(${this.lockKey})`).catch(() => undefined);
    }
    await this.dropLockClient();
  }

  /** Ends the lock session (releasing the lock if it still held it). */
  private async dropLockClient(): Promise<void> {
    const client = this.lockClient;
    this.lockClient = undefined;
    this.lockPid = undefined;
    this.leader = false;
    await client?.end({ timeout: 1 }).catch(() => undefined);
  }

  private pause(ms: number, wakeOnCommit = true): Promise<void> {
    // close() may have run while this round was busy (no pause to wake then): never sleep after it.
    if (!this.running) return Promise.resolve();
    if (wakeOnCommit && this.notified && this.leader && this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      // close() always wakes; a commit only wakes an interruptible pause.
      this.wake = wakeOnCommit
        ? done
        : () => {
            if (!this.running) done();
          };
    });
  }
}
