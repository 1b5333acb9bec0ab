import { describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/audit-log';
import { encodeEvent } from '../events/codec';
import type { Fleet, FleetOptions } from '../fleet/fleet';
import { RetryQueues } from '../retry/retry-queues';
import { capturingLogger, waitFor } from '../testing/index';
import { group, n, THING_STREAM as STREAM, ThingFleets, thing } from '../testing/thing-fleet';
import { GroupPauses } from './group-pauses';
import { StreamfleetKeys } from './keys';
import { infoList } from './reply';

const CONSUMER = { blockMs: 100, visibilityTimeoutMs: 5000, claimIntervalMs: 50, pauseCheckMs: 20 };
/** Who the specs pause and resume as. */
const OPERATOR = { actor: 'spec' };
const world = new ThingFleets({
  retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, jitter: 0 },
  consumer: CONSUMER,
});

/** XINFO GROUPS of the test stream, by group name. */
async function groupInfo(fleet: Fleet, name: string) {
  const infos = infoList(await fleet.redis.call('XINFO', 'GROUPS', fleet.keys.stream(STREAM)));
  return infos.find((i) => i.name === name);
}

world.useHooks();

/** Groups `a` and `b` on the test stream, each recording the numbers it handled, and the pause switch. */
async function startGroupsAB(overrides: Partial<FleetOptions> = {}) {
  world.newTest();
  const seenBy: Record<string, number[]> = { a: [], b: [] };
  const { logger, withMessage } = capturingLogger();
  const fleet = await world.start(
    [group('a', (e) => void seenBy.a?.push(n(e))), group('b', (e) => void seenBy.b?.push(n(e)))],
    { logger, ...overrides },
  );
  return { fleet, seenBy, withMessage, pauses: new GroupPauses(fleet.redis, fleet.keys, fleet.retryQueues) };
}

describe('pausing a group', () => {
  it('a paused group reads nothing new while the others go on; resumed, it handles what waited', async () => {
    const { fleet, seenBy, withMessage, pauses } = await startGroupsAB();
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => seenBy.a?.length === 1 && seenBy.b?.length === 1, { message: 'both groups handled 1' });

    expect(await pauses.pause('a', OPERATOR)).toBe(true);
    expect(await pauses.pause('a', OPERATOR)).toBe(false);
    expect(await pauses.paused()).toEqual(new Set(['a']));
    // Logged once the read loop has stopped: the read it had sent before it saw the pause is done.
    await waitFor(() => withMessage('group paused: reading nothing new', 'a').length === 1, {
      message: 'a stopped reading',
    });

    await fleet.producer.publish(STREAM, thing(2));
    await fleet.producer.publish(STREAM, thing(3));
    await waitFor(() => seenBy.b?.length === 3, { message: 'b handled 2 and 3' });
    await fleet.producer.publish(STREAM, thing(4));
    await waitFor(() => seenBy.b?.length === 4, { message: 'b handled 4, in a read of its own' });
    expect(seenBy.a).toEqual([1]);
    expect((await groupInfo(fleet, 'a'))?.lag).toBe(3);
    expect(withMessage('group paused: reading nothing new', 'b').length).toBe(0);

    expect(await pauses.resume('a', OPERATOR)).toBe(true);
    expect(await pauses.resume('a', OPERATOR)).toBe(false);
    await waitFor(() => seenBy.a?.length === 4, { message: 'a handled what waited once resumed' });
    expect(seenBy.a).toEqual([1, 2, 3, 4]);
    expect(withMessage('group resumed: reading again', 'a').length).toBe(1);
    expect(await pauses.paused()).toEqual(new Set());
  });

  it('a group paused in the middle of a backlog stops reading, while the others go on', async () => {
    // Small reads of a large backlog: every read of a's finds entries, for far longer than a pause check.
    const { fleet, seenBy, withMessage, pauses } = await startGroupsAB({ consumer: { ...CONSUMER, batchSize: 10 } });
    const BACKLOG = 20_000;
    const pipeline = fleet.redis.pipeline();
    for (let i = 1; i <= BACKLOG; i++) pipeline.xadd(fleet.keys.stream(STREAM), '*', ...encodeEvent(thing(i)));
    await pipeline.exec();
    await waitFor(() => (seenBy.a?.length ?? 0) >= 100, { message: 'a working through the backlog' });

    await pauses.pause('a', OPERATOR);
    await waitFor(() => withMessage('group paused: reading nothing new', 'a').length === 1, {
      message: 'a stopped reading although every read finds entries',
    });
    const readWhenPaused = Number((await groupInfo(fleet, 'a'))?.['entries-read']);
    expect(readWhenPaused).toBeLessThan(BACKLOG);
    await waitFor(() => seenBy.b?.length === BACKLOG, { message: 'b handled the whole backlog' });
    expect(Number((await groupInfo(fleet, 'a'))?.['entries-read'])).toBe(readWhenPaused);

    await pauses.resume('a', OPERATOR);
    await waitFor(() => seenBy.a?.length === BACKLOG, { message: 'a handled everything once resumed' });
  });

  it('a consumer blocked in a read when its group is paused is woken: an event after the pause waits', async () => {
    // A read blocks for a minute: longer than any wait below.
    const { fleet, seenBy, withMessage, pauses } = await startGroupsAB({ consumer: { ...CONSUMER, blockMs: 60_000 } });
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(() => seenBy.a?.length === 1 && seenBy.b?.length === 1, { message: 'both groups handled 1' });

    await pauses.pause('a', OPERATOR);
    await waitFor(() => withMessage('group paused: reading nothing new', 'a').length === 1, {
      message: 'a stopped reading without waiting out its blocked read',
    });
    await fleet.producer.publish(STREAM, thing(2));
    await waitFor(() => seenBy.b?.length === 2, { message: 'b handled 2' });
    expect(seenBy.a).toEqual([1]);
    expect((await groupInfo(fleet, 'a'))?.lag).toBe(1);

    await pauses.resume('a', OPERATOR);
    await waitFor(() => seenBy.a?.length === 2, { message: 'a handled 2 once resumed' });
  });

  it("a paused group's retry jobs wait, past their due time, until it resumes", async () => {
    world.newTest();
    const attempts: number[] = [];
    const fleet = await world.start([
      group('a', (_e, ctx) => {
        attempts.push(ctx.attempt);
        if (ctx.attempt === 1) throw new Error('dependency down');
      }),
    ]);
    const pauses = new GroupPauses(fleet.redis, fleet.keys, fleet.retryQueues);
    await pauses.pause('a', OPERATOR);
    // A consumer that starts on a paused group reads nothing: resume it for the first delivery only.
    await pauses.resume('a', OPERATOR);
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(async () => (await fleet.retryQueues.counts('a')).delayed === 1, { message: 'retry job delayed' });
    await pauses.pause('a', OPERATOR);
    // Due after 100 ms: it leaves the delayed set, but no worker takes it while the queue is paused.
    await waitFor(async () => (await fleet.retryQueues.counts('a')).waiting === 1, {
      message: 'the job due, waiting',
    });
    expect(attempts).toEqual([1]);
    expect(await fleet.retryQueues.queue('a').isPaused()).toBe(true);
    await pauses.resume('a', OPERATOR);
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, {
      message: 'retried once resumed',
    });
    expect(attempts).toEqual([1, 2]);
  });

  it('a consumer that starts while its group is paused knows it before its first read, and reads once resumed', async () => {
    world.newTest();
    const handled: number[] = [];
    const { logger, withMessage } = capturingLogger();
    const keys = new StreamfleetKeys(world.prefix);
    const queues = new RetryQueues({ connection: world.redis, keys });
    try {
      const pauses = new GroupPauses(world.redis, keys, queues);
      await pauses.pause('a', OPERATOR);
      await world.redis.xadd(keys.stream(STREAM), '*', ...encodeEvent(thing(1)));
      await world.start([group('a', (e) => void handled.push(n(e)))], { logger });
      // Logged by start(), before the read loop began.
      expect(withMessage('group paused: reading nothing new', 'a').length).toBe(1);
      await pauses.resume('a', OPERATOR);
      await waitFor(() => handled.length === 1, { message: 'handled once resumed' });
      expect(handled).toEqual([1]);
    } finally {
      await queues.close();
    }
  });
});

describe('auditing pauses', () => {
  it('records each pause and resume that changed the group, with its operator, and no call that changed nothing', async () => {
    world.newTest();
    const keys = new StreamfleetKeys(world.prefix);
    const queues = new RetryQueues({ connection: world.redis, keys });
    try {
      const pauses = new GroupPauses(world.redis, keys, queues);
      const started = Date.now();
      expect(await pauses.resume('a', { actor: 'carol' })).toBe(false);
      expect(await pauses.pause('a', { actor: 'alice' })).toBe(true);
      expect(await pauses.pause('a', { actor: 'bob' })).toBe(false);
      expect(await pauses.pause('b', { actor: 'bob' })).toBe(true);
      expect(await pauses.resume('a', { actor: 'carol' })).toBe(true);

      const { items } = await new AuditLog(world.redis, keys).list();
      expect(items.map((r) => [r.action, r.group, r.actor])).toEqual([
        ['resume', 'a', 'carol'],
        ['pause', 'b', 'bob'],
        ['pause', 'a', 'alice'],
      ]);
      for (const record of items) {
        expect(Object.keys(record).sort()).toEqual(['action', 'actor', 'at', 'group', 'id']);
        expect(Date.parse(record.at)).toBeGreaterThanOrEqual(started);
        expect(Date.parse(record.at)).toBeLessThanOrEqual(Date.now());
      }
      expect(await pauses.paused()).toEqual(new Set(['b']));
      expect(await queues.queue('a').isPaused()).toBe(false);
      expect(await queues.queue('b').isPaused()).toBe(true);
    } finally {
      await queues.close();
    }
  });
});
