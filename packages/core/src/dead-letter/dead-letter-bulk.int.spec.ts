import { describe, expect, it } from 'vitest';
import { DomainError } from '../errors/index';
import { streamIdTime } from '../streams/reply';
import { DeadLetterWorld } from '../testing/dead-letter-world';
import { deadLetterInput } from '../testing/index';
import type { DeadLetterReason } from './types';

const world = new DeadLetterWorld().useHooks();

/** A dead letter of `group`; `n` not a number makes its event fail today's schema. */
async function write(group: string, n: number | string = 1, reason: DeadLetterReason = 'non-retryable') {
  const { id } = await world.dlq.write(deadLetterInput(group, reason, { type: 'thing.happened', data: { n } }));
  return id;
}

/** Audit records of one batch. */
async function audited(batchId: string): Promise<string[]> {
  const { items } = await world.audit.list({ limit: 1000 });
  return items.flatMap((r) => (r.batchId === batchId && 'deadLetterId' in r ? [r.deadLetterId] : []));
}

describe('bulk actions by ids with a filter', () => {
  it('apply the filter’s time range as a filter alone does, and report the ids it leaves out', async () => {
    const today = await write('ranged');
    const other = await write('ranged-other');
    const at = new Date(streamIdTime(today));
    const past = new Date('2020-01-01T00:00:00Z');

    // The same filter picks the same entries with and without ids.
    const byFilter = await world.dlq.discardMany({ filter: { group: 'ranged', to: past }, dryRun: true, actor: 'ops' });
    expect(byFilter).toMatchObject({ matched: 0, matchedIds: [] });
    const byIds = await world.dlq.discardMany({ ids: [today], filter: { to: past }, dryRun: true, actor: 'ops' });
    expect(byIds).toMatchObject({ matched: 0, matchedIds: [], missing: [], notMatching: [today] });
    const future = await world.dlq.replayMany({
      ids: [today, other],
      filter: { from: new Date(Date.now() + 60_000) },
      dryRun: true,
      actor: 'ops',
    });
    expect(future).toMatchObject({ matched: 0, notMatching: [today, other] });

    // Both bounds are inclusive, to the millisecond, as in a list.
    const exact = await world.dlq.discardMany({
      ids: [today, other],
      filter: { from: at, to: at },
      dryRun: true,
      actor: 'ops',
    });
    expect(exact.matchedIds).toEqual([today, other].filter((id) => streamIdTime(id) === at.getTime()));
    expect(exact.matchedIds).toContain(today);

    // Group, type and reason leave ids out the same way, and say so.
    const byGroup = await world.dlq.discardMany({
      ids: [today, other, '1-1'],
      filter: { group: 'ranged' },
      dryRun: true,
      actor: 'ops',
    });
    expect(byGroup).toMatchObject({ matched: 1, matchedIds: [today], missing: ['1-1'], notMatching: [other] });

    // A real run acts on none of the ids the filter leaves out.
    const real = await world.dlq.discardMany({ ids: [today], filter: { to: past }, actor: 'ops', batchId: 'range-1' });
    expect(real).toMatchObject({ dryRun: false, matched: 0, discarded: 0, discardedIds: [], notMatching: [today] });
    const replay = await world.dlq.replayMany({ ids: [today], filter: { to: past }, actor: 'ops', batchId: 'range-2' });
    expect(replay).toMatchObject({ matched: 0, replayed: 0, replayedIds: [], notMatching: [today] });
    expect(await world.dlq.get(today)).toBeDefined();
    expect(await audited('range-1')).toEqual([]);
    expect(await audited('range-2')).toEqual([]);
  });
});

describe('bulk replay of entries failing today’s schema', () => {
  it('a real run leaves them in the dead-letter stream: listed in invalidToday, not replayed, not audited', async () => {
    const bad = await write('invalid-today', 'not-a-number');
    const good = await write('invalid-today', 2);
    const real = await world.dlq.replayMany({ filter: { group: 'invalid-today' }, actor: 'ops', batchId: 'inv-1' });
    expect(real).toMatchObject({
      dryRun: false,
      matched: 2,
      matchedIds: [good, bad],
      replayed: 1,
      replayedIds: [good],
      invalidToday: [{ id: bad, error: expect.stringContaining('data.n') }],
    });
    expect(await world.dlq.get(bad)).toMatchObject({ id: bad, replayCount: 0 });
    expect(await world.dlq.get(good)).toBeUndefined();
    expect(await world.queues.counts('invalid-today')).toMatchObject({ waiting: 1 });
    expect(await audited('inv-1')).toEqual([good]);
    expect(await world.dlq.countsByGroup()).toMatchObject({ 'invalid-today': 1 });
  });

  it('they take no limit slot: a replay by filter reaches the replayable entries behind them', async () => {
    const good = await write('invalid-first', 1);
    const bad = [
      await write('invalid-first', 'x'),
      await write('invalid-first', 'y'),
      await write('invalid-first', 'z'),
    ];
    const real = await world.dlq.replayMany({ filter: { group: 'invalid-first' }, limit: 2, actor: 'ops' });
    expect(real).toMatchObject({ more: false, replayed: 1, replayedIds: [good] });
    expect(real.invalidToday.map((i) => i.id)).toEqual([...bad].reverse());
    expect(await world.dlq.get(good)).toBeUndefined();
    // The limit still caps what is replayed; `more` says replayable entries are left.
    const [older, newer] = [await write('invalid-more', 1), await write('invalid-more', 2)];
    await write('invalid-more', 'x');
    const capped = await world.dlq.replayMany({ filter: { group: 'invalid-more' }, limit: 1, actor: 'ops' });
    expect(capped).toMatchObject({ more: true, replayed: 1, replayedIds: [newer] });
    const rest = await world.dlq.replayMany({ filter: { group: 'invalid-more' }, limit: 1, actor: 'ops' });
    expect(rest).toMatchObject({ more: false, replayedIds: [older] });
  });

  it('a single replay refuses such an entry (DLQ_EVENT_INVALID, naming why) and changes nothing', async () => {
    const bad = await write('invalid-one', 'not-a-number');
    const auditBefore = (await world.audit.list({ limit: 1000 })).items.length;
    const replay = world.dlq.replay(bad, { actor: 'ops' });
    await expect(replay).rejects.toBeInstanceOf(DomainError);
    await expect(replay).rejects.toMatchObject({
      code: 'DLQ_EVENT_INVALID',
      details: { id: bad, envelopeError: { errors: [{ field: 'data.n', message: expect.any(String) }] } },
    });
    expect(await world.dlq.get(bad)).toBeDefined();
    expect(await world.queues.counts('invalid-one')).toMatchObject({ waiting: 0, delayed: 0 });
    expect((await world.audit.list({ limit: 1000 })).items).toHaveLength(auditBefore);
  });
});

describe('bulk action scope', () => {
  it('by filter: says whether more matched than limit, and lists the ids it picked, newest first', async () => {
    const ids = [await write('scoped'), await write('scoped'), await write('scoped')];
    const newest = [...ids].reverse();
    const capped = await world.dlq.discardMany({ filter: { group: 'scoped' }, limit: 2, dryRun: true, actor: 'ops' });
    expect(capped).toMatchObject({
      dryRun: true,
      matched: 2,
      more: true,
      matchedIds: newest.slice(0, 2),
      discarded: 0,
    });
    const all = await world.dlq.replayMany({ filter: { group: 'scoped' }, limit: 3, dryRun: true, actor: 'ops' });
    expect(all).toMatchObject({ matched: 3, more: false, matchedIds: newest, replayed: 0 });
    expect(await world.dlq.length()).toBeGreaterThanOrEqual(3);

    const real = await world.dlq.discardMany({ filter: { group: 'scoped' }, limit: 2, actor: 'ops' });
    expect(real).toMatchObject({
      matched: 2,
      more: true,
      matchedIds: newest.slice(0, 2),
      discardedIds: newest.slice(0, 2),
    });
    const rest = await world.dlq.discardMany({ filter: { group: 'scoped' }, limit: 2, actor: 'ops' });
    expect(rest).toMatchObject({ matched: 1, more: false, discardedIds: [ids[0]] });
  });

  it('by ids: limit caps the entries picked, not the ids looked up; more says whether others matched', async () => {
    const [a, b, c] = [await write('scoped-ids'), await write('scoped-ids'), await write('scoped-ids')];
    const capped = await world.dlq.replayMany({ ids: [a, b, c], limit: 2, dryRun: true, actor: 'ops' });
    expect(capped).toMatchObject({ matched: 2, more: true, matchedIds: [a, b], missing: [], notMatching: [] });
    const holes = await world.dlq.replayMany({ ids: [a, '1-1', c, b], limit: 2, dryRun: true, actor: 'ops' });
    expect(holes).toMatchObject({ matched: 2, more: true, matchedIds: [a, c], missing: ['1-1'] });
    const enough = await world.dlq.discardMany({ ids: [c, '1-1', a], limit: 2, dryRun: true, actor: 'ops' });
    expect(enough).toMatchObject({ matched: 2, more: false, matchedIds: [c, a], missing: ['1-1'] });
  });
});
