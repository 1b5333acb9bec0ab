import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DeadLetterReason, FailureRecord } from '../dead-letter/types';
import type { ErrorSummary } from '../errors/index';
import type { StreamfleetKeys } from '../streams/keys';

/** What a retry job carries: the event verbatim, and its failure history so far. */
export interface RetryJobData {
  group: string;
  stream: string;
  entryId: string;
  /** Raw stream entry fields; decoded again on every attempt against today's catalog. */
  fields: string[];
  eventId: string;
  type: string;
  /** Attempts made before this job started: 1 after a failed first delivery, 0 for a replay. */
  attemptOffset: number;
  replayCount: number;
  firstFailedAt: string;
  failures: FailureRecord[];
  /**
   * Set when a run decided to dead-letter the event but could not write the dead letter: the
   * job's next run writes exactly this (and does not call the handler again).
   */
  deadLetter?: { reason: DeadLetterReason; lastError: ErrorSummary; attempts: number };
}

export interface RetryCounts {
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
  completed: number;
}

/** BullMQ decides nothing about exhaustion: the retry worker does, so the limit here is only a backstop. */
const BACKSTOP_ATTEMPTS = 1000;

export const RETRY_BACKOFF_TYPE = 'streamfleet';

/** Jobs per `addBulk` (one MULTI). */
const MAX_BULK = 500;

interface PendingJob {
  job: { name: string; data: RetryJobData; opts: JobsOptions };
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Retry job id: one job per (group, event, replay round), so a re-delivered entry cannot add a second. */
export function retryJobId(group: string, eventId: string, replayCount: number): string {
  const base = `${group}.${eventId}`.replaceAll(':', '_');
  return replayCount === 0 ? base : `${base}.r${replayCount}`;
}

export interface RetryQueuesOptions {
  /** A connection BullMQ may share for its queue commands. */
  connection: Redis;
  keys: StreamfleetKeys;
  /** How long finished jobs are kept, which is how long a re-delivery is recognised. */
  keepCompletedSeconds?: number;
}

/**
 * One BullMQ queue per consumer group, named after the group. Producer side only:
 * `RetryWorker` consumes them.
 */
export class RetryQueues {
  private readonly queues = new Map<string, Queue<RetryJobData>>();
  private readonly connection: Redis;
  private readonly keys: StreamfleetKeys;
  private readonly keepCompletedSeconds: number;
  /** Jobs scheduled in this turn of the event loop, per group, not yet sent. */
  private unsent = new Map<string, PendingJob[]>();
  private flushQueued = false;
  /** Bulk adds on the wire; `close()` waits for them. */
  private readonly storing = new Set<Promise<void>>();

  constructor(options: RetryQueuesOptions) {
    this.connection = options.connection;
    this.keys = options.keys;
    this.keepCompletedSeconds = options.keepCompletedSeconds ?? 24 * 3600;
  }

  queue(group: string): Queue<RetryJobData> {
    let queue = this.queues.get(group);
    if (!queue) {
      queue = new Queue<RetryJobData>(group, { connection: this.connection, prefix: this.keys.bullPrefix });
      this.queues.set(group, queue);
    }
    return queue;
  }

  /**
   * Stores a retry job; resolves once Redis has it. Adding an id that exists is a no-op
   * (BullMQ keeps the first), which is what makes a re-delivery harmless.
   *
   * Jobs scheduled in one turn of the event loop are stored together (one `addBulk` per
   * queue, one round trip): when a dependency is down, a whole batch of entries fails at
   * once, and one write per failure would make the failure path the slow one.
   */
  schedule(data: RetryJobData, delayMs: number): Promise<string> {
    const jobId = retryJobId(data.group, data.eventId, data.replayCount);
    const opts: JobsOptions = {
      jobId,
      delay: Math.max(0, delayMs),
      attempts: BACKSTOP_ATTEMPTS,
      backoff: { type: RETRY_BACKOFF_TYPE },
      removeOnComplete: { age: this.keepCompletedSeconds },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    return new Promise<string>((resolve, reject) => {
      const batch = this.unsent.get(data.group) ?? [];
      this.unsent.set(data.group, batch);
      batch.push({ job: { name: data.type, data, opts }, resolve: () => resolve(jobId), reject });
      if (!this.flushQueued) {
        this.flushQueued = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushQueued = false;
    const batches = this.unsent;
    this.unsent = new Map();
    for (const [group, pending] of batches) {
      for (let i = 0; i < pending.length; i += MAX_BULK) {
        const chunk = pending.slice(i, i + MAX_BULK);
        const queue = this.queue(group);
        const only = chunk.length === 1 ? chunk[0] : undefined;
        const stored: Promise<unknown> = only
          ? queue.add(only.job.name, only.job.data, only.job.opts)
          : queue.addBulk(chunk.map((p) => p.job));
        const settled = stored.then(
          () => {
            for (const p of chunk) p.resolve();
          },
          (err: unknown) => {
            for (const p of chunk) p.reject(err);
          },
        );
        this.storing.add(settled);
        void settled.finally(() => this.storing.delete(settled));
      }
    }
  }

  async counts(group: string): Promise<RetryCounts> {
    const c = await this.queue(group).getJobCounts(
      'waiting',
      'delayed',
      'active',
      'failed',
      'completed',
      'prioritized',
    );
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      delayed: c.delayed ?? 0,
      active: c.active ?? 0,
      failed: c.failed ?? 0,
      completed: c.completed ?? 0,
    };
  }

  async close(): Promise<void> {
    if (this.flushQueued) this.flush();
    await Promise.all([...this.storing]);
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
