import { readFileSync } from 'node:fs';
import { Cluster, type Redis } from 'ioredis';
import type { DeadLetterStream } from '../dead-letter/dead-letter-stream';
import type { DeadLetterReason } from '../dead-letter/types';
import { briefError, HandlerTimeoutError, isNonRetryable, MaxDeliveriesError, summariseError } from '../errors/index';
import type { EventCatalog } from '../events/catalog';
import { decodeEvent, fieldsToRecord, MAX_ENVELOPE_TEXT } from '../events/codec';
import type { EventEnvelope } from '../events/envelope';
import { type Logger, silentLogger } from '../logging/index';
import type { RetryPolicy } from '../retry/retry-policy';
import { type RetryQueues, RetryQueuesClosedError } from '../retry/retry-queues';
import { failure } from '../retry/retry-worker';
import { settleWithin } from '../timing';
import { connectionNameOf, duplicateRedis, type RedisClient, serversOf } from './connection';
import {
  type GroupDefinition,
  type GroupObserver,
  type HandlerContext,
  handlerTimeoutOf,
  TimedAttempt,
} from './handler';
import { type Keyed, KeyedLimiter } from './keyed-limiter';
import type { StreamfleetKeys } from './keys';
import {
  infoList,
  isNoGroupError,
  type StreamEntry,
  type XAutoClaimReply,
  type XPendingEntry,
  type XReadGroupReply,
} from './reply';

const REMOVE_IDLE_CONSUMER = readFileSync(new URL('./remove-idle-consumer-1.lua', import.meta.url), 'utf8');

type ConsumerRedis = RedisClient & {
  sfRemoveIdleConsumer(stream: string, group: string, consumer: string, minIdleMs: number): Promise<number>;
};

/** How a consumer loop reads, runs and claims: the same for every group of a process. */
export interface ConsumerTuning {
  /** Entries per XREADGROUP. */
  batchSize?: number;
  blockMs?: number;
  /**
   * Handlers running at once, not counting those that timed out and ignore their signal: their
   * slot (and their aggregate) goes to the next entry.
   */
  concurrency?: number;
  /** An entry pending this long (its consumer died) is claimed by a live consumer. */
  visibilityTimeoutMs?: number;
  /** A claimed entry delivered more often than this is dead-lettered (`max-deliveries`). */
  maxDeliveries?: number;
  /** How often to look for idle entries. Default: a quarter of the visibility timeout. */
  claimIntervalMs?: number;
  /** Consumers idle this long with nothing pending are removed from the group. */
  consumerIdleTimeoutMs?: number;
  /**
   * A handler running longer than this (ms) has failed its attempt (`HandlerTimeoutError`,
   * retryable) and its `context.signal` is aborted: a hung call cannot hold an entry and a
   * concurrency slot for ever. 0: no timeout. Default: 300 000 (5 minutes); a group's
   * `timeoutMs` overrides it.
   */
  handlerTimeoutMs?: number;
  /** How often a consumer asks whether an operator paused its group (`GroupPauses`). Default: 1000. */
  pauseCheckMs?: number;
}

export interface ConsumerGroupOptions extends ConsumerTuning {
  /** Command connection: acks, claims, scripts. Shared with others is fine. */
  redis: RedisClient;
  /** Blocking XREADGROUP connection, owned by this loop. Default: `redis.duplicate()`. */
  reader?: RedisClient;
  keys: StreamfleetKeys;
  definition: GroupDefinition;
  catalog: EventCatalog;
  /** Unique per process, e.g. `host-pid-random`. */
  consumer: string;
  deadLetters: DeadLetterStream;
  retryQueues: RetryQueues;
  policy: RetryPolicy;
  /** Where a new group starts: `0` (whole stream, the default) or `$` (only new entries). */
  startId?: string;
  logger?: Logger;
  observer?: GroupObserver;
}

/**
 * The consumer-group loop: XREADGROUP in batches with BLOCK, handlers with bounded
 * concurrency (one aggregate's entries in order within this process), XACK in batches.
 *
 * A failing handler never blocks the loop: its entry becomes a BullMQ retry job and is
 * acked only once the job is stored. A background tick claims entries idle past the
 * visibility timeout (XAUTOCLAIM), dead-letters those delivered too often, and removes
 * idle consumers with nothing pending. `close()` stops reading, waits for in-flight
 * handlers, and flushes their acks. One instance is driven by one event loop.
 */
export class ConsumerGroup {
  readonly group: string;
  readonly stream: string;
  readonly consumer: string;
  private readonly streamKey: string;
  private readonly redis: RedisClient;
  private readonly reader: RedisClient;
  private readonly ownsReader: boolean;
  private readonly limiter: KeyedLimiter<Delivery>;
  private readonly handler: GroupDefinition['handler'];
  private readonly observer: GroupObserver | undefined;
  /** What every `Delivery` of this loop shares. */
  private readonly scope: DeliveryScope;
  private readonly types: Set<string> | undefined;
  private readonly logger: Logger;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly maxInFlight: number;
  private readonly visibilityTimeoutMs: number;
  private readonly maxDeliveries: number;
  private readonly claimIntervalMs: number;
  private readonly consumerIdleTimeoutMs: number;
  private readonly handlerTimeoutMs: number;
  private readonly pauseCheckMs: number;

  private running = false;
  /** An operator paused the group (`GroupPauses`): read and claim nothing new. */
  private paused = false;
  /** The read loop saw the pause and sends no reads (none is outstanding). */
  private stoppedReading = false;
  /** `close()` stopped waiting: entries still queued for a handler are left pending, unstarted. */
  private abandoned = false;
  private inFlight = 0;
  private capacityWaiter: (() => void) | undefined;
  private drainWaiter: (() => void) | undefined;
  private ackBuffer: string[] = [];
  private ackFlush: Promise<void> | undefined;
  /**
   * Reads (and claims) with entries still in this process's hands. Tracked per batch, not
   * per entry: heartbeats find the slow ones and a claim skips them.
   */
  private readonly openBatches = new Set<Batch>();
  private readerId: number | undefined;
  private readLoopDone: Promise<void> | undefined;
  private claimLoopDone: Promise<void> | undefined;
  private pauseLoopDone: Promise<void> | undefined;
  private readonly sleepers = new Set<() => void>();
  private lastConsumerSweep = 0;
  /** Handlers running, oldest first (only with a handler timeout), and the timer that times them out. */
  private readonly handling = new Set<Delivery>();
  private timeoutSweep: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConsumerGroupOptions) {
    const d = options.definition;
    this.group = d.group;
    this.stream = d.stream;
    this.consumer = options.consumer;
    this.streamKey = options.keys.stream(d.stream);
    this.redis = options.redis;
    this.ownsReader = options.reader === undefined;
    this.reader =
      options.reader ?? duplicateRedis(options.redis, `${options.keys.prefix}:${d.group}:${options.consumer}`);
    const concurrency = d.concurrency ?? options.concurrency ?? 50;
    this.limiter = new KeyedLimiter<Delivery>(concurrency, (delivery) => this.run(delivery));
    this.handler = d.handler;
    this.observer = options.observer;
    this.types = d.types ? new Set(d.types) : undefined;
    this.batchSize = options.batchSize ?? 200;
    this.blockMs = options.blockMs ?? 2000;
    // Room for the batch being handled, the one read ahead, and up to `concurrency` stragglers
    // of earlier batches (slow handlers, failures waiting for their retry job to be stored),
    // so that a few of those do not stop the read-ahead.
    this.maxInFlight = Math.max(this.batchSize, concurrency) * 2 + concurrency;
    this.visibilityTimeoutMs = options.visibilityTimeoutMs ?? 30_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.claimIntervalMs = options.claimIntervalMs ?? Math.max(50, Math.floor(this.visibilityTimeoutMs / 4));
    this.consumerIdleTimeoutMs = options.consumerIdleTimeoutMs ?? Math.max(10 * this.visibilityTimeoutMs, 60_000);
    this.handlerTimeoutMs = handlerTimeoutOf(d, options.handlerTimeoutMs);
    this.pauseCheckMs = Math.max(10, options.pauseCheckMs ?? 1000);
    this.logger = (options.logger ?? silentLogger).child({
      group: this.group,
      consumer: this.consumer,
      stream: this.stream,
    });
    this.scope = { group: this.group, stream: this.stream, logger: this.logger };
    if (this.ownsReader) {
      // ioredis reconnects on its own; without a listener it prints every outage to stderr.
      this.reader.on('error', (err: Error) => this.logger.debug({ err }, 'reader connection error'));
    }
  }

  /** Creates the group if missing (and registers the stream), then starts reading. */
  async start(): Promise<void> {
    if (this.running) return;
    await this.ensureGroup();
    // On a cluster the id would be some node's: the reader is found by its name there.
    if (!(this.reader instanceof Cluster)) this.readerId = Number(await this.reader.client('ID'));
    await this.checkPaused();
    this.running = true;
    this.readLoopDone = this.readLoop();
    this.claimLoopDone = this.claimLoop();
    this.pauseLoopDone = this.pauseLoop();
    if (this.handlerTimeoutMs > 0) {
      // Checked ten times per timeout, at most every second: a handler times out within one sweep
      // after its timeout, never before. A sweep, not a timer per handler, keeps the happy path
      // at one clock read and a `Set` insert and delete per handler.
      const every = Math.min(1000, Math.max(10, Math.floor(this.handlerTimeoutMs / 10)));
      this.timeoutSweep = setInterval(() => this.timeOutHandlers(), every);
      this.timeoutSweep.unref();
    }
    this.logger.info('consumer started');
  }

  /**
   * The reader's client id now. A reader that reconnected since `start()` (a Redis restart, a
   * dropped connection) is a new client: it is found by its connection name; the id it had at
   * start is the fallback for a reader without one.
   */
  private async readerIds(): Promise<Array<{ server: Redis; id: number }>> {
    const name = connectionNameOf(this.reader);
    if (name) {
      try {
        const found: Array<{ server: Redis; id: number }> = [];
        // One server, or on a cluster every master: the reader is blocked on the one serving its stream.
        for (const server of serversOf(this.redis)) {
          const list = String(await server.call('CLIENT', 'LIST', 'TYPE', 'normal'));
          for (const line of list.split('\n')) {
            const id = line.includes(` name=${name} `) ? Number(/^id=(\d+)/.exec(line)?.[1]) : Number.NaN;
            if (Number.isInteger(id)) found.push({ server, id });
          }
        }
        if (found.length > 0) return found;
      } catch (err) {
        this.logger.debug({ err }, 'CLIENT LIST failed; unblocking the reader by its first id');
      }
    }
    return this.readerId === undefined || this.redis instanceof Cluster
      ? []
      : [{ server: this.redis, id: this.readerId }];
  }

  /**
   * Gives back the entries this consumer read and never started: claimable by any other
   * consumer at once (idle as long as the visibility timeout) and with the delivery that
   * never ran taken off their count, so a restart with a backlog does not push healthy
   * entries towards `maxDeliveries`. Left as they are if Redis cannot be told.
   */
  private async handBackUnstarted(): Promise<void> {
    const unstarted = this.limiter.takeQueued();
    const byCount = new Map<number, string[]>();
    for (const d of unstarted) {
      const ids = byCount.get(d.deliveryCount) ?? [];
      ids.push(d.entryId);
      byCount.set(d.deliveryCount, ids);
    }
    try {
      for (const [count, ids] of byCount) {
        // JUSTID: this XCLAIM (to ourselves) counts no delivery of its own.
        await this.redis.call(
          'XCLAIM',
          this.streamKey,
          this.group,
          this.consumer,
          0,
          ...ids,
          'IDLE',
          this.visibilityTimeoutMs,
          'RETRYCOUNT',
          Math.max(0, count - 1),
          'JUSTID',
        );
      }
      if (unstarted.length > 0) this.logger.info({ entries: unstarted.length }, 'handed back entries never started');
    } catch (err) {
      this.logger.warn(
        { err },
        'could not hand back the entries never started; they are claimed after the visibility timeout',
      );
    }
    for (const d of unstarted) this.done(d.batch, d.index);
  }

  /** Entries handed to handlers and not yet finished. */
  get inFlightCount(): number {
    return this.inFlight;
  }

  /**
   * Stops reading, waits up to `timeoutMs` for in-flight handlers, flushes acks. Whatever
   * has not finished stays pending and is claimed by another consumer later.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const wake of this.sleepers) wake();
    this.capacityWaiter?.();
    await this.unblockReader();
    await Promise.all([this.readLoopDone, this.claimLoopDone, this.pauseLoopDone]);
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (this.inFlight > 0) {
      // Failed entries waiting for company to store their retry jobs: no more is coming.
      this.options.retryQueues.flush();
      const drained = new Promise<void>((resolve) => {
        this.drainWaiter = resolve;
      });
      await settleWithin(drained, timeoutMs);
      if (this.inFlight > 0) {
        this.abandoned = true;
        await this.handBackUnstarted();
        this.logger.warn({ inFlight: this.inFlight }, 'closing with handlers still running');
      }
    }
    clearInterval(this.timeoutSweep);
    await this.flushAcks();
    if (this.ownsReader) this.reader.disconnect();
    // Leaving with nothing pending: leave the group too, so it lists only live consumers.
    // With entries still pending the consumer stays; others claim them, then sweep it.
    if (this.redis.status === 'ready') {
      await this.removeConsumerIfIdle(this.consumer, 0).catch((err: unknown) =>
        this.logger.debug({ err }, 'could not remove this consumer from its group'),
      );
    }
    this.logger.info('consumer stopped');
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.streamKey, this.group, this.options.startId ?? '0', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    }
    await this.redis.sadd(this.options.keys.streams, this.stream);
  }

  /**
   * Reads and dispatches. The next XREADGROUP goes out before the batch just read is
   * dispatched (when there is room for it), so Redis prepares one batch while this process
   * handles the other; at most one read is outstanding, which `close()` unblocks.
   */
  private async readLoop(): Promise<void> {
    let failures = 0;
    let next: Promise<XReadGroupReply> | undefined;
    while (this.running || next) {
      if (!next && this.paused) {
        // Paused by an operator: nothing new is read until the group is resumed (or closed).
        if (!this.stoppedReading) this.logger.info('group paused: reading nothing new');
        this.stoppedReading = true;
        await this.pause(this.pauseCheckMs);
        continue;
      }
      if (this.stoppedReading) {
        this.stoppedReading = false;
        this.logger.info('group resumed: reading again');
      }
      if (!next) {
        if (this.inFlight + this.batchSize > this.maxInFlight) {
          // Failed entries stay in flight until their retry jobs are stored: store them now
          // rather than let them linger for company while the loop waits on them.
          this.options.retryQueues.flush();
          await new Promise<void>((resolve) => {
            this.capacityWaiter = resolve;
          });
          this.capacityWaiter = undefined;
          continue;
        }
        next = this.read();
      }
      let reply: XReadGroupReply;
      try {
        reply = await next;
        failures = 0;
      } catch (err) {
        next = undefined;
        if (!this.running) break;
        failures++;
        if (isNoGroupError(err)) {
          // The stream or group vanished (e.g. Redis restarted without persistence).
          this.logger.warn('group missing; recreating it');
          await this.ensureGroup().catch((e: unknown) => this.logger.error({ err: e }, 'could not recreate group'));
        } else {
          this.logger.error({ err }, 'XREADGROUP failed; retrying');
        }
        await this.pause(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
        continue;
      }
      next = undefined;
      const entries = reply?.[0]?.[1];
      if (!entries || entries.length === 0) continue;
      const batch = this.openBatch(entries);
      if (this.running && !this.paused && this.inFlight + this.batchSize <= this.maxInFlight) next = this.read();
      for (let i = 0; i < entries.length; i++) {
        if ((entries[i] as StreamEntry)[1]) this.dispatch(batch, i, 1);
        else this.done(batch, i);
      }
    }
  }

  private read(): Promise<XReadGroupReply> {
    return this.reader.xreadgroup(
      'GROUP',
      this.group,
      this.consumer,
      'COUNT',
      this.batchSize,
      'BLOCK',
      this.blockMs,
      'STREAMS',
      this.streamKey,
      '>',
    ) as Promise<XReadGroupReply>;
  }

  /** Counts a read's (or a claim's) entries as in flight until each is `done`. */
  private openBatch(entries: StreamEntry[]): Batch {
    const batch = new Batch(entries, Date.now());
    this.openBatches.add(batch);
    this.inFlight += entries.length;
    return batch;
  }

  /** Hands one entry to its handler. Never throws; every outcome ends in ack, retry job or dead letter. */
  private dispatch(batch: Batch, index: number, deliveryCount: number): void {
    const entry = batch.at(index);
    const [id, fields] = entry as [string, string[]];
    let event: EventEnvelope;
    try {
      event = decodeEvent(fields, this.options.catalog);
    } catch (err) {
      if (this.types) {
        // Not this group's to judge: a type it does not handle would have been acked unread.
        // An entry naming no type, or a type the catalog does not know (a producer's typo),
        // could be anyone's: every group dead-letters it, so it cannot vanish unseen.
        const type = fieldsToRecord(fields).type;
        if (type && this.options.catalog.has(type) && !this.types.has(type)) {
          this.ack(id);
          this.done(batch, index);
          return;
        }
      }
      this.track(batch, index, this.deadLetter(id, fields, 'invalid-event', err, 1));
      return;
    }
    if (this.types && !this.types.has(event.type)) {
      this.ack(id);
      this.done(batch, index);
      return;
    }
    this.limiter.submit(new Delivery(this.scope, batch, index, entry, event, deliveryCount));
  }

  private track(batch: Batch, index: number, work: Promise<unknown>): void {
    work.then(
      () => this.done(batch, index),
      (err: unknown) => {
        this.logger.error({ err, entryId: batch.at(index)[0] }, 'unexpected error while handling an entry');
        this.done(batch, index);
      },
    );
  }

  /** The entry has left this process's hands (acked, or left pending on purpose). */
  private done(batch: Batch, index: number): void {
    if (batch.settle(index)) this.openBatches.delete(batch);
    this.inFlight--;
    if (this.capacityWaiter && this.inFlight + this.batchSize <= this.maxInFlight) this.capacityWaiter();
    if (this.inFlight === 0) this.drainWaiter?.();
  }

  /**
   * Runs the handler (the limiter's start). A handler that returns without a promise is
   * settled at once, without a microtask. Never throws.
   */
  private run(delivery: Delivery): void {
    if (this.abandoned) {
      // Closed: not started, not acked; another consumer claims it after the visibility timeout.
      this.finish(delivery);
      return;
    }
    // One clock read per handler, for the metrics and the timeout alike.
    const timed = this.handlerTimeoutMs > 0;
    const started = timed || this.observer?.handled ? performance.now() : 0;
    if (timed) {
      // Its own clock read, not the last sweep's: handlers started after a busy turn of the
      // event loop (a synchronous neighbour, a large batch decoded) would be charged for it.
      delivery.startedAt = started;
      this.handling.add(delivery);
    }
    let result: unknown;
    try {
      result = this.handler(delivery.event, delivery);
    } catch (err) {
      void this.fail(delivery, err);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        () => this.succeed(delivery, started),
        (err: unknown) => void this.fail(delivery, err),
      );
    } else this.succeed(delivery, started);
  }

  private succeed(delivery: Delivery, started: number): void {
    if (delivery.timedOut) {
      this.settledLate(delivery);
      return;
    }
    this.handling.delete(delivery);
    try {
      this.ack(delivery.entryId);
      if (this.observer?.handled) this.observer.handled(this.group, performance.now() - started);
    } catch (err) {
      this.logger.error({ err, entryId: delivery.entryId }, 'unexpected error while settling an entry');
    } finally {
      this.finish(delivery);
    }
  }

  /**
   * The handler failed: its concurrency slot goes to the next entry at once, while this one
   * stays in flight until its retry job (or dead letter) is stored and it is acked.
   */
  private async fail(delivery: Delivery, err: unknown): Promise<void> {
    if (delivery.timedOut) return this.settledLate(delivery, err);
    this.handling.delete(delivery);
    return this.failed(delivery, err);
  }

  private async failed(delivery: Delivery, err: unknown): Promise<void> {
    this.limiter.release(delivery.key);
    try {
      this.observer?.failed?.(this.group);
      await this.onFailure(delivery, err);
    } catch (e) {
      this.logger.error({ err: e, entryId: delivery.entryId }, 'unexpected error while settling an entry');
    } finally {
      this.done(delivery.batch, delivery.index);
    }
  }

  /**
   * Fails the attempts of handlers running past the timeout: each entry goes on to its retry
   * job (acked once that is stored) and its slot to the next entry, while the handler, which
   * cannot be stopped from outside, gets its signal aborted and its outcome ignored.
   */
  private timeOutHandlers(): void {
    const startedBy = performance.now() - this.handlerTimeoutMs;
    for (const delivery of this.handling) {
      // Oldest first: the first one still in time ends the sweep.
      if (delivery.startedAt > startedBy) return;
      this.handling.delete(delivery);
      const err = new HandlerTimeoutError(this.handlerTimeoutMs);
      delivery.timeOut(err);
      this.observer?.timedOut?.(this.group);
      this.logger.warn(
        {
          entryId: delivery.entryId,
          eventId: delivery.event.id,
          eventType: delivery.event.type,
          timeoutMs: this.handlerTimeoutMs,
        },
        'handler timed out',
      );
      void this.failed(delivery, err);
    }
  }

  /** A timed-out handler settled after all: its entry has moved on, so the outcome is only logged. */
  private settledLate(delivery: Delivery, err?: unknown): void {
    this.logger.info(
      {
        entryId: delivery.entryId,
        eventId: delivery.event.id,
        ...(err === undefined ? {} : { error: briefError(err) }),
      },
      `handler ${err === undefined ? 'finished' : 'failed'} after its timeout; the outcome is ignored`,
    );
  }

  private finish(delivery: Delivery): void {
    this.limiter.release(delivery.key);
    this.done(delivery.batch, delivery.index);
  }

  private async onFailure(delivery: Delivery, err: unknown): Promise<void> {
    const { policy } = this.options;
    const { entryId: id, fields, event } = delivery;
    if (isNonRetryable(err)) return this.deadLetter(id, fields, 'non-retryable', err, 1);
    if (!policy.canRetryAfter(1)) return this.deadLetter(id, fields, 'retries-exhausted', err, 1);
    const at = new Date().toISOString();
    try {
      const stored = this.options.retryQueues.schedule(
        {
          group: this.group,
          stream: this.stream,
          entryId: id,
          fields,
          eventId: event.id,
          type: event.type,
          attemptOffset: 1,
          replayCount: 0,
          firstFailedAt: at,
          failures: [failure(1, err)],
        },
        policy.delayAfter(1),
      );
      // The loop is waiting for room: store the job now rather than let it wait for company.
      if (this.capacityWaiter) this.options.retryQueues.flush();
      await stored;
    } catch (scheduleErr) {
      // Not acked: the entry stays pending and is claimed again after the visibility timeout.
      const where = { eventId: event.id, eventType: event.type, entryId: id };
      if (scheduleErr instanceof RetryQueuesClosedError) {
        // A handler that outlived its fleet's shutdown timeout: expected, and nothing is lost.
        this.logger.warn(
          { ...where, error: briefError(err) },
          'handler failed after the fleet closed; the entry stays pending for another consumer',
        );
      } else
        this.logger.error({ ...where, err: scheduleErr }, 'could not store the retry job; leaving the entry pending');
      return;
    }
    this.observer?.retried?.(this.group);
    this.logger.warn(
      { error: briefError(err), eventId: event.id, eventType: event.type, entryId: id },
      'handler failed; retry scheduled',
    );
    this.ack(id);
  }

  private async deadLetter(
    id: string,
    fields: string[],
    reason: DeadLetterReason,
    err: unknown,
    attempts: number,
  ): Promise<void> {
    const at = new Date().toISOString();
    const lastError = summariseError(err);
    try {
      const { id: deadLetterId, created } = await this.options.deadLetters.write(
        {
          group: this.group,
          stream: this.stream,
          entryId: id,
          fields,
          reason,
          attempts,
          // A stream delivery is never a replay: replays arrive through the retry queue.
          replayCount: 0,
          lastError,
          failures: reason === 'max-deliveries' ? [] : [failure(attempts, err)],
          firstFailedAt: at,
        },
        { ackEntryId: id },
      );
      if (created) this.observer?.deadLettered?.(this.group, reason);
      // The same line as the retry worker's; an invalid entry may have no id or type to name,
      // or ones too long to log whole.
      const { id: eventId, type: eventType } = fieldsToRecord(fields);
      this.logger.warn(
        {
          deadLetterId,
          entryId: id,
          eventId: eventId?.slice(0, MAX_ENVELOPE_TEXT),
          eventType: eventType?.slice(0, MAX_ENVELOPE_TEXT),
          reason,
          attempts,
          error: briefError(err),
        },
        created
          ? 'event dead-lettered'
          : 'event already dead-lettered by this group (this entry, or another with the same event id): acked, no second dead letter',
      );
    } catch (writeErr) {
      this.logger.error({ err: writeErr, entryId: id }, 'could not dead-letter; leaving the entry pending');
    }
  }

  private ack(id: string): void {
    this.ackBuffer.push(id);
    if (this.ackBuffer.length === 1 && !this.ackFlush) {
      // Batch every ack of this turn of the event loop into one XACK.
      setImmediate(() => void this.flushAcks());
    }
  }

  private async flushAcks(): Promise<void> {
    while (this.ackFlush) await this.ackFlush;
    if (this.ackBuffer.length === 0) return;
    const ids = this.ackBuffer;
    this.ackBuffer = [];
    this.ackFlush = this.redis
      .xack(this.streamKey, this.group, ...ids)
      .then(
        () => undefined,
        (err: unknown) => {
          // Unacked entries are delivered again after the visibility timeout; handlers are idempotent.
          this.logger.error({ err, count: ids.length }, 'XACK failed');
        },
      )
      .finally(() => {
        this.ackFlush = undefined;
        if (this.ackBuffer.length > 0) setImmediate(() => void this.flushAcks());
      });
    await this.ackFlush;
  }

  private claimLoop(): Promise<void> {
    return this.every(
      this.claimIntervalMs,
      async () => {
        await this.heartbeat();
        if (!this.paused) await this.claimIdle();
        if (Date.now() - this.lastConsumerSweep >= Math.min(this.consumerIdleTimeoutMs, 60_000)) {
          this.lastConsumerSweep = Date.now();
          await this.removeIdleConsumers();
        }
      },
      async (err) => {
        if (isNoGroupError(err)) await this.ensureGroup().catch(() => undefined);
        else this.logger.error({ err }, 'claim tick failed');
      },
    );
  }

  /** Runs `tick` every `intervalMs` while the loop runs; a tick that fails goes to `failed`, and the next one runs. */
  private async every(
    intervalMs: number,
    tick: () => Promise<void>,
    failed: (err: unknown) => Promise<void> | void,
  ): Promise<void> {
    while (this.running) {
      await this.pause(intervalMs);
      if (!this.running) break;
      try {
        await tick();
      } catch (err) {
        await failed(err);
      }
    }
  }

  /**
   * Resets the idle time of entries whose handlers have been running for over half the
   * visibility timeout (XCLAIM JUSTID to ourselves does not raise the delivery count), so
   * other consumers do not claim work that is slow but alive.
   */
  private async heartbeat(): Promise<void> {
    const threshold = Date.now() - this.visibilityTimeoutMs / 2;
    const slow: string[] = [];
    for (const batch of this.openBatches) if (batch.startedAt <= threshold) batch.forEachOpen((id) => slow.push(id));
    if (slow.length === 0) return;
    await this.redis.call('XCLAIM', this.streamKey, this.group, this.consumer, 0, ...slow, 'JUSTID');
  }

  /** Asks Redis now and then whether the group is paused (one SISMEMBER, off the hot path). */
  private pauseLoop(): Promise<void> {
    return this.every(
      this.pauseCheckMs,
      () => this.checkPaused(),
      (err) => this.logger.debug({ err }, 'could not check whether the group is paused'),
    );
  }

  private async checkPaused(): Promise<void> {
    const paused = (await this.redis.sismember(this.options.keys.pausedGroups, this.group)) === 1;
    if (paused && this.paused && !this.stoppedReading && this.running) {
      // The read loop has not stopped yet: a read still on its way to Redis when it was woken
      // blocked after all. Wake it again, once per check, until the loop stops.
      await this.unblockReader();
      return;
    }
    if (paused === this.paused) return;
    this.paused = paused;
    if (paused) {
      // A read blocked on a quiet stream would hand over whatever arrives in its BLOCK time:
      // wake it (it answers nothing, as on a timeout). No read is sent while paused.
      if (this.running) await this.unblockReader();
    } else {
      // Resumed: the read loop need not wait out its pause.
      for (const wake of this.sleepers) wake();
    }
  }

  /** Ends the reader's blocked XREADGROUP, if it is in one (CLIENT UNBLOCK: it answers nothing). */
  private async unblockReader(): Promise<void> {
    for (const { server, id } of await this.readerIds()) await server.client('UNBLOCK', id).catch(() => undefined);
  }

  /** Claims entries whose consumer went quiet for longer than the visibility timeout. */
  async claimIdle(): Promise<number> {
    let cursor = '0-0';
    let claimedTotal = 0;
    do {
      if (this.inFlight + this.batchSize > this.maxInFlight) break;
      const [next, entries, deleted] = (await this.redis.xautoclaim(
        this.streamKey,
        this.group,
        this.consumer,
        this.visibilityTimeoutMs,
        cursor,
        'COUNT',
        this.batchSize,
      )) as XAutoClaimReply;
      cursor = next;
      if (deleted.length > 0) this.logger.warn({ ids: deleted }, 'pending entries were trimmed away before handling');
      const live = entries.filter((e): e is [string, string[]] => e[1] !== null);
      if (live.length === 0) continue;
      claimedTotal += live.length;
      const mine = new Set<string>();
      for (const batch of this.openBatches) batch.forEachOpen((id) => mine.add(id));
      const deliveries = await this.deliveryCounts(live);
      const batch = this.openBatch(live);
      for (let i = 0; i < live.length; i++) {
        const [id, fields] = live[i] as [string, string[]];
        const count = deliveries.get(id);
        // Our own slow handler: the claim only refreshed its idle time, which is what we want.
        // Or no longer pending at all: acknowledged since the claim, nothing left to do.
        if (mine.has(id) || count === undefined) {
          this.done(batch, i);
          continue;
        }
        this.logger.info({ entryId: id, deliveries: count }, 'claimed an idle entry');
        if (count > this.maxDeliveries) {
          const error = new MaxDeliveriesError(count - 1);
          this.track(batch, i, this.deadLetter(id, fields, 'max-deliveries', error, count - 1));
        } else {
          this.dispatch(batch, i, count);
        }
      }
    } while (cursor !== '0-0' && this.running);
    return claimedTotal;
  }

  /**
   * How often each claimed entry has been delivered, the claim included. One XPENDING over
   * the claimed range usually answers for all of them, but this consumer's other pending
   * entries in that range (in flight, left pending by a failed store, or an earlier process of
   * the same name) can crowd some out of its reply: those are asked for one by one (one
   * pipeline), never assumed to be first deliveries. An entry absent even then is no longer
   * pending (acknowledged since the claim).
   */
  private async deliveryCounts(live: StreamEntry[]): Promise<Map<string, number>> {
    const first = live[0]?.[0] as string;
    const last = live.at(-1)?.[0] as string;
    const pending = (await this.redis.xpending(
      this.streamKey,
      this.group,
      first,
      last,
      live.length + this.inFlight + 16,
      this.consumer,
    )) as XPendingEntry[];
    const deliveries = new Map(pending.map((p) => [p[0], Number(p[3])]));
    const missing = live.map((e) => e[0]).filter((id) => !deliveries.has(id));
    if (missing.length === 0) return deliveries;
    const pipeline = this.redis.pipeline();
    for (const id of missing) pipeline.xpending(this.streamKey, this.group, id, id, 1);
    for (const [err, reply] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      const entry = (reply as XPendingEntry[])[0];
      if (entry) deliveries.set(entry[0], Number(entry[3]));
    }
    return deliveries;
  }

  /** Removes consumers of this group that have nothing pending and have been idle too long. */
  async removeIdleConsumers(): Promise<string[]> {
    const consumers = infoList(await this.redis.xinfo('CONSUMERS', this.streamKey, this.group));
    const removed: string[] = [];
    for (const c of consumers) {
      const name = String(c.name);
      if (name === this.consumer || Number(c.pending) > 0) continue;
      // Redis 7.2+ reports `inactive` (since the last successful read, -1 if it never read one);
      // older servers only `idle` (since the last attempted interaction).
      const inactive = Number(c.inactive);
      const idle = Number.isFinite(inactive) && inactive >= 0 ? inactive : Number(c.idle);
      if (idle < this.consumerIdleTimeoutMs) continue;
      if (await this.removeConsumerIfIdle(name, this.consumerIdleTimeoutMs)) removed.push(name);
    }
    if (removed.length > 0) this.logger.info({ removed }, 'removed idle consumers');
    return removed;
  }

  /** XGROUP DELCONSUMER, only if `name` still has nothing pending and is idle that long (one script). */
  private async removeConsumerIfIdle(name: string, minIdleMs: number): Promise<boolean> {
    const redis = this.redis as ConsumerRedis;
    if (typeof redis.sfRemoveIdleConsumer !== 'function') {
      redis.defineCommand('sfRemoveIdleConsumer', { numberOfKeys: 1, lua: REMOVE_IDLE_CONSUMER });
    }
    return (await redis.sfRemoveIdleConsumer(this.streamKey, this.group, name, minIdleMs)) === 1;
  }

  /** Sleeps, but wakes at once when the loop closes. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== undefined &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function' &&
    (typeof value === 'object' || typeof value === 'function')
  );
}

/**
 * The entries of one XREADGROUP (or one claim) while this process holds them: one clock
 * read per batch and its own reply array, instead of a map entry per entry on the hot path.
 */
class Batch {
  private open: number;
  /**
   * The read's entries; an entry's slot is cleared once it is done, so that a batch held open
   * by a few stragglers (failures waiting for their retry job) does not keep the rest alive.
   */
  private readonly entries: (StreamEntry | undefined)[];

  constructor(
    entries: StreamEntry[],
    readonly startedAt: number,
  ) {
    this.entries = entries;
    this.open = entries.length;
  }

  /** An entry not yet done. */
  at(index: number): StreamEntry {
    return this.entries[index] as StreamEntry;
  }

  /** Marks an entry done (once per entry, as `done` is called once); true when it was the batch's last. */
  settle(index: number): boolean {
    this.entries[index] = undefined;
    return --this.open === 0;
  }

  /** Calls `fn` with the id of every entry not yet done. */
  forEachOpen(fn: (id: string) => void): void {
    for (const entry of this.entries) if (entry) fn(entry[0]);
  }
}

interface DeliveryScope {
  readonly group: string;
  readonly stream: string;
  readonly logger: Logger;
}

/**
 * One entry on its way through a handler: what the limiter schedules (keyed by aggregate)
 * and the handler's context. The child logger is built only if a handler logs.
 */
class Delivery extends TimedAttempt implements HandlerContext, Keyed {
  readonly key: string;
  /** When its handler started (`performance.now()`, as the timeout sweep reads it); set only where handlers time out. */
  startedAt = 0;
  private childLogger: Logger | undefined;

  constructor(
    private readonly scope: DeliveryScope,
    readonly batch: Batch,
    readonly index: number,
    /** Its own reference: the batch lets go of an entry once it is done. */
    private readonly entry: StreamEntry,
    readonly event: EventEnvelope,
    readonly deliveryCount: number,
  ) {
    super();
    this.key = event.aggregateId ?? event.id;
  }

  get entryId(): string {
    return this.entry[0];
  }

  get fields(): string[] {
    return this.entry[1] as string[];
  }

  get group(): string {
    return this.scope.group;
  }

  get stream(): string {
    return this.scope.stream;
  }

  get attempt(): number {
    return 1;
  }

  get replayCount(): number {
    return 0;
  }

  get logger(): Logger {
    this.childLogger ??= this.scope.logger.child({
      eventId: this.event.id,
      eventType: this.event.type,
      entryId: this.entryId,
    });
    return this.childLogger;
  }
}
