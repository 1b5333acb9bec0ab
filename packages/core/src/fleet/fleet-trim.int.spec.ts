import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { encodeEvent } from '../events/codec';
import { StreamfleetKeys } from '../streams/keys';
import { StreamTrimmer } from '../streams/stream-trimmer';
import { waitFor } from '../testing/index';
import { group, n, pendingCount, THING_STREAM as STREAM, ThingFleets, thing } from '../testing/thing-fleet';

// Claims would only add noise here: no entry stays idle long enough to be claimed.
const world = new ThingFleets({
  consumer: { blockMs: 100, visibilityTimeoutMs: 60_000 },
  trimIntervalMs: 50,
});
let redis: Redis;

world.useHooks();
beforeAll(() => {
  redis = world.redis;
});
afterEach(() => {
  vi.restoreAllMocks();
});

const entryIds = async (key: string) => (await redis.xrange(key, '-', '+')).map((r) => r[0]);
const firstEntryId = async (key: string) => (await redis.xrange(key, '-', '+', 'COUNT', 1))[0]?.[0];

/** Counts trim runs (calls pass through to Redis): lets a test wait until several ran. */
function countTrims(): () => number {
  const spy = vi.spyOn(StreamTrimmer.prototype, 'trim');
  return () => spy.mock.calls.length;
}

describe('fleet stream trimming', () => {
  it('trims what every group acknowledged, and keeps an entry another group still holds and all after it', async () => {
    world.newTest();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const handledByB: number[] = [];
    // Two processes, one group each, both trimming the same stream: the one running `a`
    // must still respect `b`, which it knows only from Redis.
    const fleetA = await world.start([group('a', () => undefined)]);
    const fleetB = await world.start([
      group('b', async (e) => {
        if (n(e) === 3) await held;
        handledByB.push(n(e));
      }),
    ]);
    const key = fleetA.keys.stream(STREAM);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await fleetA.producer.publish(STREAM, thing(i)));

    await waitFor(async () => (await pendingCount(fleetA, 'a')) === 0, { message: 'a acked everything' });
    await waitFor(async () => handledByB.length === 9 && (await pendingCount(fleetB, 'b')) === 1, {
      message: 'b acked all but entry 3',
    });
    await waitFor(async () => (await firstEntryId(key)) === ids[3], { message: 'trimmed up to entry 3' });
    expect(await entryIds(key)).toEqual(ids.slice(3));

    // Once b lets go, the stream is trimmed up to the last entry every group has read (kept).
    release();
    await waitFor(async () => (await pendingCount(fleetB, 'b')) === 0, { message: 'b acked entry 3' });
    await waitFor(async () => (await redis.xlen(key)) === 1, { message: 'trimmed to the last entry' });
    expect(await entryIds(key)).toEqual(ids.slice(9));
    expect(handledByB.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('never trims past a group that is behind, with nothing pending or with entries pending', async () => {
    world.newTest();
    const trims = countTrims();
    const fleet = await world.start([group('a', () => undefined)]);
    const key = fleet.keys.stream(STREAM);
    // A group no process here runs (another service's), far behind.
    await redis.xgroup('CREATE', key, 'slow', '0');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await fleet.producer.publish(STREAM, thing(i)));
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'a acked everything' });

    // Nothing pending, last delivered entry 4: only entries before it may go.
    await redis.xreadgroup('GROUP', 'slow', 'c1', 'COUNT', 5, 'STREAMS', key, '>');
    await redis.xack(key, 'slow', ...ids.slice(0, 5));
    await waitFor(async () => (await firstEntryId(key)) === ids[4], { message: 'trimmed up to entry 4' });
    const runs = trims();
    await waitFor(() => trims() >= runs + 3, { message: 'more trim runs' });
    expect(await entryIds(key)).toEqual(ids.slice(4));

    // Entries 5 and 6 delivered, not acknowledged: entry 5 is the floor.
    await redis.xreadgroup('GROUP', 'slow', 'c1', 'COUNT', 2, 'STREAMS', key, '>');
    await waitFor(async () => (await firstEntryId(key)) === ids[5], { message: 'trimmed up to entry 5' });
    const runs2 = trims();
    await waitFor(() => trims() >= runs2 + 3, { message: 'more trim runs' });
    expect(await entryIds(key)).toEqual(ids.slice(5));
  });

  it('a group created later at 0 holds back everything it has not read', async () => {
    world.newTest();
    const trims = countTrims();
    const fleet = await world.start([group('a', () => undefined)]);
    const key = fleet.keys.stream(STREAM);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await fleet.producer.publish(STREAM, thing(i)));
    await waitFor(async () => (await firstEntryId(key)) === ids[4], { message: 'trimmed to the last entry' });

    await redis.xgroup('CREATE', key, 'late', '0');
    for (let i = 5; i < 10; i++) ids.push(await fleet.producer.publish(STREAM, thing(i)));
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'a acked everything' });
    const runs = trims();
    await waitFor(() => trims() >= runs + 3, { message: 'more trim runs' });
    expect(await entryIds(key)).toEqual(ids.slice(4));

    await redis.xreadgroup('GROUP', 'late', 'c1', 'STREAMS', key, '>');
    await redis.xack(key, 'late', ...ids.slice(4));
    await waitFor(async () => (await redis.xlen(key)) === 1, { message: 'trimmed once late caught up' });
    expect(await entryIds(key)).toEqual(ids.slice(9));
  });

  it('keeps acknowledged entries younger than trimRetentionMs', async () => {
    world.newTest();
    const trims = countTrims();
    const fleet = await world.start([group('a', () => undefined)], { trimRetentionMs: 60_000 });
    const key = fleet.keys.stream(STREAM);
    const old = Date.now() - 120_000;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await redis.xadd(key, `${old}-${i}`, ...encodeEvent(thing(i)))) as string);
    for (let i = 3; i < 6; i++) ids.push(await fleet.producer.publish(STREAM, thing(i)));
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0 && (await redis.xlen(key)) < 6, {
      message: 'old entries trimmed',
    });
    const runs = trims();
    await waitFor(() => trims() >= runs + 3, { message: 'more trim runs' });
    expect(await entryIds(key)).toEqual(ids.slice(3));
  });

  it('a failing trim run is logged and changes nothing else: consumption goes on, the next run trims', async () => {
    world.newTest();
    const spy = vi.spyOn(StreamTrimmer.prototype, 'trim').mockRejectedValueOnce(new Error('trim broke'));
    const seen: number[] = [];
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const fleet = await world.start([group('a', (e) => void seen.push(n(e)))], { logger });
    const key = fleet.keys.stream(STREAM);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await fleet.producer.publish(STREAM, thing(i)));
    await waitFor(() => seen.length === 5, { message: 'all handled' });
    await waitFor(async () => (await redis.xlen(key)) === 1, { message: 'trimmed to the last entry' });
    expect(spy.mock.calls.length).toBeGreaterThan(1);
    const failure = warnings.map((l) => JSON.parse(l)).find((l) => l.msg.startsWith('could not trim'));
    expect(failure).toMatchObject({ component: 'stream-trim', stream: STREAM, err: { message: 'trim broke' } });
    expect(await entryIds(key)).toEqual(ids.slice(4));
  });
});

describe('StreamTrimmer', () => {
  it('never trims a stream without groups', async () => {
    world.newTest();
    const keys = new StreamfleetKeys(world.prefix);
    const key = keys.stream('orphan');
    for (let i = 0; i < 3; i++) await redis.xadd(key, '*', ...encodeEvent(thing(i)));
    const trimmer = new StreamTrimmer({ redis, keys });
    expect(await trimmer.trim('orphan')).toBe(0);
    expect(await trimmer.trim('missing')).toBe(0);
    expect(await redis.xlen(key)).toBe(3);
  });
});
