import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AuditLog } from '../audit/audit-log';
import { ConflictError, NonRetryableError } from '../errors/index';
import { EventCatalog } from '../events/catalog';
import { encodeEvent } from '../events/codec';
import type { Fleet, FleetOptions } from '../fleet/fleet';
import { RetryQueues } from '../retry/retry-queues';
import { capturingLogger, waitFor } from '../testing/index';
import { group, n, nonEmpty, pendingCount, THING_STREAM as STREAM, ThingFleets, thing } from '../testing/thing-fleet';
import type { EventHandler, GroupDefinition, HandlerContext } from './handler';
import { StreamTrimmer } from './stream-trimmer';

const world = new ThingFleets({
  retry: { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 1000, jitter: 0 },
  consumer: { blockMs: 100, visibilityTimeoutMs: 300, maxDeliveries: 3, claimIntervalMs: 50 },
});
const startFleet = (groups: GroupDefinition[], overrides: Partial<FleetOptions> = {}) => world.start(groups, overrides);
let redis: Redis;

world.useHooks();
beforeAll(() => {
  redis = world.redis;
});

describe('consumer group loop', () => {
  it('1. success: the handler runs once, the entry is acked, nothing is pending', async () => {
    world.newTest();
    const seen: string[] = [];
    const fleet = await startFleet([group('a', (e) => void seen.push(e.id))]);
    const event = thing(1);
    await fleet.producer.publish(STREAM, event);
    await waitFor(() => seen.length === 1);
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'ack' });
    expect(seen).toEqual([event.id]);
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  it('names its Redis connections after the key prefix, so CLIENT LIST tells deployments apart', async () => {
    world.newTest();
    const fleet = await startFleet([group('a', () => undefined)]);
    const names = String(await redis.call('CLIENT', 'LIST', 'TYPE', 'normal'))
      .split('\n')
      .map((line) => / name=(\S*) /.exec(line)?.[1]);
    const prefix = fleet.keys.prefix;
    expect(names).toContain(`${prefix}:fleet`);
    expect(names).toContain(`${prefix}:a:${fleet.consumerName}`);
  });

  it('a handler context kept past its entry still tells its entry id once the read is done', async () => {
    world.newTest();
    const contexts: HandlerContext[] = [];
    const fleet = await startFleet([group('a', (_e, ctx) => void contexts.push(ctx))]);
    const events = [thing(1), thing(2), thing(3)];
    const entryIds: string[] = [];
    for (const event of events) entryIds.push(await fleet.producer.publish(STREAM, event));
    await waitFor(() => contexts.length === 3);
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'ack' });
    // Every entry is done (acked), so the read's batch has let go of them; the contexts have not.
    expect(contexts.map((c) => c.entryId)).toEqual(entryIds);
  });

  it('2. transient failure then success: acked, no dead letter, one retry job ran', async () => {
    world.newTest();
    const attempts: number[] = [];
    let done = false;
    const fleet = await startFleet([
      group('a', (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error('flaky');
        done = true;
      }),
    ]);
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => done, { message: 'second attempt' });
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, {
      message: 'retry job completed',
    });
    expect(attempts).toEqual([1, 2]);
    expect(await pendingCount(fleet, 'a')).toBe(0);
    expect(await fleet.deadLetters.length()).toBe(0);
    const counts = await fleet.retryQueues.counts('a');
    expect(counts.completed + counts.delayed + counts.waiting + counts.active + counts.failed).toBe(1);
  });

  it('logs an expected failure in one short line per attempt (name and message, no stack), and the dead letter with its error', async () => {
    world.newTest();
    const { logger, withMessage: byMessage } = capturingLogger();
    const fleet = await startFleet(
      [
        group('a', () => {
          throw new Error('gateway said 503');
        }),
      ],
      { logger },
    );
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(async () => (await fleet.deadLetters.length()) === 1, { message: 'dead-lettered' });
    await waitFor(() => byMessage('event dead-lettered').length === 1, { message: 'the dead-letter line' });
    const failures = [
      ...byMessage('handler failed; retry scheduled'),
      ...byMessage('retry attempt failed; backing off'),
    ];
    expect(failures).toHaveLength(2);
    for (const line of [...failures, ...byMessage('event dead-lettered')]) {
      expect(line.error).toMatchObject({ name: 'Error', message: 'gateway said 503' });
      expect(JSON.stringify(line)).not.toContain('stack');
    }
    const [dead] = (await fleet.deadLetters.list()).items;
    expect(byMessage('event dead-lettered')[0]).toMatchObject({
      deadLetterId: dead?.id,
      entryId: dead?.entryId,
      eventId: dead?.eventId,
      eventType: 'thing.happened',
      reason: 'retries-exhausted',
      attempts: 3,
    });
  });

  it('logs a dead letter of a first delivery the same way, naming its dead-letter id', async () => {
    world.newTest();
    const { logger, withMessage: byMessage } = capturingLogger();
    const fleet = await startFleet(
      [
        group('a', () => {
          throw new NonRetryableError('card number malformed');
        }),
      ],
      { logger },
    );
    const event = thing(1);
    await fleet.producer.publish(STREAM, event);
    await waitFor(() => byMessage('event dead-lettered').length === 1, { message: 'the dead-letter line' });
    const [dead] = (await fleet.deadLetters.list()).items;
    expect(byMessage('event dead-lettered')[0]).toMatchObject({
      deadLetterId: dead?.id,
      entryId: dead?.entryId,
      eventId: event.id,
      eventType: 'thing.happened',
      reason: 'non-retryable',
      attempts: 1,
      error: { name: 'NonRetryableError', message: 'card number malformed' },
    });
  });

  it('a burst of failures (a whole batch at once) becomes one retry job each, and each succeeds on retry', async () => {
    world.newTest();
    const calls = new Map<number, number[]>();
    const fleet = await startFleet([
      group('a', (e, ctx) => {
        calls.set(n(e), [...(calls.get(n(e)) ?? []), ctx.attempt]);
        if (ctx.attempt === 1) throw new Error('dependency down');
      }),
    ]);
    const events = Array.from({ length: 250 }, (_, i) => thing(i));
    await fleet.producer.publishMany(events.map((event) => ({ stream: STREAM, event })));
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 250, {
      message: 'every retry job completed',
    });
    expect([...calls.keys()].sort((x, y) => x - y)).toEqual(events.map(n));
    for (const attempts of calls.values()) expect(attempts).toEqual([1, 2]);
    const counts = await fleet.retryQueues.counts('a');
    expect(counts.delayed + counts.waiting + counts.active + counts.failed).toBe(0);
    expect(await pendingCount(fleet, 'a')).toBe(0);
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  /**
   * A fleet whose group's handler always fails, with retry jobs due and allowed to wait for
   * company far longer than any test: only the loop (needing room, or closing) stores them.
   */
  async function startLingering(overrides: Partial<FleetOptions> = {}) {
    const calls = { count: 0 };
    const fleet = await startFleet(
      [
        group('a', () => {
          calls.count++;
          throw new Error('dependency down');
        }),
      ],
      {
        retry: { maxAttempts: 3, baseDelayMs: 600_000, maxDelayMs: 600_000, jitter: 0 },
        retryLingerMs: 600_000,
        ...overrides,
      },
    );
    return { fleet, calls };
  }

  it('failed entries waiting for their retry jobs to be stored never stall the read loop', async () => {
    world.newTest();
    // Room for 25 entries in flight (batch 10, concurrency 5).
    const { fleet, calls } = await startLingering({
      consumer: { batchSize: 10, concurrency: 5, blockMs: 100, visibilityTimeoutMs: 30_000, claimIntervalMs: 50 },
    });
    const events = Array.from({ length: 60 }, (_, i) => thing(i));
    await fleet.producer.publishMany(events.map((event) => ({ stream: STREAM, event })));
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0 && calls.count === 60, {
      message: 'every entry handled and acked',
    });
    expect((await fleet.retryQueues.counts('a')).delayed).toBe(60);
  });

  it('close() stores the retry jobs still waiting for company, and acks their entries', async () => {
    world.newTest();
    const { fleet, calls } = await startLingering();
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => calls.count === 1, { message: 'handler called' });
    world.running.length = 0;
    await fleet.close({ timeoutMs: 2000 });
    const [pending] = (await redis.xpending(fleet.keys.stream(STREAM), 'a')) as [number];
    expect(pending).toBe(0);
    const retries = new RetryQueues({ connection: redis, keys: fleet.keys });
    try {
      expect((await retries.counts('a')).delayed).toBe(1);
    } finally {
      await retries.close();
    }
  });

  it('3. always failing: exactly maxAttempts calls with growing gaps, then one retries-exhausted dead letter', async () => {
    world.newTest();
    const calls: number[] = [];
    const fleet = await startFleet(
      [
        group('a', () => {
          calls.push(Date.now());
          throw new Error(`fail #${calls.length}`);
        }),
      ],
      { retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 10_000, jitter: 0 } },
    );
    await fleet.producer.publish(STREAM, thing(1));
    const [entry] = (await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items))) ?? [];
    // Give a wrongly scheduled extra attempt the chance to show up before counting.
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1);
    expect(calls).toHaveLength(4);
    expect(entry?.reason).toBe('retries-exhausted');
    expect(entry?.attempts).toBe(4);
    expect(entry?.failures.map((f) => f.attempt)).toEqual([1, 2, 3, 4]);
    expect(entry?.failures.map((f) => f.message)).toEqual(['fail #1', 'fail #2', 'fail #3', 'fail #4']);
    expect(entry?.lastError.message).toBe('fail #4');
    const gaps = calls.slice(1).map((t, i) => t - (calls[i] as number));
    // Policy: 100, 200, 400 ms (no jitter). Lower bounds are exact; each gap exceeds the last.
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    expect(gaps[1]).toBeGreaterThanOrEqual(195);
    expect(gaps[2]).toBeGreaterThanOrEqual(395);
    expect(gaps[1]).toBeGreaterThan(gaps[0] as number);
    expect(gaps[2]).toBeGreaterThan(gaps[1] as number);
    expect(await fleet.deadLetters.length()).toBe(1);
  });

  it('4. non-retryable error: one call, dead letter reason non-retryable', async () => {
    world.newTest();
    let calls = 0;
    const fleet = await startFleet([
      group('a', () => {
        calls++;
        throw new NonRetryableError('bad order');
      }),
    ]);
    await fleet.producer.publish(STREAM, thing(1));
    const items = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    expect(calls).toBe(1);
    expect(items[0]?.reason).toBe('non-retryable');
    expect(items[0]?.attempts).toBe(1);
    expect(await pendingCount(fleet, 'a')).toBe(0);
  });

  it('5. invalid events (bad data, unknown type, garbage) never reach the handler and the loop goes on', async () => {
    world.newTest();
    const seen: number[] = [];
    const fleet = await startFleet([group('a', (e) => void seen.push(n(e)))]);
    const key = fleet.keys.stream(STREAM);
    await redis.xadd(key, '*', ...encodeEvent({ ...thing(1), data: { n: 'one' } }));
    await redis.xadd(key, '*', ...encodeEvent({ ...thing(2), type: 'nobody.knows' }));
    await redis.xadd(key, '*', 'hello', 'world');
    await fleet.producer.publish(STREAM, thing(4));
    await waitFor(() => seen.length === 1);
    const items = await waitFor(async () => {
      const page = await fleet.deadLetters.list();
      return page.items.length === 3 ? page.items : undefined;
    });
    expect(seen).toEqual([4]);
    expect(items.map((i) => i.reason)).toEqual(['invalid-event', 'invalid-event', 'invalid-event']);
    expect(items.map((i) => i.lastError.message).join('\n')).toMatch(/data\.n/);
    expect(items.map((i) => i.lastError.message).join('\n')).toMatch(/unknown event type "nobody.knows"/);
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0);
  });

  it('5a. distinct invalid entries are each dead-lettered, even when they carry an id already used', async () => {
    world.newTest();
    const seen: number[] = [];
    const fleet = await startFleet([
      group('a', (e) => {
        if (n(e) === 1) throw new NonRetryableError('refused');
        seen.push(n(e));
      }),
    ]);
    const key = fleet.keys.stream(STREAM);
    const valid = thing(1);
    await fleet.producer.publish(STREAM, valid);
    await waitFor(async () => (await fleet.deadLetters.length()) === 1, { message: 'the valid event dead-lettered' });
    // Two different bad entries sharing one id, and a bad entry reusing the dead-lettered event's id.
    const bad = [
      await redis.xadd(key, '*', ...encodeEvent({ ...thing(2), id: 'shared-id', data: { n: 'two' } })),
      await redis.xadd(key, '*', ...encodeEvent({ ...thing(3), id: 'shared-id', data: { n: 'three' } })),
      await redis.xadd(key, '*', ...encodeEvent({ ...thing(4), id: valid.id, data: { n: 'four' } })),
    ];
    await fleet.producer.publish(STREAM, thing(5));
    await waitFor(() => seen.length === 1, { message: 'the loop went on' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'every entry acked' });
    const { items } = await fleet.deadLetters.list({ reason: 'invalid-event' });
    expect(items.map((i) => i.entryId).sort()).toEqual([...bad].sort());
  });

  it('5b. an invalid event is dead-lettered only by the groups that handle the type it names', async () => {
    world.newTest();
    const seenBy: Record<string, number[]> = { things: [], others: [], all: [] };
    const fleet = await startFleet([
      group('things', (e) => void seenBy.things?.push(n(e)), { types: ['thing.happened'] }),
      group('others', (e) => void seenBy.others?.push(n(e)), { types: ['other.happened'] }),
      group('all', (e) => void seenBy.all?.push(n(e))),
    ]);
    const key = fleet.keys.stream(STREAM);
    const badThing = await redis.xadd(key, '*', ...encodeEvent({ ...thing(1), data: { n: 'one' } }));
    const noType = await redis.xadd(key, '*', 'hello', 'world');
    // A type no catalog entry knows (a producer's typo), and an empty one: nobody can tell whose.
    const unknownType = await redis.xadd(key, '*', ...encodeEvent({ ...thing(2), type: 'thing.hapened' }));
    const emptyType = await redis.xadd(key, '*', ...encodeEvent({ ...thing(2), type: '' }));
    await fleet.producer.publish(STREAM, thing(3));
    await waitFor(() => seenBy.things?.length === 1 && seenBy.all?.length === 1, { message: 'thing 3 handled' });
    // A dead letter is written together with its entry's XACK: nothing pending, every one is there.
    for (const g of ['things', 'others', 'all']) await waitFor(async () => (await pendingCount(fleet, g)) === 0);

    const { items } = await fleet.deadLetters.list();
    const labels: Record<string, string> = {
      [badThing as string]: 'bad thing',
      [noType as string]: 'no type',
      [unknownType as string]: 'unknown type',
      [emptyType as string]: 'empty type',
    };
    // The bad `thing.happened`: by the group that handles it and the one that handles all; an
    // entry naming no type, or one nobody knows: by every group, since none can tell it is not theirs.
    expect(items.map((i) => `${i.group}: ${labels[i.entryId] ?? i.entryId}`).sort()).toEqual([
      'all: bad thing',
      'all: empty type',
      'all: no type',
      'all: unknown type',
      'others: empty type',
      'others: no type',
      'others: unknown type',
      'things: bad thing',
      'things: empty type',
      'things: no type',
      'things: unknown type',
    ]);
    expect(seenBy.others).toEqual([]);
  });

  it('5c. a group reads an event written at an old version upcast to the newest, on retries too', async () => {
    world.newTest();
    const catalog = new EventCatalog()
      .register({ type: 'thing.happened', schemaVersion: 1, stream: STREAM, schema: z.strictObject({ n: z.number() }) })
      .register({
        type: 'thing.happened',
        schemaVersion: 2,
        stream: STREAM,
        schema: z.strictObject({ n: z.number(), label: z.string() }),
        upcast: (d) => ({ ...(d as { n: number }), label: `thing ${(d as { n: number }).n}` }),
      });
    const seen: { attempt: number; schemaVersion: number; data: unknown }[] = [];
    const fleet = await startFleet(
      [
        group('a', (e, ctx) => {
          seen.push({ attempt: ctx.attempt, schemaVersion: e.schemaVersion, data: e.data });
          throw new Error('always');
        }),
      ],
      { catalog },
    );
    const entryId = await redis.xadd(fleet.keys.stream(STREAM), '*', ...encodeEvent(thing(7)));

    const [dead] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    const upcast = { schemaVersion: 2, data: { n: 7, label: 'thing 7' } };
    expect(seen).toEqual([1, 2, 3].map((attempt) => ({ attempt, ...upcast })));
    // Kept as written: a replay reads it through today's upcasters again.
    expect(dead).toMatchObject({ entryId, reason: 'retries-exhausted' });
    expect((await fleet.deadLetters.get(dead?.id as string))?.event).toMatchObject({
      schemaVersion: '1',
      data: '{"n":7}',
    });
  });

  it('close() lets in-flight handlers finish and acks them before it resolves', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    let finished = false;
    const fleet = await startFleet([
      group('a', async () => {
        started = true;
        await gate;
        finished = true;
      }),
    ]);
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => started);
    const key = fleet.keys.stream(STREAM);
    const closing = world.running.splice(0).map((f) => f.close({ timeoutMs: 5000 }));
    release();
    await Promise.all(closing);
    expect(finished).toBe(true);
    expect(Number(((await redis.xpending(key, 'a')) as [number])[0])).toBe(0);
  });

  it('close() on a busy stream finishes every entry it was handed, read ahead included, and leaves the rest new', async () => {
    world.newTest();
    const total = 1000;
    const seen: number[] = [];
    const handler: EventHandler = async (e) => {
      await new Promise((r) => setImmediate(r));
      seen.push(n(e));
    };
    const first = await startFleet([group('a', handler)], {
      consumer: { batchSize: 25, concurrency: 5, blockMs: 100, visibilityTimeoutMs: 60_000 },
    });
    const events = [];
    for (let i = 0; i < total; i++) events.push({ stream: STREAM, event: thing(i) });
    await first.producer.publishMany(events);
    const key = first.keys.stream(STREAM);
    await waitFor(() => seen.length >= 100);
    await world.running.splice(0)[0]?.close({ timeoutMs: 10_000 });
    expect(seen.length).toBeLessThan(total);
    // Nothing delivered to the closed consumer is left pending: it finished what it read.
    expect(Number(((await redis.xpending(key, 'a')) as [number])[0])).toBe(0);
    await startFleet([group('a', handler)], { consumer: { batchSize: 25, blockMs: 100, visibilityTimeoutMs: 60_000 } });
    await waitFor(() => seen.length >= total, { timeoutMs: 30_000 });
    expect(new Set(seen).size).toBe(total);
    expect(seen).toHaveLength(total);
  });

  it('close() does not wait out a long BLOCK on an empty stream', async () => {
    world.newTest();
    let handled = 0;
    await startFleet([group('a', () => void handled++)], { consumer: { blockMs: 120_000 } });
    const fleet = world.running[0] as Fleet;
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => handled === 1);
    // The loop is now blocked (for two minutes) on an empty stream; close must unblock it.
    await world.running.splice(0)[0]?.close({ timeoutMs: 1000 });
    expect(Number(((await redis.xpending(fleet.keys.stream(STREAM), 'a')) as [number])[0])).toBe(0);
  }, 20_000);
});

describe('close() and its timeout', () => {
  /** The reader's line in CLIENT LIST (its connection is named `sf:<group>:<consumer>`). */
  async function readerClient(fleet: Fleet, groupName: string): Promise<{ id: string; cmd: string } | undefined> {
    const list = (await redis.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=${fleet.keys.prefix}:${groupName}:`));
    const field = (name: string) => line?.match(new RegExp(`(?:^| )${name}=(\\S*)`))?.[1];
    const id = field('id');
    return id ? { id, cmd: field('cmd') ?? '' } : undefined;
  }

  it('close() unblocks the reader even after it reconnected (a new client id)', async () => {
    world.newTest();
    const fleet = await startFleet([group('a', () => undefined)], { consumer: { blockMs: 120_000 } });
    const before = await waitFor(async () => {
      const c = await readerClient(fleet, 'a');
      return c?.cmd === 'xreadgroup' ? c : undefined;
    });
    await redis.client('KILL', 'ID', before.id);
    await waitFor(
      async () => {
        const c = await readerClient(fleet, 'a');
        return c && c.id !== before.id && c.cmd === 'xreadgroup';
      },
      { message: 'the reader blocked again on a new connection' },
    );
    // Unblocking the old id would leave close() waiting out the two-minute BLOCK.
    await world.running.splice(0)[0]?.close({ timeoutMs: 1000 });
  }, 20_000);

  it('past its timeout, close() starts no more handlers: what is left stays pending for another consumer', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started: number[] = [];
    let firstDone: Promise<void> = Promise.resolve();
    const fleet = await startFleet(
      [
        group('a', (e) => {
          started.push(n(e));
          firstDone = gate;
          return gate;
        }),
      ],
      { consumer: { concurrency: 1, batchSize: 10, blockMs: 100 } },
    );
    await fleet.producer.publishMany([1, 2, 3, 4, 5].map((i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(() => started.length === 1);
    await world.running.splice(0)[0]?.close({ timeoutMs: 100 });
    release();
    await firstDone;
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(started).toEqual([1]);
    expect(Number(((await redis.xpending(fleet.keys.stream(STREAM), 'a')) as [number])[0])).toBe(5);
  });

  it('a handler failing after its fleet closed is logged as a warning: its entry stays pending, nothing is stored', async () => {
    world.newTest();
    const { logger, lines, withMessage } = capturingLogger();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const fleet = await startFleet(
      [
        group('a', async () => {
          await gate;
          throw new Error('gateway said 503');
        }),
      ],
      { logger, consumer: { concurrency: 1, batchSize: 1, blockMs: 100 } },
    );
    await fleet.producer.publish(STREAM, thing(1));
    const pending = async () => Number(((await redis.xpending(fleet.keys.stream(STREAM), 'a')) as [number])[0]);
    await waitFor(async () => (await pending()) === 1);
    await world.running.splice(0)[0]?.close({ timeoutMs: 100 });
    release();
    const message = 'handler failed after the fleet closed; the entry stays pending for another consumer';
    await waitFor(() => withMessage(message).length === 1, { message: 'the late failure logged' });
    expect(withMessage(message)[0]).toMatchObject({ level: 40, error: { message: 'gateway said 503' } });
    expect(lines.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect(await pending()).toBe(1);
    const queues = new RetryQueues({ connection: redis, keys: fleet.keys });
    try {
      expect(await queues.counts('a')).toMatchObject({ waiting: 0, delayed: 0 });
    } finally {
      await queues.close();
    }
  });

  it('past its timeout, close() hands back what it never started: another consumer takes it at once, as a first delivery', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A visibility timeout longer than the test: only a hand-back lets the survivor claim now.
    const consumer = { concurrency: 1, batchSize: 10, blockMs: 100, visibilityTimeoutMs: 60_000, claimIntervalMs: 50 };
    const startedByFirst: number[] = [];
    await startFleet(
      [
        group('a', (e) => {
          startedByFirst.push(n(e));
          return gate;
        }),
      ],
      { consumer, consumerName: 'first' },
    );
    const [first] = world.running;
    await first?.producer.publishMany([1, 2, 3, 4, 5].map((i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(() => startedByFirst.length === 1);
    await world.running.splice(0)[0]?.close({ timeoutMs: 100 });

    const survivor: Array<[number, number]> = [];
    const fleet = await startFleet([group('a', (e, ctx) => void survivor.push([n(e), ctx.deliveryCount]))], {
      consumer,
      consumerName: 'survivor',
    });
    await waitFor(() => survivor.length === 4, { message: 'the four entries never started, claimed by the survivor' });
    // Never run, so never counted: each is the survivor's first delivery. Entry 1 ran and stays with `first`.
    expect(survivor.sort((x, y) => x[0] - y[0])).toEqual([
      [2, 1],
      [3, 1],
      [4, 1],
      [5, 1],
    ]);
    expect(Number(((await redis.xpending(fleet.keys.stream(STREAM), 'a')) as [number])[0])).toBe(1);
    release();
  });

  it('close() does not wait past its timeout for a retry job that is still running', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let attempt = 0;
    const fleet = await startFleet([
      group('a', async (_e, ctx) => {
        attempt = ctx.attempt;
        if (ctx.attempt === 1) throw new Error('once');
        await gate;
      }),
    ]);
    try {
      await fleet.producer.publish(STREAM, thing(1));
      await waitFor(() => attempt === 2, { message: 'the retry is running' });
      let closed = false;
      void world.running
        .splice(0)[0]
        ?.close({ timeoutMs: 200 })
        .then(() => {
          closed = true;
        });
      await waitFor(() => closed, { timeoutMs: 5000, message: 'close() within its timeout' });
    } finally {
      release();
    }
  });
});

describe('crash recovery', () => {
  it('6. entries read by a consumer that died are handled by another after the visibility timeout', async () => {
    world.newTest();
    const seen = new Set<number>();
    const probe = await startFleet([group('a', () => undefined)]);
    await probe.close();
    world.running.length = 0;
    const key = probe.keys.stream(STREAM);
    for (let i = 0; i < 5; i++) await redis.xadd(key, '*', ...encodeEvent(thing(i)));
    // The "dead" consumer reads everything and never acks.
    await redis.xreadgroup('GROUP', 'a', 'dead-consumer', 'COUNT', 10, 'STREAMS', key, '>');
    expect(Number(((await redis.xpending(key, 'a')) as [number])[0])).toBe(5);
    const fleet = await startFleet([group('a', (e) => void seen.add(n(e)))]);
    await waitFor(() => seen.size === 5, { message: 'claimed entries handled' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it('7. a crash between storing the retry job and acking does not make a second job', async () => {
    world.newTest();
    const probe = await startFleet([group('a', () => undefined)]);
    await probe.close();
    world.running.length = 0;
    const retryQueues = new RetryQueues({ connection: redis, keys: probe.keys });
    const key = probe.keys.stream(STREAM);
    const event = thing(1);
    await redis.xadd(key, '*', ...encodeEvent(event));
    const read = (await redis.xreadgroup('GROUP', 'a', 'dead-consumer', 'STREAMS', key, '>')) as [
      string,
      [string, string[]][],
    ][];
    const [entryId, fields] = read[0]?.[1][0] ?? ['', []];
    // What the dead consumer managed before dying: the job is stored, the ack never happened.
    await retryQueues.schedule(
      {
        group: 'a',
        stream: STREAM,
        entryId,
        fields,
        eventId: event.id,
        type: event.type,
        attemptOffset: 1,
        replayCount: 0,
        firstFailedAt: new Date().toISOString(),
        failures: [{ attempt: 1, at: new Date().toISOString(), name: 'Error', message: 'first' }],
      },
      60_000,
    );
    await retryQueues.close();
    let calls = 0;
    const fleet = await startFleet([
      group('a', () => {
        calls++;
        throw new Error('still failing');
      }),
    ]);
    await waitFor(() => calls === 1, { message: 're-delivered entry handled' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'entry acked' });
    const counts = await fleet.retryQueues.counts('a');
    expect(counts).toMatchObject({ delayed: 1, waiting: 0, active: 0, completed: 0, failed: 0 });
  });

  it('a slow but live handler keeps its entry: no other consumer claims it (heartbeat)', async () => {
    world.newTest();
    let calls = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow: EventHandler = async () => {
      calls++;
      await gate;
    };
    // The owner ticks slowly; the other consumer looks for idle entries every 20 ms.
    const first = await startFleet([group('a', slow)], {
      consumer: { blockMs: 100, visibilityTimeoutMs: 600, claimIntervalMs: 250 },
    });
    await startFleet([group('a', slow)], {
      consumerName: 'second-consumer',
      consumer: { blockMs: 100, visibilityTimeoutMs: 600, claimIntervalMs: 20 },
    });
    await first.producer.publish(STREAM, thing(1));
    await waitFor(() => calls === 1);
    // The owner's heartbeats reset the entry's idle time; six of them span well over three
    // visibility timeouts, while the other consumer looks for idle entries every 20 ms.
    const key = first.keys.stream(STREAM);
    const entry = async () => ((await redis.xpending(key, 'a', '-', '+', 1)) as [string, string, number, number][])[0];
    let lastIdle = -1;
    let heartbeats = 0;
    await waitFor(
      async () => {
        const idle = Number((await entry())?.[2]);
        if (idle < lastIdle) heartbeats++;
        lastIdle = idle;
        return heartbeats >= 6;
      },
      { timeoutMs: 10_000, message: 'six heartbeats' },
    );
    const [, owner, , deliveries] = (await entry()) ?? [];
    expect(owner).toBe(first.consumerName);
    expect(Number(deliveries)).toBe(1);
    release();
    await waitFor(async () => (await pendingCount(first, 'a')) === 0);
    expect(calls).toBe(1);
  });

  it('10. an entry that keeps killing its consumers is dead-lettered with max-deliveries', async () => {
    world.newTest();
    const probe = await startFleet([group('a', () => undefined)]);
    await probe.close();
    world.running.length = 0;
    const key = probe.keys.stream(STREAM);
    const id = (await redis.xadd(key, '*', ...encodeEvent(thing(1)))) as string;
    // Three consumers took it and died (maxDeliveries is 3).
    await redis.xreadgroup('GROUP', 'a', 'dead-1', 'STREAMS', key, '>');
    await redis.xclaim(key, 'a', 'dead-2', 0, id);
    await redis.xclaim(key, 'a', 'dead-3', 0, id);
    let calls = 0;
    const fleet = await startFleet([group('a', () => void calls++)]);
    const items = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    expect(items[0]?.reason).toBe('max-deliveries');
    expect(items[0]?.entryId).toBe(id);
    expect(calls).toBe(0);
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0);
  });

  it('removes idle consumers that have nothing pending, and keeps those that do', async () => {
    world.newTest();
    const fleet = await startFleet([group('a', () => undefined)], {
      consumer: { blockMs: 100, visibilityTimeoutMs: 60_000, consumerIdleTimeoutMs: 200, claimIntervalMs: 50 },
    });
    const key = fleet.keys.stream(STREAM);
    await redis.xgroup('CREATECONSUMER', key, 'a', 'ghost-idle');
    await fleet.producer.publish(STREAM, thing(1));
    await redis.xgroup('CREATE', key, 'b', '0');
    await redis.xreadgroup('GROUP', 'a', 'ghost-busy', 'STREAMS', key, '0');
    const names = async () => ((await redis.xinfo('CONSUMERS', key, 'a')) as unknown[][]).map((c) => String(c[1]));
    await waitFor(async () => !(await names()).includes('ghost-idle'), { message: 'idle consumer removed' });
    expect(await names()).toContain(fleet.consumerName);
  });
});

describe('leaving the group', () => {
  it('a consumer that closes with nothing pending leaves its group; one still holding an entry stays', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const done = await startFleet([group('a', () => undefined)]);
    const stuck = await startFleet([group('b', () => gate)]);
    const key = done.keys.stream(STREAM);
    const names = async (g: string) =>
      ((await redis.xinfo('CONSUMERS', key, g)) as unknown[][]).map((c) => String(c[1]));
    await done.producer.publish(STREAM, thing(1));
    await waitFor(async () => (await pendingCount(done, 'a')) === 0 && (await pendingCount(stuck, 'b')) === 1);
    expect(await names('a')).toEqual([done.consumerName]);
    try {
      for (const fleet of world.running.splice(0)) await fleet.close({ timeoutMs: 100 });
      expect(await names('a')).toEqual([]);
      // Its entry is still pending: the consumer stays, for another to claim the entry from.
      expect(await names('b')).toEqual([stuck.consumerName]);
    } finally {
      release();
    }
  });
});

describe('fan-out, replay and trimming', () => {
  it('8. two groups each see every entry; a failure in one is not re-delivered to the other', async () => {
    world.newTest();
    const a: number[] = [];
    const b: number[] = [];
    const fleet = await startFleet([
      group('a', (e) => void a.push(n(e))),
      group('b', (e) => {
        b.push(n(e));
        if (n(e) === 2) throw new Error('b cannot do 2');
      }),
    ]);
    await fleet.producer.publishMany([1, 2, 3].map((i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(async () => (await fleet.deadLetters.length()) === 1, { message: 'b dead-letters 2' });
    expect(a.sort()).toEqual([1, 2, 3]);
    expect(b.filter((x) => x === 2)).toHaveLength(3);
    const [dead] = (await fleet.deadLetters.list()).items;
    expect(dead?.group).toBe('b');
  });

  it('9. replay runs again only in the failed group, leaves the DLQ, comes back with replayCount raised if it fails', async () => {
    world.newTest();
    let bFails = true;
    const a: number[] = [];
    const b: { n: number; replay: number }[] = [];
    const fleet = await startFleet(
      [
        group('a', (e) => void a.push(n(e))),
        group('b', (e, ctx) => {
          b.push({ n: n(e), replay: ctx.replayCount });
          if (bFails) throw new NonRetryableError('b is broken');
        }),
      ],
      { retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 100, jitter: 0 } },
    );
    await fleet.producer.publish(STREAM, thing(7));
    const [first] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items));
    expect(first?.replayCount).toBe(0);

    // Still broken: the replay fails again and the event returns with replayCount 1.
    await fleet.deadLetters.replay(first?.id as string, { actor: 'tester' });
    const [second] = await waitFor(async () => {
      const items = (await fleet.deadLetters.list()).items;
      return items[0] && items[0].id !== first?.id ? items : undefined;
    });
    expect(second?.replayCount).toBe(1);
    expect(second?.eventId).toBe(first?.eventId);
    await expect(fleet.deadLetters.replay(first?.id as string, { actor: 'tester' })).rejects.toBeInstanceOf(
      ConflictError,
    );

    // Fixed: the replay succeeds in b, a never sees the event again, the DLQ is empty.
    bFails = false;
    await fleet.deadLetters.replay(second?.id as string, { actor: 'tester' });
    await waitFor(() => b.length === 3);
    await waitFor(async () => (await fleet.deadLetters.length()) === 0);
    expect(a).toEqual([7]);
    expect(b.map((x) => x.replay)).toEqual([0, 1, 2]);
    const audit = await new AuditLog(fleet.redis, fleet.keys).list();
    expect(audit.items.map((r) => [r.action, r.actor, r.group])).toEqual([
      ['replay', 'tester', 'b'],
      ['replay', 'tester', 'b'],
    ]);
  });

  it('11. trimming never drops entries a group has not acknowledged', async () => {
    world.newTest();
    const probe = await startFleet([group('a', () => undefined)]);
    await probe.close();
    world.running.length = 0;
    const key = probe.keys.stream(STREAM);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await redis.xadd(key, '*', ...encodeEvent(thing(i)))) as string);
    await redis.xreadgroup('GROUP', 'a', 'c1', 'COUNT', 10, 'STREAMS', key, '>');
    await redis.xack(key, 'a', ...ids.slice(0, 4));
    const trimmer = new StreamTrimmer({ redis, keys: probe.keys });
    await trimmer.trimAll();
    const left = (await redis.xrange(key, '-', '+')).map((r) => r[0]);
    expect(left).toEqual(ids.slice(4));
    // A second group that has read nothing holds everything back.
    await redis.xgroup('CREATE', key, 'late', '0');
    await redis.xack(key, 'a', ...ids.slice(4));
    expect(await trimmer.trim(STREAM)).toBe(0);
    expect(await redis.xlen(key)).toBe(6);
  });
});
