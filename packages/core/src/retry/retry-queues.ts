import { type Job, type JobsOptions, Queue } from 'bullmq';
import { AuditLog, byOperator } from '../audit/audit-log';
import type { OperatorContext } from '../audit/types';
import type { DeadLetterReason, FailureRecord } from '../dead-letter/types';
import type { ErrorSummary } from '../errors/index';
import { type Logger, silentLogger } from '../logging/index';
import { isRedisUnavailable, type RedisClient } from '../streams/connection';
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
   * Set when a run decided to dead-letter the event but could not write the dead letter, or
   * an operator dead-lettered it (`actor` naming them, `batchId` their bulk call): the job's
   * next run writes exactly this (and does not call the handler again), audited if an actor.
   */
  deadLetter?: {
    reason: DeadLetterReason;
    lastError: ErrorSummary;
    attempts: number;
    actor?: string;
    batchId?: string;
  };
}

export interface RetryCounts {
  waiting: number;
  delayed: number;
  active: number;
  failed: number;
  completed: number;
}

/** The states a job is in while its event is still being retried. */
export const RETRYING_STATES = ['active', 'waiting', 'delayed'] as const;
export type RetryingState = (typeof RETRYING_STATES)[number];

/** One retry job as read back: its data, and where BullMQ has it. */
export interface RetryJobInfo {
  jobId: string;
  state: RetryingState;
  data: RetryJobData;
  /**
   * Attempts made so far, the first delivery included (the job's offset plus its failed runs):
   * a delayed job's next run is attempt `attemptsMade + 1`, an active job is running that one.
   */
  attemptsMade: number;
  /** When the job was added. */
  addedAt: string;
  /** When the current or last run started; absent before the first run. */
  startedAt?: string;
  /** When a delayed job is due to run next. */
  nextRunAt?: string;
}

export interface RetryJobPage {
  items: RetryJobInfo[];
  /** Jobs in the asked-for states when the page was read. */
  total: number;
  /** Pass back as `offset` for the next page; absent on the last page. */
  nextOffset?: number;
}

/** A job `runNow` left alone, and why. */
export interface RunNowSkip {
  jobId: string;
  /** `not-delayed`: already due or running; `not-found`: not retrying (never was, or finished). */
  reason: 'not-delayed' | 'not-found';
}

export interface RunNowResult {
  /** Jobs made due now, in the order asked (or, for every delayed job, soonest due first). */
  promoted: string[];
  skipped: RunNowSkip[];
}

export interface DeadLetterNowSkip {
  jobId: string;
  /** `running`: an attempt is running now (it decides); `not-found`: not retrying (never was, or finished). */
  reason: 'running' | 'not-found';
}

export interface DeadLetterNowResult {
  /** Jobs marked to be dead-lettered instead of retried, in the order asked. */
  marked: string[];
  skipped: DeadLetterNowSkip[];
}

/**
 * Sets a job's data (ARGV[3]) only while it waits to run (delayed, waiting, paused or
 * prioritized) and its data is still ARGV[2]. 1: set; 0: no such job; -1: not waiting
 * (running or finished); -2: its data changed. KEYS: the job hash, then BullMQ's delayed,
 * wait, paused and prioritized keys of its queue; ARGV[1]: the job id.
 */
const MARK_IF_WAITING = `
local data = redis.call('HGET', KEYS[1], 'data')
if not data then return 0 end
local waiting = redis.call('ZSCORE', KEYS[2], ARGV[1]) or redis.call('LPOS', KEYS[3], ARGV[1])
  or redis.call('LPOS', KEYS[4], ARGV[1]) or redis.call('ZSCORE', KEYS[5], ARGV[1])
if not waiting then return -1 end
if data ~= ARGV[2] then return -2 end
redis.call('HSET', KEYS[1], 'data', ARGV[3])
return 1
`;

/** BullMQ's keys of a queue's jobs waiting to run: delayed, wait, paused, prioritized. */
function waitingKeys(queue: Queue<RetryJobData>): [string, string, string, string] {
  const k = queue.keys;
  return [k.delayed ?? '', k.wait ?? '', k.paused ?? '', k.prioritized ?? ''];
}

/** The job bound for the dead letters by an operator, keeping why it was failing: its last failure of the round. */
function withOperatorMark(
  data: RetryJobData,
  attemptsMade: number,
  operator: OperatorContext | undefined,
): RetryJobData {
  const last = lastFailureOfRound(data);
  const lastError = last
    ? { name: last.name, message: last.message }
    : { name: 'Error', message: 'dead-lettered by an operator before it failed in this round' };
  return {
    ...data,
    deadLetter: {
      reason: 'operator',
      lastError,
      attempts: data.attemptOffset + attemptsMade,
      ...(operator ? { actor: operator.actor } : {}),
      ...(operator?.batchId ? { batchId: operator.batchId } : {}),
    },
  };
}

/** The job's last failure in its current round (a replay starts a round), if it failed in it yet. */
export function lastFailureOfRound(data: RetryJobData): FailureRecord | undefined {
  return data.failures.findLast((f) => (f.replay ?? data.replayCount) === data.replayCount);
}

/** Jobs promoted at once (their commands share the connection's pipeline). */
const PROMOTE_CHUNK = 200;

export interface RetryJobListOptions {
  /** Default: every retrying state. */
  states?: readonly RetryingState[];
  offset?: number;
  /** Default 50. */
  limit?: number;
}

/**
 * Listing order: running first, then due (oldest first), then delayed (soonest first), so a
 * page reads in the order the jobs will run. `prioritized` is BullMQ's second waiting list
 * (unused by streamfleet, counted as waiting all the same).
 */
const LISTED: readonly { type: 'active' | 'waiting' | 'prioritized' | 'delayed'; state: RetryingState }[] = [
  { type: 'active', state: 'active' },
  { type: 'waiting', state: 'waiting' },
  { type: 'prioritized', state: 'waiting' },
  { type: 'delayed', state: 'delayed' },
];

/** BullMQ's delayed-set score is the due time in ms shifted left 12 bits (the low bits order ties). */
const DELAY_SCORE_SHIFT = 0x1000;

/** BullMQ decides nothing about exhaustion: the retry worker does, so the limit here is only a backstop. */
const BACKSTOP_ATTEMPTS = 1000;

export const RETRY_BACKOFF_TYPE = 'streamfleet';

/**
 * Jobs per `addBulk` (one round trip); a queue with this many waiting is stored at once. Past
 * a few dozen jobs a bigger batch costs no less per job, and holds more entries unacked.
 */
const MAX_BULK = 100;

/** How long a retry job may wait to be stored with others, at most (see `RetryQueuesOptions.lingerMs`). */
const DEFAULT_RETRY_LINGER_MS = 20;

interface PendingJob {
  job: { name: string; data: RetryJobData; opts: JobsOptions };
  /** When the job is due to run (ms since the epoch): its delay is what is left of it when it is stored. */
  dueAt: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** `schedule` after `close()`: nothing was stored (a handler that failed after its fleet stopped). */
export class RetryQueuesClosedError extends Error {
  constructor() {
    super('retry queues are closed: the retry job was not stored');
    this.name = 'RetryQueuesClosedError';
  }
}

/**
 * Retry job id: one job per (group, event, replay round), so a re-delivered entry cannot add a
 * second. No two events of a group may share one (the second's job would be taken for a
 * duplicate and its retry lost), so the id is injective: every character of the group and the
 * event id outside `[A-Za-z0-9_.-]` becomes `~` and its UTF-8 bytes in hex (BullMQ refuses
 * `:`; `~` keeps ids URL-safe for the admin routes), and a replay round is `~r<n>`, which no
 * escaped id contains. Ids of `[A-Za-z0-9_.-]` alone, UUIDs among them, stay as they are.
 */
export function retryJobId(group: string, eventId: string, replayCount: number): string {
  const base = `${jobIdText(group)}.${jobIdText(eventId)}`;
  return replayCount === 0 ? base : `${base}~r${replayCount}`;
}

const PLAIN_JOB_ID_TEXT = /^[\w.-]*$/;

function jobIdText(text: string): string {
  if (PLAIN_JOB_ID_TEXT.test(text)) return text;
  let escaped = '';
  for (const char of text) {
    if (PLAIN_JOB_ID_TEXT.test(char)) escaped += char;
    else for (const byte of Buffer.from(char)) escaped += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return escaped;
}

export interface RetryQueuesOptions {
  /** A connection BullMQ may share for its queue commands. */
  connection: RedisClient;
  keys: StreamfleetKeys;
  /** How long finished jobs are kept, which is how long a re-delivery is recognised. */
  keepCompletedSeconds?: number;
  /**
   * How long a job may wait for others to be stored with it (default 20 ms), never past its
   * due time: one `addBulk` costs about as much as several single adds, so a steady trickle
   * of failures is stored in a few round trips instead of one per failure. Waiting does not
   * move a retry later: each job is stored with what is left of its delay.
   */
  lingerMs?: number;
  /** Where the queues' connection errors go (a Queue without a listener prints them to stderr). */
  logger?: Logger;
}

/**
 * One BullMQ queue per consumer group, named after the group. Producer side only:
 * `RetryWorker` consumes them.
 */
export class RetryQueues {
  private readonly queues = new Map<string, Queue<RetryJobData>>();
  private readonly connection: RedisClient;
  private readonly keys: StreamfleetKeys;
  private readonly auditLog: AuditLog;
  private readonly keepCompletedSeconds: number;
  private readonly lingerMs: number;
  /** Jobs scheduled and not yet sent, per group. */
  private unsent = new Map<string, PendingJob[]>();
  /** The flush armed to run at `at` (ms since the epoch), and how to disarm it. */
  private armed: { at: number; disarm: () => void } | undefined;
  /** Bulk adds on the wire; `close()` waits for them. */
  private readonly storing = new Set<Promise<void>>();
  private readonly logger: Logger;
  /** `close()` was called: nothing more is stored (a queue built now would never be closed). */
  private closed = false;

  constructor(options: RetryQueuesOptions) {
    this.connection = options.connection;
    this.keys = options.keys;
    this.auditLog = new AuditLog(options.connection, options.keys);
    this.keepCompletedSeconds = options.keepCompletedSeconds ?? 24 * 3600;
    this.lingerMs = Math.max(0, options.lingerMs ?? DEFAULT_RETRY_LINGER_MS);
    this.logger = (options.logger ?? silentLogger).child({ component: 'retry' });
  }

  queue(group: string): Queue<RetryJobData> {
    let queue = this.queues.get(group);
    if (!queue) {
      queue = new Queue<RetryJobData>(group, { connection: this.connection, prefix: this.keys.bullPrefix });
      // BullMQ reports an outage on every reconnect attempt, and prints it to stderr when nobody
      // listens; whoever owns the connection logs the outage once, so here it is only debug.
      queue.on('error', (err) => {
        if (isRedisUnavailable(err)) this.logger.debug({ err, group }, 'retry queue: redis unavailable');
        else this.logger.error({ err, group }, 'retry queue error');
      });
      this.queues.set(group, queue);
    }
    return queue;
  }

  /**
   * Stores a retry job; resolves once Redis has it. Adding an id that exists is a no-op
   * (BullMQ keeps the first), which is what makes a re-delivery harmless.
   *
   * Jobs are stored together, one `addBulk` per queue and round trip: those scheduled within
   * `lingerMs` of each other (none waits past its due time), or sooner once a queue
   * has `MAX_BULK` waiting or `flush()` is called. A dependency that is down fails a whole
   * batch of entries at once, and a steady 1% of failures would otherwise cost a round trip
   * each.
   */
  schedule(data: RetryJobData, delayMs: number): Promise<string> {
    // A handler that failed after its fleet closed: its entry stays pending, to be claimed.
    if (this.closed) return Promise.reject(new RetryQueuesClosedError());
    const jobId = retryJobId(data.group, data.eventId, data.replayCount);
    const wait = Math.max(0, delayMs);
    const now = Date.now();
    const opts: JobsOptions = {
      jobId,
      attempts: BACKSTOP_ATTEMPTS,
      backoff: { type: RETRY_BACKOFF_TYPE },
      removeOnComplete: { age: this.keepCompletedSeconds },
      removeOnFail: { age: 7 * 24 * 3600 },
    };
    return new Promise<string>((resolve, reject) => {
      const batch = this.unsent.get(data.group) ?? [];
      this.unsent.set(data.group, batch);
      batch.push({ job: { name: data.type, data, opts }, dueAt: now + wait, resolve: () => resolve(jobId), reject });
      this.flushBy(batch.length >= MAX_BULK ? now : now + Math.min(this.lingerMs, wait));
    });
  }

  /** Arms the flush to run by `at` (ms since the epoch), unless it already runs sooner. */
  private flushBy(at: number): void {
    if (this.armed && this.armed.at <= at) return;
    this.armed?.disarm();
    const delay = at - Date.now();
    if (delay < 1) {
      const immediate = setImmediate(() => this.flush());
      this.armed = { at, disarm: () => clearImmediate(immediate) };
    } else {
      const timer = setTimeout(() => this.flush(), delay);
      this.armed = { at, disarm: () => clearTimeout(timer) };
    }
  }

  /** Stores every job still waiting for others, now (their promises settle once Redis has them). */
  flush(): void {
    if (this.unsent.size === 0) return;
    this.armed?.disarm();
    this.armed = undefined;
    const batches = this.unsent;
    this.unsent = new Map();
    const now = Date.now();
    for (const [group, pending] of batches) {
      for (let i = 0; i < pending.length; i += MAX_BULK) {
        const chunk = pending.slice(i, i + MAX_BULK);
        for (const p of chunk) p.job.opts.delay = Math.max(0, p.dueAt - now);
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

  /**
   * True when Redis holds a retry queue for `group` (BullMQ writes its meta hash on the first
   * add). Builds no `Queue`, so asking about arbitrary names costs nothing to keep.
   */
  async exists(group: string): Promise<boolean> {
    return (await this.connection.exists(`${this.keys.bullPrefix}:${group}:meta`)) === 1;
  }

  /**
   * A page of the group's retrying jobs, read-only. Jobs move between states while they are
   * read (a delayed job comes due, a running one fails and is delayed again), so a job can
   * be missed or seen twice across pages; `total` and the offsets count the states as they
   * stood at the start of this call.
   */
  async list(group: string, options: RetryJobListOptions = {}): Promise<RetryJobPage> {
    const states = new Set(options.states ?? RETRYING_STATES);
    const offset = Math.max(0, Math.trunc(options.offset ?? 0));
    const limit = Math.max(1, Math.trunc(options.limit ?? 50));
    const queue = this.queue(group);
    const listed = LISTED.filter((l) => states.has(l.state));
    const counts = await queue.getJobCounts(...listed.map((l) => l.type));
    const sizes = listed.map((l) => counts[l.type] ?? 0);
    const total = sizes.reduce((a, b) => a + b, 0);
    const items: RetryJobInfo[] = [];
    let skip = offset;
    let wanted = limit;
    for (let i = 0; i < listed.length && wanted > 0; i++) {
      const { type, state } = listed[i] as (typeof listed)[number];
      const size = sizes[i] ?? 0;
      if (skip >= size) {
        skip -= size;
        continue;
      }
      const end = Math.min(size, skip + wanted) - 1;
      wanted -= end - skip + 1;
      const jobs = await queue.getJobs([type], skip, end, true);
      skip = 0;
      const due = state === 'delayed' ? await this.dueTimes(queue.keys.delayed ?? '', jobs) : [];
      jobs.forEach((job, j) => {
        if (!job.id) return;
        const info: RetryJobInfo = {
          jobId: job.id,
          state,
          data: job.data,
          attemptsMade: (job.data.attemptOffset ?? 0) + job.attemptsMade,
          addedAt: new Date(job.timestamp).toISOString(),
        };
        if (job.processedOn) info.startedAt = new Date(job.processedOn).toISOString();
        const dueMs = due[j];
        if (dueMs !== undefined) info.nextRunAt = new Date(dueMs).toISOString();
        items.push(info);
      });
    }
    return offset + limit < total ? { items, total, nextOffset: offset + limit } : { items, total };
  }

  /**
   * Makes delayed jobs due now (BullMQ's promote), like Sidekiq's "Retry Now": after an outage
   * is over, nothing waits out a long backoff. Their attempt counts stay as they are. Without
   * `jobIds`, every job delayed when the call starts (a job backing off again later is left
   * to its backoff). A job that is already due or running is `not-delayed`; one that is not
   * retrying at all (never was, finished, dead-lettered) is `not-found`. In a paused group the
   * jobs wait for its resume. With an `operator`, each job made due is audited (`run-now`);
   * without one (a replay making its own job due, audited as the replay) nothing is.
   */
  async runNow(group: string, jobIds?: readonly string[], operator?: OperatorContext): Promise<RunNowResult> {
    const queue = this.queue(group);
    const ids = jobIds ?? (await this.connection.zrange(queue.keys.delayed ?? '', '0', '-1'));
    const result: RunNowResult = { promoted: [], skipped: [] };
    for (let i = 0; i < ids.length; i += PROMOTE_CHUNK) {
      const outcomes = await Promise.all(
        ids.slice(i, i + PROMOTE_CHUNK).map(async (jobId) => ({ jobId, ...(await this.promote(queue, jobId)) })),
      );
      const promoted: { jobId: string; data: RetryJobData }[] = [];
      for (const outcome of outcomes) {
        if ('skipped' in outcome) result.skipped.push({ jobId: outcome.jobId, reason: outcome.skipped });
        else {
          result.promoted.push(outcome.jobId);
          promoted.push({ jobId: outcome.jobId, data: outcome.promoted.data });
        }
      }
      // Recorded after the promotions, chunk by chunk: BullMQ promotes in scripts of its own,
      // which cannot append to the audit stream. A crash in between loses the record of a job
      // made due (which then just runs early), never records one that was not.
      if (operator) await this.auditRunNow(group, promoted, operator);
    }
    return result;
  }

  private async auditRunNow(
    group: string,
    jobs: readonly { jobId: string; data: RetryJobData }[],
    operator: OperatorContext,
  ): Promise<void> {
    const who = byOperator(operator);
    await this.auditLog.record(
      jobs.map(({ jobId, data }) => ({
        action: 'run-now' as const,
        group,
        jobId,
        eventId: data.eventId,
        type: data.type,
        ...who,
      })),
    );
  }

  /**
   * Sidekiq's "Kill": the named jobs (or, without ids, every job of the group waiting to run,
   * delayed or due) are
   * dead-lettered with reason `operator` instead of retried. Each job is marked and made due;
   * the group's retry worker then writes the dead letter (the failures so far, the last error)
   * without running the handler, as it finishes any dead letter it could not write before. So
   * a crash at any point loses nothing and writes the dead letter once; in a paused group it
   * waits for the resume. A job whose attempt is running is left to that attempt (`running`).
   * With an `operator`, each dead letter is audited (`dead-letter`) by the script that writes
   * it, so when it is written: at once, or at a paused group's resume.
   */
  async deadLetterNow(
    group: string,
    jobIds?: readonly string[],
    operator?: OperatorContext,
  ): Promise<DeadLetterNowResult> {
    const queue = this.queue(group);
    const ids = jobIds ?? (await this.waitingIds(queue));
    const result: DeadLetterNowResult = { marked: [], skipped: [] };
    for (let i = 0; i < ids.length; i += PROMOTE_CHUNK) {
      const outcomes = await Promise.all(
        ids
          .slice(i, i + PROMOTE_CHUNK)
          .map(async (jobId) => ({ jobId, skipped: await this.markDead(queue, jobId, operator) })),
      );
      for (const { jobId, skipped } of outcomes) {
        if (skipped) result.skipped.push({ jobId, reason: skipped });
        else result.marked.push(jobId);
      }
    }
    return result;
  }

  /** Every job of the queue waiting to run: delayed, due (waiting, or held by a pause) and prioritized. */
  private async waitingIds(queue: Queue<RetryJobData>): Promise<string[]> {
    const [delayed, wait, paused, prioritized] = waitingKeys(queue);
    const lists = await Promise.all([
      this.connection.zrange(delayed, '0', '-1'),
      this.connection.lrange(wait, '0', '-1'),
      this.connection.lrange(paused, '0', '-1'),
      this.connection.zrange(prioritized, '0', '-1'),
    ]);
    return [...new Set(lists.flat())];
  }

  private async markDead(
    queue: Queue<RetryJobData>,
    jobId: string,
    operator: OperatorContext | undefined,
  ): Promise<DeadLetterNowSkip['reason'] | undefined> {
    // Compare-and-set, so a retry worker taking the job between the read and the write cannot
    // run it with the old data and overwrite the mark when the attempt fails: the mark is set
    // only while the job still waits and its data is what was read. A failed attempt updating
    // the data meanwhile is read again.
    for (let tries = 0; tries < 5; tries++) {
      const job = await queue.getJob(jobId);
      const raw = await this.connection.hget(queue.toKey(jobId), 'data');
      if (!job || raw === null) return 'not-found';
      const data = JSON.parse(raw) as RetryJobData;
      // A job already marked (or already bound for the dead letters) keeps its mark.
      const marked = data.deadLetter ? raw : JSON.stringify(withOperatorMark(data, job.attemptsMade, operator));
      const result = Number(
        await this.connection.eval(MARK_IF_WAITING, 5, queue.toKey(jobId), ...waitingKeys(queue), jobId, raw, marked),
      );
      if (result === 1) return this.dueNow(job);
      if (result === 0) return 'not-found';
      if (result === -1) return (await job.getState()) === 'active' ? 'running' : 'not-found';
      // -2: its data changed (an attempt failed and backed off meanwhile): read it again.
    }
    return 'running';
  }

  /** Makes a delayed job due now; one already due stays as it is. */
  private async dueNow(job: Job<RetryJobData>): Promise<undefined> {
    await job.promote().catch(() => undefined);
    return undefined;
  }

  /**
   * Removes a job that has not started (waiting or delayed). False when it is running or has
   * run; true when it is gone (or never was).
   */
  async withdraw(group: string, jobId: string): Promise<boolean> {
    const job = await this.queue(group).getJob(jobId);
    if (!job) return true;
    const state = await job.getState();
    if (state !== 'delayed' && state !== 'waiting' && state !== 'prioritized') return state === 'unknown';
    try {
      await job.remove();
      return true;
    } catch {
      return false; // locked: it started meanwhile
    }
  }

  /** Promotes one job; says why not when it could not. */
  private async promote(
    queue: Queue<RetryJobData>,
    jobId: string,
  ): Promise<{ promoted: Job<RetryJobData> } | { skipped: RunNowSkip['reason'] }> {
    const job = await queue.getJob(jobId);
    if (!job) return { skipped: 'not-found' };
    try {
      await job.promote();
      return { promoted: job };
    } catch (err) {
      // BullMQ answers "not in the delayed state" however the job stands; its state tells which.
      const state = await queue.getJobState(jobId);
      if (state === 'waiting' || state === 'active' || state === 'prioritized') return { skipped: 'not-delayed' };
      if (state === 'delayed') throw err;
      return { skipped: 'not-found' };
    }
  }

  /** Due times (ms) of delayed jobs, from their scores; `undefined` for one that has left the set. */
  private async dueTimes(delayedKey: string, jobs: readonly { id?: string | undefined }[]) {
    const ids = jobs.map((j) => j.id ?? '');
    if (ids.length === 0 || !delayedKey) return [];
    const scores = await this.connection.zmscore(delayedKey, ...ids);
    return scores.map((s) => (s === null ? undefined : Math.floor(Number(s) / DELAY_SCORE_SHIFT)));
  }

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    await Promise.all([...this.storing]);
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
