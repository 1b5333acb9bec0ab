import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../audit/audit-log';
import { StreamfleetKeys } from '../streams/keys';
import { capturingLogger, cleanupPrefix, TestRedisServer, testRedisUrl, uniquePrefix, waitFor } from '../testing/index';
import { type RetryJobData, RetryQueues, retryJobId } from './retry-queues';

const prefix = uniquePrefix();
const keys = new StreamfleetKeys(prefix);
const GROUP = 'g';
let redis: Redis;
let queues: RetryQueues | undefined;
let n = 0;

function jobData(group = GROUP): RetryJobData {
  const eventId = `evt-${++n}`;
  const at = new Date().toISOString();
  return {
    group,
    stream: 'things',
    entryId: `${n}-0`,
    fields: ['id', eventId],
    eventId,
    type: 'thing.happened',
    attemptOffset: 1,
    replayCount: 0,
    firstFailedAt: at,
    failures: [{ attempt: 1, at, name: 'Error', message: 'boom' }],
  };
}

function open(lingerMs: number): RetryQueues {
  queues = new RetryQueues({ connection: redis, keys, lingerMs });
  return queues;
}

/** True once Redis holds the job (BullMQ's job hash). */
async function stored(data: RetryJobData): Promise<boolean> {
  const id = retryJobId(data.group, data.eventId, data.replayCount);
  return (await redis.exists(`${keys.bullPrefix}:${GROUP}:${id}`)) === 1;
}

beforeAll(() => {
  redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
});

afterEach(async () => {
  await queues?.close();
  queues = undefined;
});

afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(testRedisUrl(), prefix);
});

describe('RetryQueues: jobs wait for company, never past their due time', () => {
  it('stores jobs scheduled within the linger time in one addBulk, each due when it was due', async () => {
    const q = open(300);
    const addBulk = vi.spyOn(q.queue(GROUP), 'addBulk');
    const first = jobData();
    const second = jobData();
    const before = Date.now();
    const storedFirst = q.schedule(first, 5_000);
    // A round trip later (turns of the event loop, I/O) the first is still waiting for company.
    expect(await stored(first)).toBe(false);
    const storedSecond = q.schedule(second, 10_000);
    const after = Date.now();
    await Promise.all([storedFirst, storedSecond]);
    expect(await stored(first)).toBe(true);
    expect(await stored(second)).toBe(true);
    expect(addBulk).toHaveBeenCalledTimes(1);
    expect(addBulk.mock.calls[0]?.[0]).toHaveLength(2);
    // The wait came out of each job's delay: it runs when it would have without waiting.
    const { items } = await q.list(GROUP, { states: ['delayed'] });
    const due = new Map(items.map((i) => [i.data.eventId, Date.parse(i.nextRunAt ?? '')]));
    for (const [data, delayMs] of [
      [first, 5_000],
      [second, 10_000],
    ] as const) {
      expect(due.get(data.eventId)).toBeGreaterThanOrEqual(before + delayMs);
      expect(due.get(data.eventId)).toBeLessThanOrEqual(after + delayMs + 50);
    }
  });

  it('a job due now is stored at once, however long the linger', async () => {
    const q = open(600_000);
    const data = jobData();
    await q.schedule(data, 0);
    expect(await stored(data)).toBe(true);
    expect((await q.counts(GROUP)).waiting).toBeGreaterThanOrEqual(1);
  });

  it('a queue with a full batch waiting is stored at once', async () => {
    const q = open(600_000);
    const batch = Array.from({ length: 100 }, () => jobData());
    const ids = await Promise.all(batch.map((d) => q.schedule(d, 600_000)));
    expect(new Set(ids).size).toBe(100);
    for (const d of [batch[0], batch[99]]) expect(await stored(d as RetryJobData)).toBe(true);
  });

  it('flush() and close() store what is waiting, without the linger', async () => {
    const q = open(600_000);
    const flushed = jobData();
    const pending = q.schedule(flushed, 600_000);
    q.flush();
    await pending;
    expect(await stored(flushed)).toBe(true);

    const closing = jobData();
    const settled = q.schedule(closing, 600_000);
    await q.close();
    queues = undefined;
    await settled;
    expect(await stored(closing)).toBe(true);
  });
});

describe('RetryQueues: one job per event and round', () => {
  it('stores a job for each of two events whose ids differ only in characters BullMQ refuses', async () => {
    const q = open(0);
    const colon = { ...jobData('ids'), eventId: 'order:17' };
    const underscore = { ...jobData('ids'), eventId: 'order_17' };
    // Round 0 of an event named like round 1 of another.
    const replayed = { ...jobData('ids'), eventId: 'x', replayCount: 1 };
    const lookalike = { ...jobData('ids'), eventId: 'x.r1' };
    for (const data of [colon, underscore, replayed, lookalike]) await q.schedule(data, 3_600_000);
    const { items } = await q.list('ids', { states: ['delayed'] });
    expect(items.map((job) => [job.data.eventId, job.data.replayCount]).sort()).toEqual([
      ['order:17', 0],
      ['order_17', 0],
      ['x', 1],
      ['x.r1', 0],
    ]);
  });
});

describe('RetryQueues after close() and during an outage', () => {
  it('after close(), a late schedule (a handler failing after its fleet stopped) is refused at once and stores nothing', async () => {
    const q = open(0);
    await q.schedule(jobData(), 600_000);
    await q.close();
    queues = undefined;
    const late = jobData();
    await expect(q.schedule(late, 600_000)).rejects.toThrow(/closed/);
    q.flush();
    expect(await stored(late)).toBe(false);
  });

  describe('on a Redis that goes away', () => {
    // Its own server: the test kills it.
    const server = new TestRedisServer();
    beforeAll(() => server.start(), 20_000);
    afterAll(() => server.stop());

    it('reports the connection errors to its logger, and writes nothing to stderr', async () => {
      const { logger, withMessage } = capturingLogger('debug');
      const connection = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 20 });
      connection.on('error', () => undefined); // the owner of the connection logs the outage
      const q = new RetryQueues({ connection, keys, logger, lingerMs: 0 });
      const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        await q.schedule(jobData(), 600_000);
        await server.kill();
        const logged = () => withMessage('retry queue: redis unavailable');
        await waitFor(() => consoleError.mock.calls.length > 0 || logged().length >= 3, {
          message: 'reconnect attempts reported',
        });
        expect(consoleError).not.toHaveBeenCalled();
        expect(logged()[0]).toMatchObject({ level: 20, group: GROUP });
      } finally {
        consoleError.mockRestore();
        connection.disconnect();
        await q.close();
      }
    });
  });
});

describe('RetryQueues.runNow: delayed jobs made due now', () => {
  const HOUR = 3_600_000;
  const idOf = (data: RetryJobData) => retryJobId(data.group, data.eventId, data.replayCount);
  /** Each job of the group by state, as the admin listing reads it. */
  async function states(q: RetryQueues, group: string) {
    const page = await q.list(group);
    return Object.fromEntries(page.items.map((job) => [job.jobId, { state: job.state, attempts: job.attemptsMade }]));
  }

  it('makes the chosen delayed jobs due, attempts unchanged, and leaves the rest backing off', async () => {
    const q = open(0);
    const a = jobData('chosen');
    const b = jobData('chosen');
    const c = jobData('chosen');
    for (const data of [a, b, c]) await q.schedule(data, HOUR);

    expect(await q.runNow('chosen', [idOf(b), idOf(a)])).toEqual({ promoted: [idOf(b), idOf(a)], skipped: [] });

    expect(await states(q, 'chosen')).toEqual({
      [idOf(a)]: { state: 'waiting', attempts: 1 },
      [idOf(b)]: { state: 'waiting', attempts: 1 },
      [idOf(c)]: { state: 'delayed', attempts: 1 },
    });
  });

  it('says which jobs it left alone: already due, or not retrying', async () => {
    const q = open(0);
    const due = jobData('skips');
    const delayed = jobData('skips');
    await q.schedule(due, 0);
    await q.schedule(delayed, HOUR);

    expect(await q.runNow('skips', [idOf(due), 'skips.no-such-event', idOf(delayed)])).toEqual({
      promoted: [idOf(delayed)],
      skipped: [
        { jobId: idOf(due), reason: 'not-delayed' },
        { jobId: 'skips.no-such-event', reason: 'not-found' },
      ],
    });
  });

  it('without ids, makes every delayed job of the group due, and no other group’s', async () => {
    const q = open(0);
    const delayed = Array.from({ length: 3 }, () => jobData('every'));
    for (const data of delayed) await q.schedule(data, HOUR);
    const due = jobData('every');
    await q.schedule(due, 0);
    const other = jobData('elsewhere');
    await q.schedule(other, HOUR);

    const result = await q.runNow('every');

    expect(result.skipped).toEqual([]);
    expect(new Set(result.promoted)).toEqual(new Set(delayed.map(idOf)));
    expect(await q.counts('every')).toMatchObject({ waiting: 4, delayed: 0 });
    expect(await q.counts('elsewhere')).toMatchObject({ waiting: 0, delayed: 1 });
    expect(await q.runNow('every')).toEqual({ promoted: [], skipped: [] });
  });

  it('audits each job it made due for an operator, and nothing it skipped or did without one', async () => {
    const q = open(0);
    const [a, b, due] = [jobData('audited'), jobData('audited'), jobData('audited')];
    for (const data of [a, b]) await q.schedule(data, HOUR);
    await q.schedule(due, 0);
    const started = Date.now();

    await q.runNow('audited', [idOf(a), idOf(due), 'audited.no-such-event'], { actor: 'alice', batchId: 'b-1' });
    // A replay makes its own job due without an operator: the replay is what is audited.
    await q.runNow('audited', [idOf(b)]);

    const { items } = await new AuditLog(redis, keys).list();
    expect(items.filter((r) => r.group === 'audited')).toEqual([
      {
        id: expect.any(String),
        action: 'run-now',
        actor: 'alice',
        at: expect.any(String),
        group: 'audited',
        jobId: idOf(a),
        eventId: a.eventId,
        type: 'thing.happened',
        batchId: 'b-1',
      },
    ]);
    expect(Date.parse(String(items[0]?.at))).toBeGreaterThanOrEqual(started);
  });
});

describe('RetryQueues.deadLetterNow: jobs marked to be dead-lettered instead of retried', () => {
  const HOUR = 3_600_000;
  const idOf = (data: RetryJobData) => retryJobId(data.group, data.eventId, data.replayCount);
  const marks = async (q: RetryQueues, group: string) =>
    Object.fromEntries((await q.list(group)).items.map((job) => [job.jobId, [job.state, job.data.deadLetter]]));

  it('marks the named jobs with their last error and attempts, makes them due, and leaves the rest', async () => {
    const q = open(0);
    const [a, b] = [jobData('kill'), jobData('kill')];
    for (const data of [a, b]) await q.schedule(data, HOUR);

    expect(await q.deadLetterNow('kill', [idOf(a), 'kill.no-such-event'])).toEqual({
      marked: [idOf(a)],
      skipped: [{ jobId: 'kill.no-such-event', reason: 'not-found' }],
    });

    expect(await marks(q, 'kill')).toEqual({
      [idOf(a)]: ['waiting', { reason: 'operator', lastError: { name: 'Error', message: 'boom' }, attempts: 1 }],
      [idOf(b)]: ['delayed', undefined],
    });
  });

  it('without ids, marks every job of the group waiting to run, delayed or due, and no other group’s', async () => {
    const q = open(0);
    const delayed = [jobData('kill-all'), jobData('kill-all')];
    for (const data of delayed) await q.schedule(data, HOUR);
    // Due, but no worker runs it (as in a paused group).
    const due = jobData('kill-all');
    await q.schedule(due, 0);
    const other = jobData('kill-other');
    await q.schedule(other, HOUR);

    const result = await q.deadLetterNow('kill-all');

    expect(new Set(result.marked)).toEqual(new Set([...delayed, due].map(idOf)));
    expect(await q.counts('kill-all')).toMatchObject({ waiting: 3, delayed: 0 });
    expect(Object.values(await marks(q, 'kill-all')).map(([, mark]) => (mark as { reason: string }).reason)).toEqual([
      'operator',
      'operator',
      'operator',
    ]);
    expect(await marks(q, 'kill-other')).toEqual({ [idOf(other)]: ['delayed', undefined] });
  });
});
