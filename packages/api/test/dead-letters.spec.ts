import {
  AuditLog,
  createEvent,
  type EventEnvelope,
  Fleet,
  type FleetOptions,
  loadConfig,
  NonRetryableError,
  StreamProducer,
} from '@streamfleet/core';
import {
  capturingLogger,
  cleanupPrefix,
  deadLetterInput,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, buildApp } from '../src/app';
import { ADMIN_TOKEN, adminHeaders, createHarness, type Harness, testCatalog } from './harness';

/** A running `Fleet` on the test catalog and the API over its connections, as `server.ts` wires them. */
interface FleetApi {
  fleet: Fleet;
  app: ApiApp;
  /** Closes both and deletes the prefix's keys. */
  close(): Promise<void>;
}

async function startFleetApi(
  url: string,
  prefix: string,
  options: Omit<FleetOptions, 'redisUrl' | 'prefix' | 'catalog'>,
): Promise<FleetApi> {
  const catalog = testCatalog();
  const fleet = new Fleet({ redisUrl: url, prefix, catalog, ...options });
  await fleet.start();
  const app = buildApp(loadConfig({ REDIS_URL: url, STREAMFLEET_PREFIX: prefix, ADMIN_TOKEN }), {
    redis: fleet.redis,
    catalog,
    producer: fleet.producer,
    deadLetters: fleet.deadLetters,
    retryQueues: fleet.retryQueues,
  });
  await app.ready();
  return {
    fleet,
    app,
    async close() {
      await app.close();
      await fleet.close();
      await cleanupPrefix(url, prefix);
    },
  };
}

const WORKER = 'thing-worker';
const AUDITOR = 'thing-auditor';

/**
 * The whole dead-letter loop through the real engine: a `Fleet` runs two groups on the
 * `things` stream; the worker group throws `NonRetryableError` while `failing` is set, so
 * its events are dead-lettered; the admin API lists, fetches, replays and discards them.
 */
describe('dead-letter admin through the engine', () => {
  const prefix = uniquePrefix('api-dlq');
  const url = testRedisUrl();
  const handled = { [WORKER]: new Map<string, number>(), [AUDITOR]: new Map<string, number>() };
  const count = (group: keyof typeof handled, eventId: string) => handled[group].get(eventId) ?? 0;
  let failing = true;
  let running: FleetApi | undefined;
  let fleet: Fleet;
  let app: ApiApp;
  const eventIds: string[] = [];

  const admin = (method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown, headers = {}) =>
    app.inject({
      method,
      url: path,
      headers: { ...adminHeaders, ...headers },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const list = async (query = '') => {
    const res = await admin('GET', `/admin/dlq${query}`);
    expect(res.statusCode).toBe(200);
    return res.json() as { items: { id: string; eventId: string; [k: string]: unknown }[]; nextCursor?: string };
  };

  beforeAll(async () => {
    const record = (group: keyof typeof handled) => (event: EventEnvelope) => {
      handled[group].set(event.id, count(group, event.id) + 1);
    };
    running = await startFleetApi(url, prefix, {
      groups: [
        {
          group: WORKER,
          stream: 'things',
          handler: (event) => {
            record(WORKER)(event);
            if (failing && (event.data as { fail?: boolean }).fail) throw new NonRetryableError('thing is broken');
          },
        },
        { group: AUDITOR, stream: 'things', handler: record(AUDITOR) },
      ],
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20, jitter: 0 },
      consumer: { blockMs: 50, visibilityTimeoutMs: 5000 },
    });
    ({ fleet, app } = running);

    for (const [name, fail] of [
      ['one', true],
      ['two', true],
      ['three', true],
      ['fine', false],
    ] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/events',
        payload: { type: 'test.thing', aggregateId: name, data: { name, fail } },
      });
      expect(res.statusCode).toBe(202);
      eventIds.push(res.json().eventId);
    }
    await waitFor(async () => (await fleet.deadLetters.length()) === 3, { message: 'three dead letters' });
    await waitFor(() => eventIds.every((id) => count(AUDITOR, id) === 1), { message: 'auditor saw every event' });
  });

  afterAll(async () => {
    await running?.close();
  });

  it('lists dead-lettered events, newest first, with summaries', async () => {
    const page = await list();
    expect(page.items).toHaveLength(3);
    expect(page.nextCursor).toBeUndefined();
    expect(page.items.map((i) => i.eventId)).toEqual([eventIds[2], eventIds[1], eventIds[0]]);
    expect(page.items[0]).toEqual({
      id: expect.stringMatching(/^\d+-\d+$/),
      group: WORKER,
      stream: 'things',
      eventId: eventIds[2],
      type: 'test.thing',
      aggregateId: 'three',
      reason: 'non-retryable',
      attempts: 1,
      lastError: 'thing is broken',
      firstFailedAt: expect.any(String),
      deadLetteredAt: expect.any(String),
      replayCount: 0,
    });
  });

  it('filters by group, type, reason and time, and paginates by cursor', async () => {
    expect((await list(`?group=${WORKER}`)).items).toHaveLength(3);
    expect((await list(`?group=${AUDITOR}`)).items).toHaveLength(0);
    expect((await list('?type=test.thing&reason=non-retryable')).items).toHaveLength(3);
    expect((await list('?reason=retries-exhausted')).items).toHaveLength(0);
    expect((await list('?type=order.created')).items).toHaveLength(0);
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    const inAnHour = new Date(Date.now() + 3600_000).toISOString();
    expect((await list(`?from=${hourAgo}&to=${inAnHour}`)).items).toHaveLength(3);
    expect((await list(`?from=${inAnHour}`)).items).toHaveLength(0);
    expect((await list(`?to=${hourAgo}`)).items).toHaveLength(0);

    const first = await list('?limit=2');
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toBe(first.items[1]?.id);
    const second = await list(`?limit=2&cursor=${first.nextCursor}`);
    expect(second.items.map((i) => i.eventId)).toEqual([eventIds[0]]);
    expect(second.nextCursor).toBeUndefined();
  });

  it('finds the dead letters of one event, or of one aggregate, for a list or a bulk action', async () => {
    expect((await list(`?eventId=${eventIds[1]}`)).items.map((i) => i.eventId)).toEqual([eventIds[1]]);
    expect((await list('?aggregateId=three')).items.map((i) => i.eventId)).toEqual([eventIds[2]]);
    expect((await list(`?aggregateId=three&eventId=${eventIds[1]}`)).items).toEqual([]);
    expect((await list('?aggregateId=fine')).items).toEqual([]);
    const dryRun = await admin('POST', '/admin/dlq/replay', { filter: { aggregateId: 'two' }, dryRun: true });
    expect(dryRun.statusCode).toBe(200);
    expect(dryRun.json()).toMatchObject({ dryRun: true, matched: 1, byGroup: { [WORKER]: 1 } });

    const empty = await admin('GET', '/admin/dlq?eventId=');
    expect(empty.statusCode).toBe(400);
    expect(empty.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(empty.json().errors.map((e: { field: string }) => e.field)).toEqual(['query.eventId']);
    const tooLong = await admin('POST', '/admin/dlq/replay', {
      filter: { aggregateId: 'x'.repeat(201) },
      dryRun: true,
    });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json().errors.map((e: { field: string }) => e.field)).toEqual(['filter.aggregateId']);
  });

  it('fetches one entry with every failed attempt', async () => {
    const [newest] = (await list()).items;
    const res = await admin('GET', `/admin/dlq/${newest?.id}`);
    expect(res.statusCode).toBe(200);
    const entry = res.json();
    expect(entry).toMatchObject({
      id: newest?.id,
      group: WORKER,
      stream: 'things',
      entryId: expect.stringMatching(/^\d+-\d+$/),
      eventId: eventIds[2],
      reason: 'non-retryable',
      attempts: 1,
      lastError: { name: 'NonRetryableError', message: 'thing is broken' },
      event: { id: eventIds[2], type: 'test.thing', aggregateId: 'three' },
    });
    expect(entry.failures).toEqual([
      expect.objectContaining({ attempt: 1, message: 'thing is broken', at: expect.any(String) }),
    ]);
    expect(JSON.parse(entry.event.data)).toEqual({ name: 'three', fail: true });
  });

  it('decodes the entry’s event as its consumers saw it, next to the raw fields', async () => {
    const [newest] = (await list()).items;
    const entry = (await admin('GET', `/admin/dlq/${newest?.id}`)).json();
    expect(entry.event).toMatchObject({ schemaVersion: '1', data: '{"name":"three","fail":true}' });
    expect(entry.envelope).toEqual({
      id: eventIds[2],
      type: 'test.thing',
      schemaVersion: 1,
      aggregateId: 'three',
      occurredAt: entry.event.occurredAt,
      data: { name: 'three', fail: true },
      metadata: {},
    });
    expect(entry.envelopeError).toBeUndefined();
  });

  it('reports groups with consumers, pending, lag, retrying and dead-lettered counts', async () => {
    const res = await admin('GET', '/admin/groups');
    expect(res.statusCode).toBe(200);
    const things = res.json().streams.find((s: { stream: string }) => s.stream === 'things');
    expect(things.length).toBe(4);
    const byName = Object.fromEntries(things.groups.map((g: { group: string }) => [g.group, g]));
    expect(byName[WORKER]).toMatchObject({ deadLettered: 3, pending: 0, lag: 0, retrying: 0 });
    expect(byName[AUDITOR]).toMatchObject({ deadLettered: 0, pending: 0, lag: 0, retrying: 0 });
    expect(byName[WORKER].consumers).toEqual([{ name: fleet.consumerName, pending: 0, idleMs: expect.any(Number) }]);

    const retries = await admin('GET', '/admin/retries');
    expect(retries.statusCode).toBe(200);
    expect(retries.json().groups.map((g: { group: string }) => g.group)).toEqual([AUDITOR, WORKER]);
  });

  it('bulk replay dry run reports counts and changes nothing', async () => {
    const auditBefore = await fleet.redis.xlen(fleet.keys.audit).catch(() => 0);
    const res = await admin('POST', '/admin/dlq/replay', { filter: { group: WORKER }, dryRun: true });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      dryRun: true,
      matched: 3,
      replayed: 0,
      byGroup: { [WORKER]: 3 },
      byReason: { 'non-retryable': 3 },
      invalidToday: [],
      replayedIds: [],
    });
    expect(await fleet.deadLetters.length()).toBe(3);
    expect(await fleet.redis.xlen(fleet.keys.audit)).toBe(auditBefore);
    expect(eventIds.map((id) => count(WORKER, id))).toEqual([1, 1, 1, 1]);
  });

  it('replays one entry to the group that failed it, and only that group', async () => {
    failing = false;
    const target = (await list()).items.find((i) => i.eventId === eventIds[0]);
    const res = await admin('POST', `/admin/dlq/${target?.id}/replay`, undefined, { 'x-actor': 'alice' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: target?.id, group: WORKER, eventId: eventIds[0] });
    await waitFor(() => count(WORKER, eventIds[0] as string) === 2, { message: 'worker handled the replay' });
    expect(count(AUDITOR, eventIds[0] as string)).toBe(1);
    expect((await list()).items.map((i) => i.eventId)).not.toContain(eventIds[0]);

    const again = await admin('POST', `/admin/dlq/${target?.id}/replay`);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('DLQ_ENTRY_REPLAYED');
  });

  it('discards an entry, and refuses to touch it again', async () => {
    const target = (await list()).items.find((i) => i.eventId === eventIds[1]);
    const res = await admin('DELETE', `/admin/dlq/${target?.id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ discarded: true, entry: { id: target?.id, eventId: eventIds[1] } });
    expect((await admin('GET', `/admin/dlq/${target?.id}`)).statusCode).toBe(404);
    const again = await admin('DELETE', `/admin/dlq/${target?.id}`);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('DLQ_ENTRY_DISCARDED');
    const replay = await admin('POST', `/admin/dlq/${target?.id}/replay`);
    expect(replay.statusCode).toBe(409);
    expect(replay.json().code).toBe('DLQ_ENTRY_DISCARDED');
  });

  it('bulk replays by ids and reports what was missing', async () => {
    const [remaining] = (await list()).items;
    expect(remaining?.eventId).toBe(eventIds[2]);
    const res = await admin('POST', '/admin/dlq/replay', { ids: [remaining?.id, '1-0'] }, { 'x-actor': 'bob' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      dryRun: false,
      matched: 1,
      replayed: 1,
      byGroup: { [WORKER]: 1 },
      missing: ['1-0'],
      replayedIds: [remaining?.id],
    });
    await waitFor(() => count(WORKER, eventIds[2] as string) === 2, { message: 'worker handled the bulk replay' });
    expect(count(AUDITOR, eventIds[2] as string)).toBe(1);
    expect(await fleet.deadLetters.length()).toBe(0);
    const groups = (await admin('GET', '/admin/groups')).json();
    const worker = groups.streams[0].groups.find((g: { group: string }) => g.group === WORKER);
    expect(worker.deadLettered).toBe(0);
  });

  it('audits every replay and discard with who and which ids', async () => {
    const res = await admin('GET', '/admin/audit');
    expect(res.statusCode).toBe(200);
    const items = res.json().items as { action: string; actor: string; eventId: string; batchId?: string }[];
    expect(items.map((i) => [i.action, i.actor, i.eventId])).toEqual([
      ['replay', 'bob', eventIds[2]],
      ['discard', 'admin', eventIds[1]],
      ['replay', 'alice', eventIds[0]],
    ]);
    expect(items[0]?.batchId).toEqual(expect.any(String));
    const page = await admin('GET', '/admin/audit?limit=2');
    const next = page.json().nextCursor;
    expect(next).toEqual(expect.any(String));
    const rest = await admin('GET', `/admin/audit?limit=2&cursor=${next}`);
    expect(rest.json().items.map((i: { actor: string }) => i.actor)).toEqual(['alice']);
  });
});

/**
 * The numbers operators read while things are still going wrong: a retry job waiting in
 * BullMQ, a group that has not read the stream yet, and a dead letter whose event fails
 * today's schema (so a bulk replay dry run must flag it).
 */
describe('group status and dry run while events are failing', () => {
  const prefix = uniquePrefix('api-dlq-stats');
  const url = testRedisUrl();
  const SLOW = 'slow-worker';
  const LATE = 'late-group';
  let running: FleetApi | undefined;
  let fleet: Fleet;
  let app: ApiApp;
  let invalidEventId = '';
  const attempts = new Map<string, number>();

  const admin = async (method: 'GET' | 'POST', path: string, payload?: Record<string, unknown>) => {
    const res = await app.inject({ method, url: path, headers: adminHeaders, ...(payload ? { payload } : {}) });
    expect(res.statusCode, `${method} ${path}`).toBe(200);
    return res.json();
  };

  beforeAll(async () => {
    running = await startFleetApi(url, prefix, {
      groups: [
        {
          group: SLOW,
          stream: 'things',
          handler: (event) => {
            attempts.set(event.id, (attempts.get(event.id) ?? 0) + 1);
            // A retryable failure; the next attempt is a minute away, so the job stays delayed.
            throw new Error('downstream is away');
          },
        },
      ],
      retry: { maxAttempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 },
      consumer: { blockMs: 50, visibilityTimeoutMs: 5000 },
    });
    ({ fleet, app } = running);

    const ok = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'test.thing', data: { name: 'a' } },
    });
    expect(ok.statusCode).toBe(202);
    // An event the API would refuse, written past it (as an old producer might have): the
    // engine dead-letters it as invalid-event without calling the handler.
    const unchecked = new StreamProducer({ redis: fleet.redis, keys: fleet.keys });
    const invalid = createEvent({ type: 'test.thing', schemaVersion: 1, data: { name: 42 } });
    invalidEventId = invalid.id;
    await unchecked.publish('things', invalid);
    await waitFor(async () => (await fleet.deadLetters.length()) === 1, { message: 'the invalid event dead-lettered' });
    await waitFor(async () => (await fleet.retryQueues.counts(SLOW)).delayed === 1, { message: 'a delayed retry job' });
    // A group created after the events were written has read none of them.
    await fleet.redis.xgroup('CREATE', fleet.keys.stream('things'), LATE, '0');
  });

  afterAll(async () => {
    await running?.close();
  });

  it('reports retrying, lag and dead-lettered per group, and consumers with idle times', async () => {
    const { streams } = await admin('GET', '/admin/groups');
    const things = streams.find((s: { stream: string }) => s.stream === 'things');
    expect(things.length).toBe(2);
    const byName = Object.fromEntries(things.groups.map((g: { group: string }) => [g.group, g]));
    expect(byName[SLOW]).toMatchObject({ pending: 0, lag: 0, retrying: 1, deadLettered: 1 });
    expect(byName[SLOW].consumers).toEqual([{ name: fleet.consumerName, pending: 0, idleMs: expect.any(Number) }]);
    expect(byName[SLOW].consumers[0].idleMs).toBeGreaterThanOrEqual(0);
    expect(byName[LATE]).toMatchObject({ consumers: [], pending: 0, lag: 2, retrying: 0, deadLettered: 0 });

    const { groups } = await admin('GET', '/admin/retries');
    expect(groups.find((g: { group: string }) => g.group === SLOW)).toMatchObject({ delayed: 1, waiting: 0 });
    expect(attempts.size).toBe(1);
  });

  it('dry run flags the entry that fails today’s schema, and changes nothing', async () => {
    const [entry] = (await admin('GET', '/admin/dlq')).items;
    expect(entry).toMatchObject({ eventId: invalidEventId, group: SLOW, reason: 'invalid-event' });
    const result = await admin('POST', '/admin/dlq/replay', { filter: {}, dryRun: true });
    expect(result).toMatchObject({
      dryRun: true,
      matched: 1,
      replayed: 0,
      byGroup: { [SLOW]: 1 },
      byReason: { 'invalid-event': 1 },
      invalidToday: [{ id: entry.id, error: expect.stringContaining('name') }],
      replayedIds: [],
    });
    expect(await fleet.deadLetters.length()).toBe(1);
    expect((await admin('GET', '/admin/audit')).items).toEqual([]);

    const detail = await admin('GET', `/admin/dlq/${entry.id}`);
    expect(detail.envelope).toBeUndefined();
    expect(detail.envelopeError).toEqual({
      message: expect.stringContaining('data.name'),
      errors: [{ field: 'data.name', message: expect.any(String) }],
    });
    expect(JSON.parse(detail.event.data)).toEqual({ name: 42 });
    expect(await fleet.retryQueues.counts(SLOW)).toMatchObject({ delayed: 1, waiting: 0 });
  });

  it('a real replay leaves the entry failing today’s schema where it is: bulk lists it, single answers 422', async () => {
    const [entry] = (await admin('GET', '/admin/dlq')).items;
    const bulk = await admin('POST', '/admin/dlq/replay', { ids: [entry.id] });
    expect(bulk).toMatchObject({
      dryRun: false,
      matched: 1,
      matchedIds: [entry.id],
      replayed: 0,
      replayedIds: [],
      invalidToday: [{ id: entry.id, error: expect.stringContaining('name') }],
    });

    const one = await app.inject({ method: 'POST', url: `/admin/dlq/${entry.id}/replay`, headers: adminHeaders });
    expect(one.statusCode).toBe(422);
    expect(one.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(one.json()).toMatchObject({
      code: 'DLQ_EVENT_INVALID',
      detail: expect.stringContaining('invalid-event'),
      details: { id: entry.id, envelopeError: { errors: [{ field: 'data.name', message: expect.any(String) }] } },
    });

    // Still there, the same entry, and nothing was sent to the group or audited.
    expect((await admin('GET', '/admin/dlq')).items).toEqual([entry]);
    expect(await fleet.retryQueues.counts(SLOW)).toMatchObject({ delayed: 1, waiting: 0, active: 0 });
    expect((await admin('GET', '/admin/audit')).items).toEqual([]);
  });
});

/**
 * A group that never gets better: its dead letter is replayed twice through the API, and
 * each new entry must still show the first failure time and every attempt of every round.
 */
describe('failure history across replays through the engine', () => {
  const prefix = uniquePrefix('api-dlq-history');
  const url = testRedisUrl();
  const BROKEN = 'broken-worker';
  let running: FleetApi | undefined;
  let app: ApiApp;
  let calls = 0;

  const admin = async (method: 'GET' | 'POST', path: string, payload?: Record<string, unknown>) => {
    const res = await app.inject({ method, url: path, headers: adminHeaders, ...(payload ? { payload } : {}) });
    expect(res.statusCode, `${method} ${path}`).toBe(200);
    return res.json();
  };
  const deadLetterOfRound = (replayCount: number) =>
    waitFor(
      async () =>
        ((await admin('GET', '/admin/dlq')).items as { id: string; replayCount: number }[]).find(
          (i) => i.replayCount === replayCount,
        ),
      { message: `the dead letter of round ${replayCount}` },
    );

  beforeAll(async () => {
    running = await startFleetApi(url, prefix, {
      groups: [
        {
          group: BROKEN,
          stream: 'things',
          handler: () => {
            calls++;
            throw new Error(`still broken #${calls}`);
          },
        },
      ],
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20, jitter: 0 },
      consumer: { blockMs: 50, visibilityTimeoutMs: 5000 },
    });
    ({ app } = running);
  });

  afterAll(async () => {
    await running?.close();
  });

  it('a replay failing again keeps firstFailedAt and the earlier attempts, each failure naming its round', async () => {
    const posted = await app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'test.thing', data: { name: 'x' } },
    });
    expect(posted.statusCode).toBe(202);
    const first = await admin('GET', `/admin/dlq/${(await deadLetterOfRound(0)).id}`);
    expect(first.failures).toEqual([
      { attempt: 1, at: expect.any(String), name: 'Error', message: 'still broken #1', replay: 0 },
      { attempt: 2, at: expect.any(String), name: 'Error', message: 'still broken #2', replay: 0 },
    ]);

    await admin('POST', `/admin/dlq/${first.id}/replay`);
    const second = await admin('GET', `/admin/dlq/${(await deadLetterOfRound(1)).id}`);
    expect(second).toMatchObject({ attempts: 2, replayCount: 1, firstFailedAt: first.firstFailedAt });
    expect(
      second.failures.map((f: { replay: number; attempt: number; message: string }) => [
        f.replay,
        f.attempt,
        f.message,
      ]),
    ).toEqual([
      [0, 1, 'still broken #1'],
      [0, 2, 'still broken #2'],
      [1, 1, 'still broken #3'],
      [1, 2, 'still broken #4'],
    ]);

    await admin('POST', '/admin/dlq/replay', { ids: [second.id] });
    const third = await deadLetterOfRound(2);
    expect(third).toMatchObject({ attempts: 2, firstFailedAt: first.firstFailedAt });
    const full = await admin('GET', `/admin/dlq/${third.id}`);
    expect(full.failures.map((f: { replay: number; attempt: number }) => [f.replay, f.attempt])).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
  });
});

/**
 * Entries written at ids the test picks, two of them in one millisecond, to pin how the
 * admin routes read an id, a cursor with `to`, and a bulk replay naming one id twice.
 */
describe('dead-letter ids, cursors and repeats at fixed ids', () => {
  let h: Harness;
  const IDS = ['1700000000000-0', '1700000000000-1', '1700000001000-0', '1700000002000-0', '1700000003000-0'];
  const admin = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) =>
    h.app.inject({ method, url, headers: adminHeaders, ...(payload === undefined ? {} : { payload }) });
  const listIds = async (query: string) => {
    const res = await admin('GET', `/admin/dlq${query}`);
    expect(res.statusCode).toBe(200);
    return (res.json().items as { id: string }[]).map((i) => i.id);
  };

  beforeAll(async () => {
    h = await createHarness();
    for (const id of IDS) {
      const event = JSON.stringify({ id: `event-${id}`, type: 'test.thing', schemaVersion: '1', data: '{"name":"a"}' });
      await h.redis.xadd(
        h.keys.deadLetter,
        id,
        'group',
        'g',
        'type',
        'test.thing',
        'reason',
        'non-retryable',
        'event',
        event,
      );
    }
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['GET', '/admin/dlq/1700000000000'],
    ['DELETE', '/admin/dlq/1700000000000'],
    ['POST', '/admin/dlq/1700000000000/replay'],
  ] as const)('%s %s (no sequence part) is a 400 naming params.id, and touches nothing', async (method, url) => {
    const res = await admin(method, url);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().errors.map((e: { field: string }) => e.field)).toContain('params.id');
    expect(await h.redis.xlen(h.keys.deadLetter)).toBe(IDS.length);
  });

  it('refuses a bare millisecond as a bulk replay id or a cursor', async () => {
    const bulk = await admin('POST', '/admin/dlq/replay', { ids: ['1700000000000'], dryRun: true });
    expect(bulk.statusCode).toBe(400);
    expect(bulk.json().errors.map((e: { field: string }) => e.field)).toContain('ids.0');
    const list = await admin('GET', '/admin/dlq?cursor=1700000003000');
    expect(list.statusCode).toBe(400);
    expect(list.json().errors.map((e: { field: string }) => e.field)).toContain('query.cursor');
  });

  it('gets the entry with exactly the id asked for', async () => {
    const res = await admin('GET', '/admin/dlq/1700000000000-1');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: '1700000000000-1', eventId: '', group: 'g' });
    expect((await admin('GET', '/admin/dlq/1700000000000-2')).statusCode).toBe(404);
  });

  it('keeps the `to` filter when a cursor is given', async () => {
    const to = new Date(1700000001500).toISOString();
    expect(await listIds(`?to=${to}&cursor=1700000003000-0`)).toEqual([
      '1700000001000-0',
      '1700000000000-1',
      '1700000000000-0',
    ]);
    expect(await listIds(`?to=${to}&cursor=1700000001000-0`)).toEqual(['1700000000000-1', '1700000000000-0']);
    const page = await admin('GET', `/admin/dlq?to=${to}&limit=1`);
    expect(page.json().items.map((i: { id: string }) => i.id)).toEqual(['1700000001000-0']);
    expect(await listIds(`?to=${to}&cursor=${page.json().nextCursor}`)).toEqual(['1700000000000-1', '1700000000000-0']);
  });

  it('bulk replay counts a repeated id once and gives it one limit slot', async () => {
    const [x, y] = IDS as [string, string];
    const res = await admin('POST', '/admin/dlq/replay', { ids: [x, x, y], limit: 2, dryRun: true });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ dryRun: true, matched: 2, byGroup: { g: 2 }, missing: [] });
    expect(res.json().invalidToday.map((i: { id: string }) => i.id)).toEqual([x, y]);
  });

  it('bulk replay can match more than limit, as documented: entries invalid today take no slot', async () => {
    const [x, y] = IDS as [string, string];
    const res = await admin('POST', '/admin/dlq/replay', { ids: [x, y], limit: 1, dryRun: true });
    expect(res.json()).toMatchObject({ matched: 2, more: false, matchedIds: [x, y] });
    expect(res.json().invalidToday).toHaveLength(2);
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const answer = doc.paths['/admin/dlq/replay'].post.responses['200'].content['application/json'].schema;
    expect(answer.properties.matched.description).not.toMatch(/at most `limit`/);
    expect(answer.properties.matched.description).toMatch(/invalidToday/);
  });
});

describe('POST /admin/dlq/discard', () => {
  let h: Harness;
  const admin = (payload: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({
      method: 'POST',
      url: '/admin/dlq/discard',
      headers: { ...adminHeaders, ...headers },
      payload: payload as Record<string, unknown>,
    });
  let entries = 0;
  // Each from an entry of its own: invalid-event dead letters are keyed by their stream entry.
  const deadLetter = (group: string, reason: 'invalid-event' | 'non-retryable') =>
    h.deps.deadLetters.write(
      deadLetterInput(group, reason, { type: 'test.thing', data: { name: group } }, { entryId: `${++entries}-0` }),
    );

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('discards what the filter picks, audited under one batch; a dry run first changes nothing', async () => {
    const doomed = [await deadLetter('old-type', 'invalid-event'), await deadLetter('old-type', 'invalid-event')];
    const kept = await deadLetter('payment', 'non-retryable');

    const dry = await admin({ filter: { reason: 'invalid-event' }, dryRun: true });
    expect(dry.statusCode).toBe(200);
    expect(dry.json()).toMatchObject({
      dryRun: true,
      matched: 2,
      discarded: 0,
      byGroup: { 'old-type': 2 },
      byReason: { 'invalid-event': 2 },
      discardedIds: [],
    });
    expect(await h.redis.xlen(h.keys.deadLetter)).toBe(3);
    expect(await h.redis.exists(h.keys.audit)).toBe(0);

    const res = await admin({ filter: { reason: 'invalid-event' } }, { 'x-actor': 'carol' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ dryRun: false, matched: 2, discarded: 2, missing: [] });
    expect([...body.discardedIds].sort()).toEqual(doomed.map((d) => d.id).sort());
    expect(await h.deps.deadLetters.get(kept.id)).toBeDefined();
    expect(await h.deps.deadLetters.countsByGroup()).toEqual({ payment: 1 });

    const audit = await new AuditLog(h.redis, h.keys).list();
    expect(audit.items.map((r) => [r.action, r.actor, r.batchId])).toEqual([
      ['discard', 'carol', body.batchId],
      ['discard', 'carol', body.batchId],
    ]);
  });

  it('ids with a filter: the filter’s time range applies as it does alone, and left-out ids are in notMatching', async () => {
    const today = await deadLetter('ranged', 'non-retryable');
    const past = { to: '2020-01-01T00:00:00Z' };
    const alone = await admin({ filter: { group: 'ranged', ...past }, dryRun: true });
    expect(alone.json()).toMatchObject({ matched: 0, matchedIds: [] });
    const dry = await admin({ ids: [today.id, '1-0'], filter: past, dryRun: true });
    expect(dry.statusCode).toBe(200);
    expect(dry.json()).toMatchObject({ matched: 0, matchedIds: [], missing: ['1-0'], notMatching: [today.id] });

    const real = await admin({ ids: [today.id], filter: past });
    expect(real.json()).toMatchObject({ dryRun: false, matched: 0, discarded: 0, notMatching: [today.id] });
    const replay = await h.app.inject({
      method: 'POST',
      url: '/admin/dlq/replay',
      headers: adminHeaders,
      payload: { ids: [today.id], filter: { from: new Date(Date.now() + 3600_000).toISOString() } },
    });
    expect(replay.json()).toMatchObject({ matched: 0, replayed: 0, notMatching: [today.id] });
    expect(await h.deps.deadLetters.get(today.id)).toBeDefined();

    const inRange = await admin({
      ids: [today.id],
      filter: { to: new Date(Date.now() + 3600_000).toISOString() },
      dryRun: true,
    });
    expect(inRange.json()).toMatchObject({ matched: 1, matchedIds: [today.id], notMatching: [] });
  });

  it('a dry run shows its scope: the ids it would act on, and whether more matched than limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await deadLetter('scoped', 'non-retryable')).id);
    const newest = [...ids].reverse();
    const capped = await admin({ filter: { group: 'scoped' }, limit: 2, dryRun: true });
    expect(capped.json()).toMatchObject({ dryRun: true, matched: 2, more: true, matchedIds: newest.slice(0, 2) });
    const all = await admin({ filter: { group: 'scoped' }, limit: 3, dryRun: true });
    expect(all.json()).toMatchObject({ matched: 3, more: false, matchedIds: newest });
    const byIds = await admin({ ids, limit: 1, dryRun: true });
    expect(byIds.json()).toMatchObject({ matched: 1, more: true, matchedIds: [ids[0]] });
    expect(await h.deps.deadLetters.list({ group: 'scoped' })).toMatchObject({ items: { length: 3 } });

    const real = await admin({ filter: { group: 'scoped' }, limit: 2 });
    expect(real.json()).toMatchObject({ matched: 2, more: true, discardedIds: newest.slice(0, 2) });
  });

  it('refuses a body without ids or a filter, naming filter, and discards nothing', async () => {
    await deadLetter('g', 'non-retryable');
    const before = await h.redis.xlen(h.keys.deadLetter);
    const res = await admin({ dryRun: false });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().errors.map((e: { field: string }) => e.field)).toContain('filter');
    expect(await h.redis.xlen(h.keys.deadLetter)).toBe(before);
  });
});

describe('pausing a group through the admin API', () => {
  const prefix = uniquePrefix('api-pause');
  const url = testRedisUrl();
  const seen: Record<string, string[]> = { [WORKER]: [], [AUDITOR]: [] };
  const log = capturingLogger();
  let running: FleetApi | undefined;
  let app: ApiApp;
  const admin = (method: 'GET' | 'POST', path: string, headers = {}) =>
    app.inject({ method, url: path, headers: { ...adminHeaders, ...headers } });
  const groupsNow = async () => {
    const { streams } = (await admin('GET', '/admin/groups')).json();
    const things = streams.find((s: { stream: string }) => s.stream === 'things');
    return Object.fromEntries(things.groups.map((g: { group: string }) => [g.group, g]));
  };

  beforeAll(async () => {
    running = await startFleetApi(url, prefix, {
      groups: [WORKER, AUDITOR].map((group) => ({
        group,
        stream: 'things',
        handler: (event: EventEnvelope) => void seen[group]?.push(event.id),
      })),
      consumer: { blockMs: 50, visibilityTimeoutMs: 5000, pauseCheckMs: 20 },
      logger: log.logger,
    });
    ({ app } = running);
  });

  afterAll(async () => {
    await running?.close();
  });

  it('pauses and resumes a group in every worker: /admin/groups shows it, its events wait in the stream', async () => {
    const pause = await admin('POST', `/admin/groups/${AUDITOR}/pause`, { 'x-actor': 'alice' });
    expect(pause.statusCode).toBe(200);
    expect(pause.json()).toEqual({ group: AUDITOR, paused: true, changed: true });
    expect((await admin('POST', `/admin/groups/${AUDITOR}/pause`)).json()).toMatchObject({ changed: false });
    expect(await groupsNow()).toMatchObject({ [AUDITOR]: { paused: true }, [WORKER]: { paused: false } });
    // The answer does not wait for the workers: each notices within its pauseCheckMs.
    await waitFor(() => log.withMessage('group paused: reading nothing new', AUDITOR).length === 1, {
      message: 'the auditor stopped reading',
    });

    // The worker group goes on; the paused auditor leaves the events in the stream (its lag).
    const posted: string[] = [];
    for (const name of ['a', 'b']) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/events',
        payload: { type: 'test.thing', aggregateId: name, data: { name } },
      });
      posted.push(res.json().eventId);
    }
    await waitFor(() => seen[WORKER]?.length === 2, { message: 'the worker group handled both' });
    await waitFor(async () => (await groupsNow())[AUDITOR].lag === 2, { message: 'both waiting for the auditor' });
    expect(seen[AUDITOR]).toEqual([]);

    const resume = await admin('POST', `/admin/groups/${AUDITOR}/resume`);
    expect(resume.json()).toEqual({ group: AUDITOR, paused: false, changed: true });
    await waitFor(() => seen[AUDITOR]?.length === 2, { message: 'the auditor handled both once resumed' });
    expect(seen[AUDITOR]).toEqual(posted);
    expect((await groupsNow())[AUDITOR]).toMatchObject({ paused: false, lag: 0 });
  });

  it('refuses an unknown group with a problem naming the field', async () => {
    const res = await admin('POST', '/admin/groups/nobody/pause');
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().errors).toEqual([{ field: 'params.group', message: 'unknown consumer group' }]);
  });
});

/** What an operator does to dead letters shows in the API's log, and a removed id stays explained. */
describe('dead-letter actions: logged, and a removed entry remembered', () => {
  let h: Harness;
  const log = capturingLogger();
  const admin = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, actor?: string) =>
    h.app.inject({
      method,
      url,
      headers: { ...adminHeaders, ...(actor ? { 'x-actor': actor } : {}) },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const deadLetter = async () =>
    (
      await h.deps.deadLetters.write(
        deadLetterInput('logged', 'non-retryable', { type: 'test.thing', data: { name: 'x' } }),
      )
    ).id;

  beforeAll(async () => {
    h = await createHarness({ deps: { logger: log.logger } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('logs one line per replay and discard, single or bulk, with the actor, the ids and the batch', async () => {
    const [one, two, three, four] = [await deadLetter(), await deadLetter(), await deadLetter(), await deadLetter()];

    const replay = await admin('POST', `/admin/dlq/${one}/replay`, undefined, 'alice');
    expect(replay.statusCode).toBe(200);
    expect(log.withMessage('dead letter replayed')).toEqual([
      expect.objectContaining({ level: 30, actor: 'alice', id: one, group: 'logged', jobId: replay.json().jobId }),
    ]);

    expect((await admin('DELETE', `/admin/dlq/${two}`, undefined, 'bob')).statusCode).toBe(200);
    expect(log.withMessage('dead letter discarded')).toEqual([
      expect.objectContaining({ level: 30, actor: 'bob', id: two, group: 'logged' }),
    ]);

    // A dry run changes nothing, so it logs nothing.
    expect((await admin('POST', '/admin/dlq/replay', { ids: [three], dryRun: true })).statusCode).toBe(200);
    expect((await admin('POST', '/admin/dlq/discard', { ids: [four], dryRun: true })).statusCode).toBe(200);
    expect(log.withMessage('dead letters replayed')).toEqual([]);
    expect(log.withMessage('dead letters discarded')).toEqual([]);

    const bulkReplay = await admin('POST', '/admin/dlq/replay', { ids: [three, '1-0'] }, 'carol');
    expect(bulkReplay.json()).toMatchObject({ replayed: 1, missing: ['1-0'] });
    expect(log.withMessage('dead letters replayed')).toEqual([
      expect.objectContaining({
        level: 30,
        actor: 'carol',
        batchId: bulkReplay.json().batchId,
        count: 1,
        ids: [three],
        more: false,
      }),
    ]);

    const bulkDiscard = await admin('POST', '/admin/dlq/discard', { ids: [four] }, 'dave');
    expect(bulkDiscard.json()).toMatchObject({ discarded: 1 });
    expect(log.withMessage('dead letters discarded')).toEqual([
      expect.objectContaining({
        level: 30,
        actor: 'dave',
        batchId: bulkDiscard.json().batchId,
        count: 1,
        ids: [four],
        more: false,
      }),
    ]);
  });

  it('answers a GET of a replayed or discarded entry 404 saying who and when, as a second replay’s 409 does', async () => {
    const replayed = await deadLetter();
    const discarded = await deadLetter();
    expect((await admin('POST', `/admin/dlq/${replayed}/replay`, undefined, 'erin')).statusCode).toBe(200);
    expect((await admin('DELETE', `/admin/dlq/${discarded}`, undefined, 'frank')).statusCode).toBe(200);

    for (const [id, action, actor] of [
      [replayed, 'replay', 'erin'],
      [discarded, 'discard', 'frank'],
    ] as const) {
      const again = await admin('POST', `/admin/dlq/${id}/replay`);
      expect(again.statusCode).toBe(409);
      const got = await admin('GET', `/admin/dlq/${id}`);
      expect(got.statusCode).toBe(404);
      expect(got.headers['content-type']).toMatch(/^application\/problem\+json/);
      const verb = action === 'replay' ? 'replayed' : 'discarded';
      expect(got.json()).toMatchObject({
        code: 'NOT_FOUND',
        detail: expect.stringMatching(new RegExp(`^dead-letter entry ${id} was already ${verb} at .+ by ${actor}$`)),
        details: { id, action, actor, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      });
      expect(got.json().detail).toBe(again.json().detail);
      expect(got.json().details).toEqual(again.json().details);
    }

    const never = await admin('GET', '/admin/dlq/1-0');
    expect(never.statusCode).toBe(404);
    expect(never.json()).toMatchObject({
      code: 'NOT_FOUND',
      detail: 'no dead-letter entry 1-0',
      details: { id: '1-0' },
    });
  });

  it('refuses a replay sent a body field it does not take, and replays nothing', async () => {
    const id = await deadLetter();
    const res = await admin('POST', `/admin/dlq/${id}/replay`, { group: 'someone-else' });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ field: 'group', message: 'unknown field' }]);
    expect(await h.deps.deadLetters.get(id)).toBeDefined();
    expect(log.withMessage('dead letter replayed').map((l) => l.id)).not.toContain(id);
  });
});
