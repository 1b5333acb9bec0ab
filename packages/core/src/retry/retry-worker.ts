import { type Job, Worker } from 'bullmq';
import type { OperatorContext } from '../audit/types';
import type { DeadLetterStream } from '../dead-letter/dead-letter-stream';
import type { DeadLetterReason, FailureRecord } from '../dead-letter/types';
import { briefError, type ErrorSummary, HandlerTimeoutError, isNonRetryable, summariseError } from '../errors/index';
import type { EventCatalog } from '../events/catalog';
import { decodeEvent } from '../events/codec';
import type { EventEnvelope } from '../events/envelope';
import { type Logger, silentLogger } from '../logging/index';
import type { RedisClient } from '../streams/connection';
import { isRedisUnavailable } from '../streams/connection';
import {
  type GroupDefinition,
  type GroupObserver,
  type HandlerContext,
  handlerTimeoutOf,
  TimedAttempt,
} from '../streams/handler';
import type { StreamfleetKeys } from '../streams/keys';
import { settleWithin } from '../timing';
import type { RetryPolicy } from './retry-policy';
import { RETRY_BACKOFF_TYPE, type RetryJobData } from './retry-queues';

/** BullMQ's own stall limit: far above any `maxDeliveries`, which `process` enforces. */
const STALLED_BACKSTOP = 1000;

export interface RetryWorkerOptions {
  /** Needs `maxRetriesPerRequest: null` (BullMQ blocks on a duplicate of it). */
  connection: RedisClient;
  keys: StreamfleetKeys;
  definition: GroupDefinition;
  catalog: EventCatalog;
  policy: RetryPolicy;
  deadLetters: DeadLetterStream;
  /** A job whose runs died with their worker this many times goes to the dead-letter stream (`max-deliveries`). */
  maxDeliveries: number;
  concurrency?: number;
  /** An attempt running longer than this (ms) fails with a `HandlerTimeoutError`; 0: no limit. The group's `timeoutMs` overrides it. Default: 300 000. */
  handlerTimeoutMs?: number;
  logger?: Logger;
  observer?: GroupObserver;
}

/**
 * Runs a group's retry jobs through the group's own handler. This worker, not BullMQ,
 * decides when attempts are exhausted: it then writes the dead letter and completes the
 * job, so a job never ends "failed" with its event nowhere.
 */
export class RetryWorker {
  private worker: Worker<RetryJobData> | undefined;
  private readonly logger: Logger;
  private readonly timeoutMs: number;
  /** Jobs being processed by this worker, and `close()` waiting for them to be none. */
  private running = 0;
  private idle: (() => void) | undefined;

  constructor(private readonly options: RetryWorkerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ group: options.definition.group, component: 'retry' });
    this.timeoutMs = handlerTimeoutOf(options.definition, options.handlerTimeoutMs);
  }

  start(): void {
    if (this.worker) return;
    const { policy, definition } = this.options;
    this.worker = new Worker<RetryJobData>(definition.group, (job) => this.track(job), {
      connection: this.options.connection,
      prefix: this.options.keys.bullPrefix,
      concurrency: this.options.concurrency ?? definition.concurrency ?? 10,
      // Runs that died are counted by BullMQ (stalledCounter) and judged in `process`, where a
      // dead-letter write that fails is retried like any other; BullMQ's own limit is a backstop.
      maxStalledCount: STALLED_BACKSTOP,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string, _err?: Error, job?: { data: RetryJobData }) => {
          if (type !== RETRY_BACKOFF_TYPE) return 0;
          return policy.delayAfter((job?.data.attemptOffset ?? 1) + attemptsMade);
        },
      },
    });
    this.worker.on('error', (err) => {
      // BullMQ reports a Redis outage on every reconnect attempt; whoever owns the connection
      // logs the outage once (the worker process does), so here it is only debug.
      if (isRedisUnavailable(err)) this.logger.debug({ err }, 'retry worker: redis unavailable');
      else this.logger.error({ err }, 'retry worker error');
    });
    // Backstop: a job BullMQ fails for good (stalled past STALLED_BACKSTOP) still lands in the DLQ.
    this.worker.on('failed', (job, err) => {
      if (!job || !/stalled more than/i.test(err.message)) return;
      void this.deadLetter(
        job.data,
        'max-deliveries',
        summariseError(err),
        job.data.failures,
        job.data.attemptOffset + job.attemptsMade,
      ).catch((e: unknown) =>
        this.logger.error({ err: e, eventId: job.data.eventId }, 'could not dead-letter a failed job'),
      );
    });
  }

  /**
   * Fetches no more jobs and gives the running ones up to `timeoutMs` (default 30 s); past it,
   * closes without them: their locks lapse and they run again, here or in another process.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    await worker.pause(true);
    if (this.running > 0) {
      const idle = new Promise<void>((resolve) => {
        this.idle = resolve;
      });
      await settleWithin(idle, options.timeoutMs ?? 30_000);
    }
    if (this.running > 0) this.logger.warn({ running: this.running }, 'closing with retry jobs still running');
    await worker.close(this.running > 0);
  }

  private async track(job: Job<RetryJobData>): Promise<void> {
    this.running++;
    try {
      await this.process(job);
    } finally {
      this.running--;
      if (this.running === 0) this.idle?.();
    }
  }

  private async process(job: Job<RetryJobData>): Promise<void> {
    const data = job.data;
    const { policy, definition, observer } = this.options;
    const attempt = data.attemptOffset + job.attemptsMade + 1;
    // Fields rather than a child logger: a child costs its bindings' serialisation on every job.
    const where = { eventId: data.eventId, eventType: data.type, attempt, jobId: job.id };
    if (data.deadLetter) {
      // A previous run decided to dead-letter the event but could not write it: finish that.
      const { reason, lastError, attempts, actor, batchId } = data.deadLetter;
      const operator = actor ? { actor, ...(batchId ? { batchId } : {}) } : undefined;
      await this.deadLetter(data, reason, lastError, data.failures, attempts, operator);
      return;
    }
    if (job.stalledCounter >= this.options.maxDeliveries) {
      // Its runs died with their worker as often as a stream entry may be delivered: a handler
      // that crashes the process. Each died run was an attempt too.
      const lastError = {
        name: 'Error',
        message: `retry job ran ${job.stalledCounter} times without finishing (its worker died)`,
      };
      await this.deadLetterOrRemember(
        job,
        'max-deliveries',
        lastError,
        data.failures,
        attempt - 1 + job.stalledCounter,
      );
      return;
    }
    if (attempt > policy.maxAttempts) {
      // Backstop for a job whose run could not even record its decision: never run past the limit.
      const last = data.failures.at(-1);
      const lastError = { name: last?.name ?? 'Error', message: last?.message ?? 'retries exhausted' };
      await this.deadLetter(data, 'retries-exhausted', lastError, data.failures, attempt - 1);
      return;
    }
    let event: ReturnType<typeof decodeEvent>;
    try {
      event = decodeEvent(data.fields, this.options.catalog);
    } catch (err) {
      const failures = [...data.failures, failure(attempt, err)];
      await this.deadLetter(data, 'invalid-event', summariseError(err), failures, attempt);
      return;
    }
    const context = new RetryContext(definition.group, data, attempt, this.logger, where);
    const started = performance.now();
    try {
      await this.runHandler(event, context);
      observer?.handled?.(definition.group, performance.now() - started);
      this.logger.debug(where, 'retry succeeded');
    } catch (err) {
      observer?.failed?.(definition.group);
      const failures = [...data.failures, failure(attempt, err)];
      const reason = isNonRetryable(err)
        ? 'non-retryable'
        : policy.canRetryAfter(attempt)
          ? undefined
          : 'retries-exhausted';
      if (reason) {
        await this.deadLetterOrRemember(job, reason, summariseError(err), failures, attempt);
        return;
      }
      this.logger.warn({ ...where, error: briefError(err) }, 'retry attempt failed; backing off');
      await job.updateData({ ...data, failures });
      observer?.retried?.(definition.group);
      throw err;
    }
  }

  /**
   * Runs the handler, failing the attempt with a `HandlerTimeoutError` (and aborting the
   * context's signal) once it runs past the timeout; a late outcome is only logged.
   */
  private async runHandler(event: EventEnvelope, context: RetryContext): Promise<void> {
    const result = this.options.definition.handler(event, context);
    if (this.timeoutMs === 0) return await result;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new HandlerTimeoutError(this.timeoutMs);
        context.timeOut(err);
        this.options.observer?.timedOut?.(this.options.definition.group);
        this.logger.warn({ ...context.where, timeoutMs: this.timeoutMs }, 'handler timed out');
        reject(err);
        Promise.resolve(result).then(
          () => this.logger.info(context.where, 'handler finished after its timeout; the outcome is ignored'),
          (late: unknown) =>
            this.logger.info(
              { ...context.where, error: briefError(late) },
              'handler failed after its timeout; the outcome is ignored',
            ),
        );
      }, this.timeoutMs);
    });
    try {
      await Promise.race([result, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes the dead letter; if that fails, remembers the decision on the job and fails the
   * run, so the job's next run writes this same dead letter instead of deciding again.
   */
  private async deadLetterOrRemember(
    job: Job<RetryJobData>,
    reason: DeadLetterReason,
    lastError: ErrorSummary,
    failures: FailureRecord[],
    attempts: number,
  ): Promise<void> {
    try {
      await this.deadLetter(job.data, reason, lastError, failures, attempts);
    } catch (writeErr) {
      await job.updateData({ ...job.data, failures, deadLetter: { reason, lastError, attempts } });
      throw writeErr;
    }
  }

  private async deadLetter(
    data: RetryJobData,
    reason: DeadLetterReason,
    lastError: ErrorSummary,
    failures: FailureRecord[],
    attempts: number,
    operator?: OperatorContext,
  ): Promise<void> {
    // An operator's dead-lettering is audited by the script that writes its dead letter, so
    // once: a run that died after the write finds it written and records nothing again.
    const { id: deadLetterId, created } = await this.options.deadLetters.write(
      {
        group: data.group,
        stream: data.stream,
        entryId: data.entryId,
        fields: data.fields,
        reason,
        attempts,
        replayCount: data.replayCount,
        lastError,
        failures,
        firstFailedAt: data.firstFailedAt,
      },
      operator ? { operator } : {},
    );
    if (created) this.options.observer?.deadLettered?.(data.group, reason);
    this.logger.warn(
      {
        deadLetterId,
        entryId: data.entryId,
        eventId: data.eventId,
        eventType: data.type,
        reason,
        attempts,
        error: { name: lastError.name, message: lastError.message },
      },
      'event dead-lettered',
    );
  }
}

/** One attempt's record. Reads only name and message: `err.stack` is costly (source maps) and the dead letter keeps the last one. */
export function failure(attempt: number, err: unknown): FailureRecord {
  const at = new Date().toISOString();
  if (err instanceof Error) return { attempt, at, name: err.name, message: err.message };
  const s = summariseError(err);
  return { attempt, at, name: s.name, message: s.message };
}

/** Handler context of a retry attempt. The child logger is built only if a handler logs. */
class RetryContext extends TimedAttempt implements HandlerContext {
  readonly deliveryCount = 1;
  private childLogger: Logger | undefined;

  constructor(
    readonly group: string,
    private readonly data: RetryJobData,
    readonly attempt: number,
    private readonly baseLogger: Logger,
    readonly where: Record<string, unknown>,
  ) {
    super();
  }

  get stream(): string {
    return this.data.stream;
  }

  get entryId(): string {
    return this.data.entryId;
  }

  get replayCount(): number {
    return this.data.replayCount;
  }

  get logger(): Logger {
    this.childLogger ??= this.baseLogger.child(this.where);
    return this.childLogger;
  }
}
