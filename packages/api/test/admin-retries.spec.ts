import {
  createEvent,
  type EventHandler,
  encodeEvent,
  type FailureRecord,
  type RetryJobData,
  RetryPolicy,
  RetryWorker,
  retryJobId,
} from '@streamfleet/core';
import { waitFor } from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness } from './harness';

const PAYMENT = 'payment';
const INVENTORY = 'inventory';
/** A group with a stream and nothing to retry. */
const QUIET = 'quiet';

interface RetryJobBody {
  jobId: string;
  state: string;
  eventId: string;
  attemptsMade: number;
  nextRunAt?: string;
  lastError?: { attempt: number; message: string };
  [k: string]: unknown;
}

/** A retry job as the consumer loop stores it after a failed first delivery (or a replay, with `replayCount`). */
function jobData(
  group: string,
  name: string,
  options: { replayCount?: number; failures?: readonly FailureRecord[]; eventId?: string } = {},
) {
  const event = createEvent({
    type: 'test.thing',
    schemaVersion: 1,
    aggregateId: `agg-${name}`,
    data: { name },
    ...(options.eventId ? { id: options.eventId } : {}),
  });
  const replayCount = options.replayCount ?? 0;
  const failures: FailureRecord[] = options.failures
    ? [...options.failures]
    : [{ attempt: 1, at: '2026-01-01T00:00:00.000Z', name: 'Error', message: `${name} failed` }];
  const data: RetryJobData = {
    group,
    stream: 'things',
    entryId: `1700000000000-${name.length}`,
    fields: encodeEvent(event),
    eventId: event.id,
    type: event.type,
    attemptOffset: replayCount > 0 ? 0 : 1,
    replayCount,
    firstFailedAt: '2026-01-01T00:00:00.000Z',
    failures,
  };
  return data;
}

/** The payment group's retry worker on the harness's connection, with a fixed delay between attempts. */
function paymentRetryWorker(h: Harness, handler: EventHandler, policy: { maxAttempts: number; delayMs: number }) {
  return new RetryWorker({
    connection: h.redis,
    keys: h.keys,
    definition: { group: PAYMENT, stream: 'things', handler },
    catalog: h.deps.catalog,
    policy: new RetryPolicy({
      maxAttempts: policy.maxAttempts,
      baseDelayMs: policy.delayMs,
      maxDelayMs: policy.delayMs,
      jitter: 0,
    }),
    deadLetters: h.deps.deadLetters,
    maxDeliveries: 5,
  });
}

describe('retrying events through the admin API', () => {
  let h: Harness;
  const get = (url: string) => h.app.inject({ method: 'GET', url, headers: adminHeaders });
  const ok = async (url: string) => {
    const res = await get(url);
    expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    return res.json();
  };
  /** Payment's jobs by name, in the order they will run. */
  const payment: Record<string, RetryJobData> = {};
  let scheduledAt = 0;

  beforeAll(async () => {
    h = await createHarness();
    for (const group of [PAYMENT, INVENTORY, QUIET]) {
      await h.redis.xgroup('CREATE', h.keys.stream('things'), group, '$', 'MKSTREAM');
    }
    await h.redis.sadd(h.keys.streams, 'things');
    const queues = h.deps.retryQueues;
    scheduledAt = Date.now();
    // Scheduled one at a time, so the waiting list's order is the order written here.
    for (const [name, delayMs, extra] of [
      ['first-due', 0, {}],
      ['second-due', 0, { replayCount: 2, failures: [] }],
      ['in-30s', 30_000, {}],
      ['in-10s', 10_000, {}],
      ['in-20s', 20_000, {}],
    ] as const) {
      payment[name] = jobData(PAYMENT, name, extra);
      await queues.schedule(payment[name], delayMs);
    }
    await queues.schedule(jobData(INVENTORY, 'stock'), 60_000);
    await h.deps.deadLetters.write({
      ...jobData(PAYMENT, 'dead'),
      reason: 'retries-exhausted',
      attempts: 3,
      lastError: { name: 'Error', message: 'gave up' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lists one group’s retrying events, with attempts, next run, replays and last error', async () => {
    const body = await ok(`/admin/retries/${PAYMENT}`);
    expect(body).toMatchObject({ group: PAYMENT, maxAttempts: 3, total: 5 });
    expect(body.nextOffset).toBeUndefined();
    expect(body.counts).toEqual({
      waiting: 2,
      delayed: 3,
      active: 0,
      retrying: 5,
      failed: 0,
      completed: 0,
      deadLettered: 1,
    });
    const items = body.items as RetryJobBody[];
    // Due ones first (oldest first), then delayed ones, soonest first.
    expect(items.map((i) => i.eventId)).toEqual(
      ['first-due', 'second-due', 'in-10s', 'in-20s', 'in-30s'].map((n) => payment[n]?.eventId),
    );
    const first = payment['first-due'] as RetryJobData;
    expect(items[0]).toEqual({
      jobId: `${PAYMENT}.${first.eventId}`,
      state: 'waiting',
      eventId: first.eventId,
      type: 'test.thing',
      aggregateId: 'agg-first-due',
      stream: 'things',
      entryId: first.entryId,
      attemptsMade: 1,
      maxAttempts: 3,
      addedAt: expect.any(String),
      replayCount: 0,
      firstFailedAt: '2026-01-01T00:00:00.000Z',
      lastError: { attempt: 1, at: '2026-01-01T00:00:00.000Z', name: 'Error', message: 'first-due failed' },
    });
    // A replayed event starts with fresh attempts and no failure yet.
    expect(items[1]).toMatchObject({ state: 'waiting', attemptsMade: 0, replayCount: 2 });
    expect(items[1]?.lastError).toBeUndefined();
    expect(items[1]?.jobId).toBe(`${PAYMENT}.${payment['second-due']?.eventId}~r2`);
    for (const [item, seconds] of [
      [items[2], 10],
      [items[3], 20],
      [items[4], 30],
    ] as const) {
      expect(item?.state).toBe('delayed');
      const due = Date.parse(item?.nextRunAt ?? '');
      expect(due).toBeGreaterThanOrEqual(scheduledAt + seconds * 1000);
      expect(due).toBeLessThanOrEqual(Date.now() + seconds * 1000);
    }
    expect(items[0]?.nextRunAt).toBeUndefined();
  });

  it('paginates by offset and limit, and filters by state', async () => {
    const one = await ok(`/admin/retries/${PAYMENT}?limit=2`);
    expect(one.items.map((i: RetryJobBody) => i.eventId)).toEqual([
      payment['first-due']?.eventId,
      payment['second-due']?.eventId,
    ]);
    expect(one).toMatchObject({ total: 5, nextOffset: 2 });
    const two = await ok(`/admin/retries/${PAYMENT}?limit=2&offset=${one.nextOffset}`);
    expect(two.items.map((i: RetryJobBody) => i.eventId)).toEqual([
      payment['in-10s']?.eventId,
      payment['in-20s']?.eventId,
    ]);
    expect(two.nextOffset).toBe(4);
    const three = await ok(`/admin/retries/${PAYMENT}?limit=2&offset=4`);
    expect(three.items.map((i: RetryJobBody) => i.eventId)).toEqual([payment['in-30s']?.eventId]);
    expect(three.nextOffset).toBeUndefined();
    expect((await ok(`/admin/retries/${PAYMENT}?offset=9`)).items).toEqual([]);

    const delayed = await ok(`/admin/retries/${PAYMENT}?state=delayed&limit=1&offset=1`);
    expect(delayed).toMatchObject({ total: 3, nextOffset: 2 });
    expect(delayed.items.map((i: RetryJobBody) => i.eventId)).toEqual([payment['in-20s']?.eventId]);
    expect((await ok(`/admin/retries/${PAYMENT}?state=active`)).items).toEqual([]);
  });

  it('lists only the asked-for group', async () => {
    const body = await ok(`/admin/retries/${INVENTORY}`);
    expect(body).toMatchObject({ group: INVENTORY, total: 1, counts: { delayed: 1, deadLettered: 0 } });
    expect(body.items).toEqual([expect.objectContaining({ aggregateId: 'agg-stock', state: 'delayed' })]);
    expect(await ok(`/admin/retries/${QUIET}`)).toMatchObject({ total: 0, items: [], counts: { retrying: 0 } });
  });

  it('counts every group, or only the one named by ?group=', async () => {
    const all = await ok('/admin/retries');
    expect(all.groups.map((g: { group: string }) => g.group)).toEqual([INVENTORY, PAYMENT, QUIET]);
    const only = await ok(`/admin/retries?group=${PAYMENT}`);
    expect(only.groups).toEqual([
      { group: PAYMENT, waiting: 2, delayed: 3, active: 0, retrying: 5, failed: 0, completed: 0, deadLettered: 1 },
    ]);
    expect((await ok(`/admin/retries?group=${INVENTORY}`)).groups).toEqual([
      expect.objectContaining({ group: INVENTORY, delayed: 1, retrying: 1 }),
    ]);
  });

  it('knows a group that only has a retry queue', async () => {
    await h.deps.retryQueues.schedule(jobData('orphan', 'x'), 60_000);
    expect((await ok('/admin/retries?group=orphan')).groups).toEqual([
      expect.objectContaining({ group: 'orphan', delayed: 1 }),
    ]);
    expect((await ok('/admin/retries/orphan')).total).toBe(1);
  });

  it.each([
    ['an unknown group', '/admin/retries?group=nobody', 400, 'query.group'],
    ['an invalid group name', '/admin/retries?group=no%20body', 400, 'query.group'],
    ['an unknown query parameter', '/admin/retries?grop=payment', 400, 'query.grop'],
    ['an unknown group to list', '/admin/retries/nobody', 404, 'params.group'],
    ['an invalid group name to list', '/admin/retries/no%20body', 400, 'params.group'],
    ['a state that is not retrying', `/admin/retries/${PAYMENT}?state=completed`, 400, 'query.state'],
    ['a zero limit', `/admin/retries/${PAYMENT}?limit=0`, 400, 'query.limit'],
    ['a limit over the maximum', `/admin/retries/${PAYMENT}?limit=501`, 400, 'query.limit'],
    ['a negative offset', `/admin/retries/${PAYMENT}?offset=-1`, 400, 'query.offset'],
  ])('refuses %s with a problem naming the field', async (_name, url, status, field) => {
    const keysBefore = await h.keyList();
    const res = await get(url);
    expect(res.statusCode, res.body).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(await h.keyList()).toEqual(keysBefore);
  });

  it('names the known groups when refusing an unknown one', async () => {
    const res = await get('/admin/retries?group=nobody');
    expect(res.json()).toMatchObject({ code: 'VALIDATION_ERROR' });
    expect(res.json().detail).toContain(`${INVENTORY}, ${PAYMENT}, ${QUIET}`);
  });
});

/**
 * A job that really ran and failed: its attempt count and next run time come from BullMQ's
 * state after the retry worker backed it off, not from what was scheduled.
 */
describe('a retry job after a failed retry attempt', () => {
  let h: Harness;
  let worker: RetryWorker;

  beforeAll(async () => {
    h = await createHarness();
    worker = paymentRetryWorker(
      h,
      () => {
        throw new Error('gateway answered 503');
      },
      { maxAttempts: 5, delayMs: 60_000 },
    );
    worker.start();
  });
  afterAll(async () => {
    await worker?.close();
    await h?.close();
  });

  it('shows the attempts made, the last error and when it runs next', async () => {
    const data = jobData(PAYMENT, 'charge');
    await h.deps.retryQueues.schedule(data, 0);
    await waitFor(async () => (await h.deps.retryQueues.counts(PAYMENT)).delayed === 1, {
      message: 'the job backed off after its second attempt',
    });
    const failedAt = Date.now();
    const res = await h.app.inject({ method: 'GET', url: `/admin/retries/${PAYMENT}`, headers: adminHeaders });
    expect(res.statusCode, res.body).toBe(200);
    const [item] = res.json().items as RetryJobBody[];
    expect(item).toMatchObject({
      state: 'delayed',
      eventId: data.eventId,
      attemptsMade: 2,
      startedAt: expect.any(String),
      lastError: { attempt: 2, name: 'Error', message: 'gateway answered 503' },
    });
    const due = Date.parse(item?.nextRunAt ?? '');
    expect(due).toBeGreaterThan(failedAt + 50_000);
    expect(due).toBeLessThanOrEqual(failedAt + 60_000);
  });
});

/** Sidekiq's "Retry Now": delayed jobs made due at once, run by the group's retry worker. */
describe('running retries now', () => {
  const HOUR = 3_600_000;
  let h: Harness;
  let worker: RetryWorker;
  const handled: string[] = [];
  /** Holds the `held` job's attempt running until the test lets it go. */
  let release: () => void = () => {};
  const held = jobData(PAYMENT, 'held');
  const post = (url: string, body?: unknown) =>
    h.app.inject({ method: 'POST', url, headers: { ...adminHeaders, 'x-actor': 'alice' }, payload: body as object });
  const idOf = (data: RetryJobData) => retryJobId(data.group, data.eventId, data.replayCount);

  beforeAll(async () => {
    h = await createHarness();
    await h.redis.xgroup('CREATE', h.keys.stream('things'), PAYMENT, '$', 'MKSTREAM');
    await h.redis.sadd(h.keys.streams, 'things');
    worker = paymentRetryWorker(
      h,
      async (event) => {
        if (event.id === held.eventId) await new Promise<void>((resolve) => (release = resolve));
        handled.push(event.id);
      },
      { maxAttempts: 3, delayMs: HOUR },
    );
    worker.start();
  });
  afterAll(async () => {
    release();
    await worker?.close();
    await h?.close();
  });

  it('runs one delayed job now and leaves the others to their backoff', async () => {
    const [now, later] = [jobData(PAYMENT, 'now'), jobData(PAYMENT, 'later')];
    for (const data of [now, later]) await h.deps.retryQueues.schedule(data, HOUR);

    const res = await post(`/admin/retries/${PAYMENT}/${idOf(now)}/run-now`);

    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ group: PAYMENT, jobId: idOf(now), state: 'waiting' });
    await waitFor(() => handled.includes(now.eventId), { message: 'the promoted job ran' });
    expect(handled).not.toContain(later.eventId);
    const listed = await h.app.inject({ method: 'GET', url: `/admin/retries/${PAYMENT}`, headers: adminHeaders });
    expect((listed.json().items as RetryJobBody[]).map((j) => [j.eventId, j.state])).toEqual([
      [later.eventId, 'delayed'],
    ]);

    const again = await post(`/admin/retries/${PAYMENT}/${idOf(now)}/run-now`);
    expect(again.statusCode).toBe(404);
    expect(again.json().errors).toEqual([{ field: 'params.jobId', message: 'not a retrying job of this group' }]);
  });

  it('runs a job whose event id is not URL-safe, by the job id /admin/retries lists, unencoded in the path', async () => {
    const odd = jobData(PAYMENT, 'odd', { eventId: `order:17 é/${Date.now()}` });
    await h.deps.retryQueues.schedule(odd, HOUR);
    const listed = await h.app.inject({ method: 'GET', url: `/admin/retries/${PAYMENT}`, headers: adminHeaders });
    const jobId = (listed.json().items as RetryJobBody[]).find((j) => j.eventId === odd.eventId)?.jobId;
    expect(jobId).toMatch(/^payment\.order~3A17~20~C3~A9~2F\d+$/);

    const res = await post(`/admin/retries/${PAYMENT}/${jobId}/run-now`);
    expect(res.statusCode, res.body).toBe(200);
    await waitFor(() => handled.includes(odd.eventId), { message: 'the job ran' });
  });

  it('runs the named jobs, or with {} every delayed job, and says which it skipped', async () => {
    const [a, b, c] = [jobData(PAYMENT, 'a'), jobData(PAYMENT, 'b'), jobData(PAYMENT, 'c')];
    for (const data of [a, b, c]) await h.deps.retryQueues.schedule(data, HOUR);

    const named = await post(`/admin/retries/${PAYMENT}/run-now`, { ids: [idOf(a), 'payment.no-such-event'] });
    expect(named.statusCode, named.body).toBe(200);
    expect(named.json()).toEqual({
      batchId: expect.any(String),
      group: PAYMENT,
      promoted: 1,
      promotedIds: [idOf(a)],
      skipped: [{ jobId: 'payment.no-such-event', reason: 'not-found' }],
    });
    await waitFor(() => handled.includes(a.eventId), { message: 'the named job ran' });
    expect(handled).not.toContain(b.eventId);

    const every = await post(`/admin/retries/${PAYMENT}/run-now`, {});
    expect(every.statusCode, every.body).toBe(200);
    // Every job still delayed: b, c, and the first test's `later`.
    expect(every.json()).toMatchObject({ promoted: 3, skipped: [] });
    expect(every.json().promotedIds).toEqual(expect.arrayContaining([idOf(b), idOf(c)]));
    await waitFor(() => handled.includes(b.eventId) && handled.includes(c.eventId), {
      message: 'every delayed job ran',
    });
    expect((await h.deps.retryQueues.counts(PAYMENT)).delayed).toBe(0);
  });

  it('refuses a job that is already running, an unknown group and a bad body', async () => {
    await h.deps.retryQueues.schedule(held, 0);
    await waitFor(async () => (await h.deps.retryQueues.counts(PAYMENT)).active === 1, {
      message: 'the held job is running',
    });

    const running = await post(`/admin/retries/${PAYMENT}/${idOf(held)}/run-now`);
    expect(running.statusCode).toBe(409);
    expect(running.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(running.json().errors).toEqual([{ field: 'params.jobId', message: 'already due or running' }]);
    const bulk = await post(`/admin/retries/${PAYMENT}/run-now`, { ids: [idOf(held)] });
    expect(bulk.json()).toMatchObject({ promoted: 0, skipped: [{ jobId: idOf(held), reason: 'not-delayed' }] });
    release();
    await waitFor(() => handled.includes(held.eventId), { message: 'the held job finished' });

    const unknown = await post('/admin/retries/nobody/run-now', {});
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().errors).toEqual([{ field: 'params.group', message: 'unknown consumer group' }]);
    for (const [body, field] of [
      [{ ids: [] }, 'ids'],
      [{ ids: ['has space'] }, 'ids.0'],
      [{ every: true }, 'every'],
    ] as const) {
      const res = await post(`/admin/retries/${PAYMENT}/run-now`, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });
});

describe('dead-lettering retries now (Sidekiq’s "Kill")', () => {
  const HOUR = 3_600_000;
  let h: Harness;
  let worker: RetryWorker;
  const handled: string[] = [];
  let release: () => void = () => {};
  const held = jobData(PAYMENT, 'kill-held');
  const post = (url: string, body?: unknown) =>
    h.app.inject({ method: 'POST', url, headers: { ...adminHeaders, 'x-actor': 'alice' }, payload: body as object });
  const idOf = (data: RetryJobData) => retryJobId(data.group, data.eventId, data.replayCount);
  /** The payment group's dead letters of an event, as operators list them. */
  const deadLettersOf = async (data: RetryJobData) => {
    const res = await h.app.inject({ method: 'GET', url: `/admin/dlq?group=${PAYMENT}`, headers: adminHeaders });
    return (
      res.json().items as { id: string; eventId: string; reason: string; attempts: number; lastError: string }[]
    ).filter((i) => i.eventId === data.eventId);
  };

  beforeAll(async () => {
    h = await createHarness();
    await h.redis.xgroup('CREATE', h.keys.stream('things'), PAYMENT, '$', 'MKSTREAM');
    await h.redis.sadd(h.keys.streams, 'things');
    worker = paymentRetryWorker(
      h,
      async (event) => {
        if (event.id === held.eventId) await new Promise<void>((resolve) => (release = resolve));
        handled.push(event.id);
      },
      { maxAttempts: 3, delayMs: HOUR },
    );
    worker.start();
  });
  afterAll(async () => {
    release();
    await worker?.close();
    await h?.close();
  });

  it('dead-letters one job with its failures instead of running it; the others keep backing off', async () => {
    const [kill, keep] = [jobData(PAYMENT, 'kill-one'), jobData(PAYMENT, 'keep-one')];
    for (const data of [kill, keep]) await h.deps.retryQueues.schedule(data, HOUR);

    const res = await post(`/admin/retries/${PAYMENT}/${idOf(kill)}/dead-letter`);

    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      group: PAYMENT,
      jobId: idOf(kill),
      state: 'waiting',
      deadLetterPending: { reason: 'operator' },
    });
    const [dead] = await waitFor(
      async () => {
        const found = await deadLettersOf(kill);
        return found.length > 0 ? found : undefined;
      },
      { message: 'the job dead-lettered' },
    );
    expect(dead).toMatchObject({ reason: 'operator', attempts: 1, lastError: 'kill-one failed' });
    expect(handled).not.toContain(kill.eventId);
    // Audited like a replay or a discard: who, when, and the dead letter it made.
    const audit = await h.app.inject({ method: 'GET', url: '/admin/audit', headers: adminHeaders });
    expect(audit.json().items.filter((r: { eventId: string }) => r.eventId === kill.eventId)).toEqual([
      expect.objectContaining({ action: 'dead-letter', actor: 'alice', group: PAYMENT, deadLetterId: dead?.id }),
    ]);
    await waitFor(async () => (await h.deps.retryQueues.counts(PAYMENT)).waiting === 0, {
      message: 'the job gone from the queue',
    });
    const listed = await h.app.inject({ method: 'GET', url: `/admin/retries/${PAYMENT}`, headers: adminHeaders });
    expect((listed.json().items as RetryJobBody[]).map((j) => j.eventId)).toEqual([keep.eventId]);

    const again = await post(`/admin/retries/${PAYMENT}/${idOf(kill)}/dead-letter`);
    expect(again.statusCode).toBe(404);
    expect(again.json().errors).toEqual([{ field: 'params.jobId', message: 'not a retrying job of this group' }]);
  });

  it('with {} dead-letters every delayed job of the group, once each; a running attempt is left to decide', async () => {
    await h.deps.retryQueues.schedule(held, 0);
    await waitFor(async () => (await h.deps.retryQueues.counts(PAYMENT)).active === 1, {
      message: 'the held job is running',
    });
    const running = await post(`/admin/retries/${PAYMENT}/${idOf(held)}/dead-letter`);
    expect(running.statusCode).toBe(409);
    expect(running.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(running.json().errors).toEqual([{ field: 'params.jobId', message: 'running now' }]);

    const [a, b] = [jobData(PAYMENT, 'kill-a'), jobData(PAYMENT, 'kill-b')];
    for (const data of [a, b]) await h.deps.retryQueues.schedule(data, HOUR);
    const named = await post(`/admin/retries/${PAYMENT}/dead-letter`, { ids: [idOf(held), 'payment.no-such-event'] });
    expect(named.json()).toEqual({
      batchId: expect.any(String),
      group: PAYMENT,
      marked: 0,
      markedIds: [],
      skipped: [
        { jobId: idOf(held), reason: 'running' },
        { jobId: 'payment.no-such-event', reason: 'not-found' },
      ],
    });
    const every = await post(`/admin/retries/${PAYMENT}/dead-letter`, {});
    expect(every.statusCode, every.body).toBe(200);
    // a, b, and the first test's `keep-one`.
    expect(every.json()).toMatchObject({ marked: 3, skipped: [] });
    expect(every.json().markedIds).toEqual(expect.arrayContaining([idOf(a), idOf(b)]));
    for (const data of [a, b]) {
      await waitFor(async () => (await deadLettersOf(data)).length === 1, { message: `${data.eventId} dead-lettered` });
    }
    expect(handled).not.toContain(a.eventId);
    expect(handled).not.toContain(b.eventId);
    // Each audited as its dead letter is written, under the call's batchId.
    const audit = await h.app.inject({ method: 'GET', url: '/admin/audit', headers: adminHeaders });
    const byEvent = (data: RetryJobData) =>
      audit.json().items.filter((r: { eventId?: string }) => r.eventId === data.eventId);
    for (const data of [a, b]) {
      expect(byEvent(data)).toEqual([
        expect.objectContaining({ action: 'dead-letter', actor: 'alice', batchId: every.json().batchId }),
      ]);
    }

    release();
    await waitFor(() => handled.includes(held.eventId), { message: 'the held attempt finished' });
    expect(await deadLettersOf(held)).toEqual([]);
    const unknown = await post('/admin/retries/nobody/dead-letter', {});
    expect(unknown.statusCode).toBe(404);
  });
});

describe('a replayed event being retried', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('shows the last error of its own round, not the one that dead-lettered it before the replay', async () => {
    const earlier: FailureRecord[] = [1, 2, 3].map((attempt) => ({
      attempt,
      replay: 0,
      at: '2026-01-01T00:00:00.000Z',
      name: 'Error',
      message: `first round, attempt ${attempt}`,
    }));
    const replayed = jobData(PAYMENT, 'replayed', { replayCount: 1, failures: earlier });
    await h.deps.retryQueues.schedule(replayed, 3_600_000);
    const res = await h.app.inject({ method: 'GET', url: `/admin/retries/${PAYMENT}`, headers: adminHeaders });
    expect(res.statusCode, res.body).toBe(200);
    const [item] = res.json().items as RetryJobBody[];
    expect(item).toMatchObject({ eventId: replayed.eventId, replayCount: 1, attemptsMade: 0 });
    expect(item?.lastError).toBeUndefined();
  });
});
