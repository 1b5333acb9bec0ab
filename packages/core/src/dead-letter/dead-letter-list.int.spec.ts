import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StreamfleetKeys } from '../streams/keys';
import { streamIdTime } from '../streams/reply';
import { cleanupPrefix, deadLetterInput, testRedisUrl, uniquePrefix, waitFor } from '../testing/index';
import { DeadLetterStream } from './dead-letter-stream';
import type { DeadLetterEntry, DeadLetterFilter, DeadLetterReason } from './types';

const prefix = uniquePrefix();
const keys = new StreamfleetKeys(prefix);
let redis: Redis;
let dlq: DeadLetterStream;

let entries = 0;
async function write(group: string, type: string, reason: DeadLetterReason): Promise<string> {
  // Each from an entry of its own: invalid-event dead letters are keyed by their stream entry.
  const { id } = await dlq.write(
    deadLetterInput(group, reason, { type, data: { n: 1 } }, { entryId: `${++entries}-0` }),
  );
  return id;
}

/** Every match of a filter, walking the cursor one entry at a time. */
async function walk(filter: DeadLetterFilter, limit = 1): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await dlq.list(filter, { limit, ...(cursor ? { cursor } : {}) });
    ids.push(...page.items.map((i: DeadLetterEntry) => i.id));
    cursor = page.nextCursor;
    if (++pages > 100) throw new Error('cursor never ends');
  } while (cursor);
  return ids;
}

/** Waits until the clock has moved past the millisecond of a dead-letter id. */
const pastMillisecondOf = (id: string) => waitFor(() => Date.now() > streamIdTime(id) + 1);

beforeAll(() => {
  redis = new Redis(testRedisUrl());
  dlq = new DeadLetterStream({ redis, keys });
});

afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(testRedisUrl(), prefix);
});

describe('DeadLetterStream.list filters', () => {
  it('filters by type, group and reason together, newest first, across cursor pages', async () => {
    const wanted: string[] = [];
    for (let i = 0; i < 4; i++) {
      wanted.push(await write('typed', 'thing.happened', 'non-retryable'));
      await write('typed', 'other.happened', 'non-retryable');
      await write('typed', 'thing.happened', 'invalid-event');
      await write('elsewhere', 'thing.happened', 'non-retryable');
    }
    const ids = await walk({ group: 'typed', type: 'thing.happened', reason: 'non-retryable' });
    expect(ids).toEqual([...wanted].reverse());
    expect(await walk({ group: 'typed', type: 'other.happened' }, 3)).toHaveLength(4);
    expect(await walk({ group: 'typed', reason: 'invalid-event' }, 2)).toHaveLength(4);
    const entry = await dlq.get(wanted[0] as string);
    expect(entry).toMatchObject({ group: 'typed', type: 'thing.happened', reason: 'non-retryable' });
  });

  it('filters by event id and by aggregate id: every dead letter of one event, or about one order', async () => {
    const dead = (group: string, id: string, aggregateId: string) =>
      dlq.write(
        deadLetterInput(
          group,
          'non-retryable',
          { type: 'thing.happened', data: {}, id, aggregateId },
          {
            entryId: `${++entries}-0`,
          },
        ),
      );
    const suffix = uniquePrefix('agg');
    const [a1, b1, a2] = [`ev-a-${suffix}`, `ev-b-${suffix}`, `ev-c-${suffix}`];
    const inPayment = await dead('payment', a1, `order-1-${suffix}`);
    const inInventory = await dead('inventory', a1, `order-1-${suffix}`);
    const otherEvent = await dead('payment', b1, `order-1-${suffix}`);
    await dead('payment', a2, `order-2-${suffix}`);

    expect(await walk({ eventId: a1 })).toEqual([inInventory.id, inPayment.id]);
    expect(await walk({ aggregateId: `order-1-${suffix}` }, 2)).toEqual([otherEvent.id, inInventory.id, inPayment.id]);
    expect(await walk({ aggregateId: `order-1-${suffix}`, group: 'payment' })).toEqual([otherEvent.id, inPayment.id]);
    expect(await walk({ eventId: a1, aggregateId: `order-2-${suffix}` })).toEqual([]);
    expect(await walk({ eventId: `ev-none-${suffix}` })).toEqual([]);
  });

  it('filters by a dead-lettered time range, both bounds inclusive', async () => {
    const early = [await write('timed', 'thing.happened', 'non-retryable')];
    early.push(await write('timed', 'thing.happened', 'non-retryable'));
    await pastMillisecondOf(early[1] as string);
    const late = [await write('timed', 'thing.happened', 'non-retryable')];
    late.push(await write('timed', 'thing.happened', 'non-retryable'));
    const at = (id: string) => new Date(streamIdTime(id));
    expect(await walk({ group: 'timed', to: at(early[1] as string) })).toEqual([...early].reverse());
    expect(await walk({ group: 'timed', from: at(late[0] as string) })).toEqual([...late].reverse());
    expect(await walk({ group: 'timed', from: at(early[0] as string), to: at(early[1] as string) })).toEqual(
      [...early].reverse(),
    );
    expect(await walk({ group: 'timed', from: at(early[0] as string) }, 3)).toEqual([...early, ...late].reverse());
  });

  it("shows as deadLetteredAt the time it filters on (Redis's), even from a worker whose clock is off", async () => {
    // The writer's clock an hour behind Redis's: the time shown must still select the entry.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000 });
    let id: string;
    try {
      id = await write('skewed', 'thing.happened', 'non-retryable');
    } finally {
      vi.useRealTimers();
    }
    const entry = (await dlq.get(id)) as DeadLetterEntry;
    expect(Date.parse(entry.deadLetteredAt)).toBe(streamIdTime(id));
    const [listed] = (await dlq.list({ group: 'skewed' })).items;
    expect(listed?.deadLetteredAt).toBe(entry.deadLetteredAt);
    const shown = new Date(entry.deadLetteredAt);
    expect(await walk({ group: 'skewed', to: shown })).toEqual([id]);
    expect(await walk({ group: 'skewed', from: shown })).toEqual([id]);
  });
});

/** A dead-letter stream of its own, with entries at ids the test picks. */
describe('DeadLetterStream with entries at fixed ids', () => {
  const fixedPrefix = uniquePrefix();
  const fixedKeys = new StreamfleetKeys(fixedPrefix);
  let fixed: DeadLetterStream;
  const at = (id: string) => redis.xadd(fixedKeys.deadLetter, id, 'group', 'fixed', 'type', 'thing.happened');
  const ids = async (filter: DeadLetterFilter, cursor?: string) =>
    (await fixed.list(filter, { limit: 10, ...(cursor ? { cursor } : {}) })).items.map((i) => i.id);

  beforeAll(async () => {
    fixed = new DeadLetterStream({ redis, keys: fixedKeys });
    for (const id of ['1700000000000-0', '1700000000000-1', '1700000001000-0', '1700000002000-0', '1700000003000-0']) {
      await at(id);
    }
  });
  afterAll(() => cleanupPrefix(testRedisUrl(), fixedPrefix));

  it('gets, replays and discards only the entry whose id is exactly the one asked for', async () => {
    await expect(fixed.get('1700000000000')).resolves.toBeUndefined();
    await expect(fixed.get('01700000000000-1')).resolves.toBeUndefined();
    expect((await fixed.get('1700000000000-1'))?.id).toBe('1700000000000-1');
    await expect(fixed.discard('1700000000000', { actor: 'ops' })).rejects.toThrow(/no dead-letter entry/);
    await expect(fixed.replay('1700000000000', { actor: 'ops' })).rejects.toThrow(/no dead-letter entry/);
    const bulk = await fixed.replayMany({ ids: ['1700000000000'], dryRun: true, actor: 'ops' });
    expect(bulk).toMatchObject({ matched: 0, missing: ['1700000000000'] });
    expect(await fixed.length()).toBe(5);
  });

  it('keeps the `to` bound when a cursor is given, whichever of the two is lower', async () => {
    const to = new Date(1700000001500);
    expect(await ids({ to }, '1700000003000-0')).toEqual(['1700000001000-0', '1700000000000-1', '1700000000000-0']);
    expect(await ids({ to }, '1700000001000-0')).toEqual(['1700000000000-1', '1700000000000-0']);
    expect(await ids({ to: new Date(1700000000000) }, '1700000000000-1')).toEqual(['1700000000000-0']);
    expect(await ids({ to: new Date(1700000002000) }, '1700000003000-0')).toEqual([
      '1700000002000-0',
      '1700000001000-0',
      '1700000000000-1',
      '1700000000000-0',
    ]);
  });
});
