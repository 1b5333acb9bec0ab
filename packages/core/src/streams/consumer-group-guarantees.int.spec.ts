/**
 * Guarantees of the consumer-group loop that `consumer-group.int.spec.ts` does not pin down
 * on its own: bounded concurrency, per-aggregate order under adversarial timing, batched
 * acks, the visibility timeout as a lower bound, the max-deliveries boundary, "ack only
 * after the retry job is stored", per-group retry overrides, non-retryable on a retry,
 * replay with fresh attempts, and the full content of a dead-letter entry.
 */
import type { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConflictError, NonRetryableError } from '../errors/index';
import { encodeEvent } from '../events/codec';
import { createEvent } from '../events/envelope';
import { Fleet, type FleetOptions } from '../fleet/fleet';
import { waitFor } from '../testing/index';
import {
  group,
  n,
  nonEmpty,
  pendingCount,
  THING_STREAM as STREAM,
  ThingFleets,
  thing,
  thingCatalog,
} from '../testing/thing-fleet';
import type { GroupDefinition } from './handler';

const world = new ThingFleets({
  retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 1000, jitter: 0 },
  consumer: { blockMs: 100, visibilityTimeoutMs: 300, maxDeliveries: 3, claimIntervalMs: 50 },
});
const startFleet = (groups: GroupDefinition[], overrides: Partial<FleetOptions> = {}) => world.start(groups, overrides);
let redis: Redis;

/** Yields to the event loop `count` times: lets other handlers interleave without real time passing. */
const ticks = async (count: number) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** Creates the group (and stream) through a fleet that is closed again at once: no live consumer is left. */
async function createGroupOnly(name: string): Promise<string> {
  const probe = new Fleet({
    redisUrl: world.url,
    prefix: world.prefix,
    catalog: thingCatalog,
    groups: [group(name, () => undefined)],
  });
  await probe.start();
  await probe.close();
  return probe.keys.stream(STREAM);
}

async function retryJobsTotal(fleet: Fleet, groupName: string): Promise<number> {
  const c = await fleet.retryQueues.counts(groupName);
  return c.waiting + c.delayed + c.active + c.failed + c.completed;
}

world.useHooks();
beforeAll(() => {
  redis = world.redis;
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('streams loop', () => {
  it('never runs more handlers at once than the group concurrency, and does reach it', async () => {
    world.newTest();
    let running = 0;
    let maxRunning = 0;
    let handled = 0;
    const fleet = await startFleet([
      group(
        'a',
        async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await ticks(5);
          running--;
          handled++;
        },
        { concurrency: 4 },
      ),
    ]);
    // Every event its own aggregate: only the concurrency bound can hold them back.
    await fleet.producer.publishMany(Array.from({ length: 60 }, (_, i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(() => handled === 60, { message: 'all handled' });
    expect(maxRunning).toBe(4);
  });

  it('keeps one aggregate strictly in order (never two of its entries at once) even when later entries are faster', async () => {
    world.newTest();
    const aggregates = ['agg-a', 'agg-b', 'agg-c'];
    const perAggregate = 12;
    const runningFor = new Map<string, number>();
    const finished = new Map<string, number[]>();
    const overlaps: string[] = [];
    let running = 0;
    let maxRunning = 0;
    let handled = 0;
    const fleet = await startFleet([
      group(
        'a',
        async (e) => {
          const agg = e.aggregateId as string;
          const seq = Math.floor(n(e) / aggregates.length);
          if ((runningFor.get(agg) ?? 0) > 0) overlaps.push(`${agg}#${seq}`);
          runningFor.set(agg, (runningFor.get(agg) ?? 0) + 1);
          running++;
          maxRunning = Math.max(maxRunning, running);
          // Earlier entries take longer: without per-aggregate ordering, later ones would overtake them.
          await ticks(2 * (perAggregate - seq));
          finished.set(agg, [...(finished.get(agg) ?? []), seq]);
          runningFor.set(agg, (runningFor.get(agg) ?? 0) - 1);
          running--;
          handled++;
        },
        { concurrency: 8 },
      ),
    ]);
    const total = aggregates.length * perAggregate;
    await fleet.producer.publishMany(
      Array.from({ length: total }, (_, i) => ({
        stream: STREAM,
        event: thing(i, aggregates[i % aggregates.length]),
      })),
    );
    await waitFor(() => handled === total, { message: 'all handled' });
    expect(overlaps).toEqual([]);
    const inOrder = Array.from({ length: perAggregate }, (_, i) => i);
    for (const agg of aggregates) expect(finished.get(agg)).toEqual(inOrder);
    // Different aggregates did run side by side.
    expect(maxRunning).toBe(aggregates.length);
  });

  it('acknowledges in batches: far fewer XACK calls than entries, every entry acked once', async () => {
    world.newTest();
    let handled = 0;
    const fleet = await startFleet([group('a', () => void handled++)]);
    const xack = vi.spyOn(fleet.redis, 'xack');
    await fleet.producer.publishMany(Array.from({ length: 200 }, (_, i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(() => handled === 200, { message: 'all handled' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'all acked' });
    const acked = xack.mock.calls.flatMap((args) => (args as unknown[]).slice(2).map(String));
    expect(new Set(acked).size).toBe(200);
    expect(acked).toHaveLength(200);
    expect(xack.mock.calls.length).toBeLessThanOrEqual(20);
  });

  it('6b. does not take a dead consumer’s entry before the visibility timeout has passed', async () => {
    world.newTest();
    const key = await createGroupOnly('a');
    await redis.xadd(key, '*', ...encodeEvent(thing(1)));
    await redis.xreadgroup('GROUP', 'a', 'dead-consumer', 'STREAMS', key, '>');
    const readAt = Date.now();
    let handledAt = 0;
    await startFleet(
      [
        group('a', () => {
          handledAt = Date.now();
        }),
      ],
      {
        consumer: { blockMs: 100, visibilityTimeoutMs: 800, maxDeliveries: 3, claimIntervalMs: 50 },
      },
    );
    await waitFor(() => handledAt > 0, { message: 'claimed entry handled' });
    // The claim loop looks every 50 ms; only the 800 ms visibility timeout can explain a later claim.
    expect(handledAt - readAt).toBeGreaterThanOrEqual(750);
  });

  it('10b. an entry delivered exactly maxDeliveries times still runs; only the next delivery dead-letters', async () => {
    world.newTest();
    const key = await createGroupOnly('a');
    const id = (await redis.xadd(key, '*', ...encodeEvent(thing(1)))) as string;
    // Two consumers took it and died; the claim below is delivery 3 = maxDeliveries.
    await redis.xreadgroup('GROUP', 'a', 'dead-1', 'STREAMS', key, '>');
    await redis.xclaim(key, 'a', 'dead-2', 0, id);
    const deliveries: number[] = [];
    const fleet = await startFleet([group('a', (_e, ctx) => void deliveries.push(ctx.deliveryCount))]);
    await waitFor(() => deliveries.length === 1, { message: 'handled on its third delivery' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'acked' });
    expect(deliveries).toEqual([3]);
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  it('10c. claimed entries delivered too often are dead-lettered even among many of this consumer’s own pending entries', async () => {
    world.newTest();
    const key = await createGroupOnly('a');
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push((await redis.xadd(key, '*', ...encodeEvent(thing(i)))) as string);
    await redis.xreadgroup('GROUP', 'a', 'dead', 'COUNT', 100, 'STREAMS', key, '>');
    // Every other entry crashed its consumers 10 times and is idle; the ones between are this
    // consumer's own, pending and fresh (left pending by a failed store, or by an earlier run of
    // the same name): they lie in the claimed range without being claimed.
    const crashers = ids.filter((_, i) => i % 2 === 0);
    const own = ids.filter((_, i) => i % 2 === 1);
    await redis.xclaim(key, 'a', 'dead', 0, ...crashers, 'IDLE', 60_000, 'RETRYCOUNT', 10, 'JUSTID');
    await redis.xclaim(key, 'a', 'me', 0, ...own, 'IDLE', 0, 'RETRYCOUNT', 1, 'JUSTID');
    const ran: number[] = [];
    const fleet = await startFleet([group('a', (e) => void ran.push(n(e)))], {
      consumerName: 'me',
      consumer: { blockMs: 100, visibilityTimeoutMs: 5000, maxDeliveries: 3, claimIntervalMs: 50 },
    });
    await waitFor(async () => ran.length + (await fleet.deadLetters.length()) >= crashers.length, {
      message: 'every crasher claimed',
    });
    const { items } = await fleet.deadLetters.list({}, { limit: 100 });
    expect(ran).toEqual([]);
    expect(items.map((d) => d.entryId).sort()).toEqual([...crashers].sort());
    expect(new Set(items.map((d) => `${d.reason} ${d.attempts}`))).toEqual(new Set(['max-deliveries 10']));
  });

  it('removes an idle consumer with nothing pending but keeps an idle one that still has entries pending', async () => {
    world.newTest();
    const key = await createGroupOnly('a');
    const busyId = (await redis.xadd(key, '*', ...encodeEvent(thing(1)))) as string;
    await redis.xreadgroup('GROUP', 'a', 'ghost-busy', 'COUNT', 1, 'STREAMS', key, '>');
    const doneId = (await redis.xadd(key, '*', ...encodeEvent(thing(2)))) as string;
    await redis.xreadgroup('GROUP', 'a', 'ghost-idle', 'COUNT', 1, 'STREAMS', key, '>');
    await redis.xack(key, 'a', doneId);
    // A long visibility timeout: nobody claims ghost-busy's entry, so it stays pending with it.
    await startFleet([group('a', () => undefined)], {
      consumer: { blockMs: 100, visibilityTimeoutMs: 60_000, consumerIdleTimeoutMs: 200, claimIntervalMs: 50 },
    });
    const consumers = async () =>
      new Map(((await redis.xinfo('CONSUMERS', key, 'a')) as unknown[][]).map((c) => [String(c[1]), Number(c[3])]));
    await waitFor(async () => !(await consumers()).has('ghost-idle'), { message: 'ghost-idle removed' });
    // ghost-busy was created first, so it was just as idle in the sweep that removed ghost-idle.
    const left = await consumers();
    expect(left.get('ghost-busy')).toBe(1);
    const [pending] = (await redis.xpending(key, 'a', '-', '+', 10)) as [string, string][];
    expect(pending?.slice(0, 2)).toEqual([busyId, 'ghost-busy']);
  });
});

describe('retries', () => {
  it('acks a failed entry only once its retry job is stored: a failed store leaves it pending for re-delivery', async () => {
    world.newTest();
    const calls: { attempt: number; deliveryCount: number }[] = [];
    const fleet = await startFleet([
      group('a', (_e, ctx) => {
        calls.push({ attempt: ctx.attempt, deliveryCount: ctx.deliveryCount });
        if (ctx.attempt === 1) throw new Error('transient');
      }),
    ]);
    const schedule = vi.spyOn(fleet.retryQueues, 'schedule').mockRejectedValueOnce(new Error('could not store'));
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => calls.length === 3, { message: 'delivery, re-delivery, retry' });
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'retry job done' });
    // The re-delivery (delivery count 2) proves the entry stayed pending after the failed store.
    expect(calls).toEqual([
      { attempt: 1, deliveryCount: 1 },
      { attempt: 1, deliveryCount: 2 },
      { attempt: 2, deliveryCount: 1 },
    ]);
    expect(schedule).toHaveBeenCalledTimes(2);
    expect(await retryJobsTotal(fleet, 'a')).toBe(1);
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'acked' });
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  it('applies per-group overrides: env override > group definition > fleet default', async () => {
    world.newTest();
    const calls = { a: 0, b: 0, c: 0 };
    const failing = (name: keyof typeof calls) => () => {
      calls[name]++;
      throw new Error(`${name} fails`);
    };
    const fleet = await startFleet(
      [
        group('a', failing('a'), { retry: { maxAttempts: 5 } }),
        group('b', failing('b'), { retry: { maxAttempts: 4 } }),
        group('c', failing('c')),
      ],
      { retryOverrides: { a: { maxAttempts: 2 } } },
    );
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(async () => (await fleet.deadLetters.length()) === 3, { message: 'three dead letters' });
    for (const g of ['a', 'b', 'c']) {
      await waitFor(async () => (await fleet.retryQueues.counts(g)).completed === 1, { message: `${g} job done` });
    }
    expect(calls).toEqual({ a: 2, b: 4, c: 3 });
    const attempts = Object.fromEntries((await fleet.deadLetters.list()).items.map((i) => [i.group, i.attempts]));
    expect(attempts).toEqual({ a: 2, b: 4, c: 3 });
  });

  it('a non-retryable error on a retry attempt stops the retries at once', async () => {
    world.newTest();
    const attempts: number[] = [];
    const fleet = await startFleet(
      [
        group('a', (_e, ctx) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt === 1) throw new Error('transient');
          throw new NonRetryableError('permanent');
        }),
      ],
      { retry: { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 1000, jitter: 0 } },
    );
    await fleet.producer.publish(STREAM, thing(1));
    const [dead] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'job done' });
    expect(attempts).toEqual([1, 2]);
    expect(dead?.reason).toBe('non-retryable');
    expect(dead?.attempts).toBe(2);
    expect(dead?.failures.map((f) => [f.attempt, f.message])).toEqual([
      [1, 'transient'],
      [2, 'permanent'],
    ]);
  });
});

describe('dead letters from the engine', () => {
  it('9b. a replay gets fresh attempts in the failed group only, and comes back with replayCount 1', async () => {
    world.newTest();
    const a: number[] = [];
    const b: { attempt: number; replay: number }[] = [];
    const fleet = await startFleet([
      group('a', (e) => void a.push(n(e))),
      group('b', (_e, ctx) => {
        b.push({ attempt: ctx.attempt, replay: ctx.replayCount });
        throw new Error(`b fails (${ctx.replayCount}/${ctx.attempt})`);
      }),
    ]);
    await fleet.producer.publish(STREAM, thing(5));
    const [first] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    expect(first?.attempts).toBe(3);
    await fleet.deadLetters.replay(first?.id as string, { actor: 'ops' });
    expect(await fleet.deadLetters.get(first?.id as string)).toBeUndefined();
    const [second] = await waitFor(async () => {
      const items = (await fleet.deadLetters.list()).items;
      return items[0] && items[0].id !== first?.id ? items : undefined;
    });
    expect(b).toEqual([
      { attempt: 1, replay: 0 },
      { attempt: 2, replay: 0 },
      { attempt: 3, replay: 0 },
      { attempt: 1, replay: 1 },
      { attempt: 2, replay: 1 },
      { attempt: 3, replay: 1 },
    ]);
    expect(second).toMatchObject({ group: 'b', reason: 'retries-exhausted', attempts: 3, replayCount: 1 });
    expect(second?.failures.map((f) => [f.replay, f.attempt])).toEqual([
      [0, 1],
      [0, 2],
      [0, 3],
      [1, 1],
      [1, 2],
      [1, 3],
    ]);
    expect(await fleet.deadLetters.length()).toBe(1);
    // Group a saw the event once, and never had a retry job.
    expect(a).toEqual([5]);
    expect(await retryJobsTotal(fleet, 'a')).toBe(0);
    const again = fleet.deadLetters.replay(first?.id as string, { actor: 'ops' });
    await expect(again).rejects.toBeInstanceOf(ConflictError);
    await expect(again).rejects.toThrow(/already replayed .* by ops/);
  });

  it('a dead letter written before a crash is not written again when the job runs to its end', async () => {
    world.newTest();
    let calls = 0;
    const fleet = await startFleet([
      group('a', () => {
        calls++;
        throw new Error('always');
      }),
    ]);
    const event = thing(1);
    // What a process that died after writing the dead letter (and before completing its job) left behind.
    const earlier = await fleet.deadLetters.write({
      group: 'a',
      stream: STREAM,
      entryId: '1-0',
      fields: encodeEvent(event),
      reason: 'retries-exhausted',
      attempts: 3,
      replayCount: 0,
      lastError: { name: 'Error', message: 'always' },
      failures: [],
      firstFailedAt: new Date().toISOString(),
    });
    await fleet.producer.publish(STREAM, event);
    await waitFor(() => calls === 3, { message: 'three attempts' });
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'job completed' });
    const items = (await fleet.deadLetters.list()).items;
    expect(items.map((i) => i.id)).toEqual([earlier.id]);
    expect(await fleet.deadLetters.countsByGroup()).toEqual({ a: 1 });
    expect((await fleet.retryQueues.counts('a')).failed).toBe(0);
  });

  it('a job that wrote its dead letter and stalled, running again after a replay, does not write that round twice', async () => {
    world.newTest();
    let calls = 0;
    const fleet = await startFleet([
      group('a', () => {
        calls++;
        throw new Error('always');
      }),
    ]);
    const event = thing(1);
    const fields = encodeEvent(event);
    // Round 0's job wrote this dead letter on its last attempt, then its process died before
    // completing the job.
    const round0 = await fleet.deadLetters.write({
      group: 'a',
      stream: STREAM,
      entryId: '1-0',
      fields,
      reason: 'retries-exhausted',
      attempts: 3,
      replayCount: 0,
      lastError: { name: 'Error', message: 'always' },
      failures: [],
      firstFailedAt: new Date().toISOString(),
    });
    await fleet.deadLetters.replay(round0.id, { actor: 'ops' });
    const [round1] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items), {
      message: "the replay's own dead letter",
    });
    expect(round1).toMatchObject({ replayCount: 1, attempts: 3 });
    // Now round 0's stalled job runs its last attempt again.
    await fleet.retryQueues.schedule(
      {
        group: 'a',
        stream: STREAM,
        entryId: '1-0',
        fields,
        eventId: event.id,
        type: event.type,
        attemptOffset: 2,
        replayCount: 0,
        firstFailedAt: new Date().toISOString(),
        failures: [],
      },
      0,
    );
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 2, {
      message: 'both jobs completed',
    });
    expect(calls).toBe(4);
    expect((await fleet.deadLetters.list()).items.map((i) => i.id)).toEqual([round1?.id]);
    expect(await fleet.deadLetters.countsByGroup()).toEqual({ a: 1 });
  });

  it.each([
    ['retries-exhausted', 3, (attempt: number) => new TypeError(`broken on attempt ${attempt}`)],
    [
      'non-retryable',
      2,
      (attempt: number) => (attempt === 2 ? new NonRetryableError('gone for good') : new Error('flaky')),
    ],
  ] as const)(
    'a retry run whose dead-letter write fails writes that same %s dead letter next run, without calling the handler again',
    async (reason, lastAttempt, errorFor) => {
      world.newTest();
      let calls = 0;
      const fleet = await startFleet([
        group('a', (_e, ctx) => {
          calls++;
          throw errorFor(ctx.attempt);
        }),
      ]);
      // The first dead-letter write fails (say Redis answered an error once); later ones go through.
      const write = fleet.deadLetters.write.bind(fleet.deadLetters);
      let refused = 0;
      vi.spyOn(fleet.deadLetters, 'write').mockImplementation(async (...args) => {
        if (refused++ === 0) throw new Error('dead-letter write refused');
        return write(...args);
      });
      await fleet.producer.publish(STREAM, thing(1));
      const [item] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items), {
        message: 'the dead letter',
      });
      const entry = await fleet.deadLetters.get(item?.id as string);
      expect(refused).toBe(2);
      expect(calls).toBe(lastAttempt);
      expect(entry?.reason).toBe(reason);
      expect(entry?.attempts).toBe(lastAttempt);
      expect(entry?.failures.map((f) => f.attempt)).toEqual(Array.from({ length: lastAttempt }, (_, i) => i + 1));
      const last = errorFor(lastAttempt);
      expect(entry?.lastError).toMatchObject({ name: last.name, message: last.message });
      expect(entry?.lastError.stack).toContain(last.name);
      expect((await fleet.deadLetters.list()).items).toHaveLength(1);
      await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'job completed' });
      expect(calls).toBe(lastAttempt);
    },
  );

  it('a retry job whose runs died maxDeliveries times is dead-lettered unrun, retrying a failed write', async () => {
    world.newTest();
    let calls = 0;
    const fleet = await startFleet([
      group('a', () => {
        calls++;
      }),
    ]);
    const write = fleet.deadLetters.write.bind(fleet.deadLetters);
    let refused = 0;
    vi.spyOn(fleet.deadLetters, 'write').mockImplementation(async (...args) => {
      if (refused++ === 0) throw new Error('dead-letter write refused');
      return write(...args);
    });
    const event = thing(1);
    const jobId = await fleet.retryQueues.schedule(
      {
        group: 'a',
        stream: STREAM,
        entryId: '1-0',
        fields: encodeEvent(event),
        eventId: event.id,
        type: event.type,
        attemptOffset: 1,
        replayCount: 0,
        firstFailedAt: new Date().toISOString(),
        failures: [],
      },
      300,
    );
    // What three runs that each took their worker down leave on the job (BullMQ's stall count).
    await redis.hset(fleet.retryQueues.queue('a').toKey(jobId), 'stc', 3);
    const [item] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items), {
      message: 'the dead letter',
    });
    expect(item).toMatchObject({ group: 'a', reason: 'max-deliveries', attempts: 4 });
    expect(refused).toBe(2);
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'job completed' });
    expect(calls).toBe(0);
    expect(await fleet.deadLetters.length()).toBe(1);
  });

  it('a dead-letter entry holds the source, the whole event, every attempt and the last error with its stack', async () => {
    world.newTest();
    const fleet = await startFleet([
      group('a', (_e, ctx) => {
        throw new TypeError(`broken on attempt ${ctx.attempt}`);
      }),
    ]);
    const event = createEvent({
      type: 'thing.happened',
      data: { n: 42 },
      aggregateId: 'agg-42',
      aggregateVersion: 7,
      metadata: { correlationId: 'corr-1', causationId: 'cause-1' },
    });
    const entryId = await fleet.producer.publish(STREAM, event);
    const [listed] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    const entry = await fleet.deadLetters.get(listed?.id as string);
    expect(entry).toMatchObject({
      group: 'a',
      stream: STREAM,
      entryId,
      eventId: event.id,
      type: 'thing.happened',
      aggregateId: 'agg-42',
      reason: 'retries-exhausted',
      attempts: 3,
      replayCount: 0,
      lastError: { name: 'TypeError', message: 'broken on attempt 3' },
    });
    expect(entry?.event).toMatchObject({
      id: event.id,
      type: 'thing.happened',
      aggregateId: 'agg-42',
      aggregateVersion: '7',
      correlationId: 'corr-1',
      causationId: 'cause-1',
    });
    expect(JSON.parse(entry?.event.data ?? 'null')).toEqual({ n: 42 });
    expect(entry?.lastError.stack).toContain('broken on attempt 3');
    expect(entry?.lastError.stack?.length).toBeLessThanOrEqual(2000);
    expect(entry?.failures.map((f) => [f.attempt, f.name, f.message])).toEqual([
      [1, 'TypeError', 'broken on attempt 1'],
      [2, 'TypeError', 'broken on attempt 2'],
      [3, 'TypeError', 'broken on attempt 3'],
    ]);
    const times = (entry?.failures ?? []).map((f) => Date.parse(f.at));
    expect(times.every((t) => Number.isFinite(t))).toBe(true);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(Date.parse(entry?.firstFailedAt ?? '')).toBeLessThanOrEqual(times[0] as number);
    expect(Date.parse(entry?.deadLetteredAt ?? '')).toBeGreaterThanOrEqual(times[2] as number);
  });
});
