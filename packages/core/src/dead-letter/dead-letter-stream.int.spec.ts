import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../errors/index';
import { encodeEvent } from '../events/codec';
import { createEvent } from '../events/envelope';
import { DeadLetterWorld } from '../testing/dead-letter-world';
import { deadLetterInput } from '../testing/index';
import type { DeadLetterInput } from './types';

const world = new DeadLetterWorld().useHooks();

let entries = 0;

function input(group: string, reason: DeadLetterInput['reason'], n: number | string = 1): DeadLetterInput {
  return deadLetterInput(
    group,
    reason,
    { type: 'thing.happened', data: { n } },
    {
      // An entry of its own each: invalid-event dead letters are keyed by their stream entry.
      entryId: `${Date.now()}-${++entries}`,
      attempts: 3,
    },
  );
}

describe('DeadLetterStream', () => {
  it('writes once per (group, event, replay round), however often it is asked', async () => {
    const entry = input('a', 'retries-exhausted');
    const first = await world.dlq.write(entry);
    const again = await world.dlq.write(entry);
    expect(first.created).toBe(true);
    expect(again).toEqual({ id: first.id, created: false });
    const other = await world.dlq.write({ ...entry, group: 'b' });
    expect(other.created).toBe(true);
    expect(await world.dlq.countsByGroup()).toMatchObject({ a: 1, b: 1 });
  });

  it('audits an operator’s dead letter in the write that makes it, once however often it is written', async () => {
    const entry = input('killed', 'operator');
    const eventId = entry.fields[entry.fields.indexOf('id') + 1];
    const operator = { actor: 'alice', batchId: 'k-1' };
    const first = await world.dlq.write(entry, { operator });
    // A retry job that died after writing it runs again: nothing new, nothing audited again.
    const again = await world.dlq.write(entry, { operator });
    // Dead letters nobody asked for are not operator actions.
    const unasked = await world.dlq.write(input('killed', 'retries-exhausted'));
    expect([first.created, again.created, unasked.created]).toEqual([true, false, true]);

    const { items } = await world.audit.list();
    expect(items.filter((r) => r.group === 'killed')).toEqual([
      {
        id: expect.any(String),
        action: 'dead-letter',
        actor: 'alice',
        at: expect.any(String),
        group: 'killed',
        deadLetterId: first.id,
        eventId,
        type: 'thing.happened',
        batchId: 'k-1',
      },
    ]);
  });

  it('an entry whose id is empty or too long to be one is keyed by its stream entry, not folded onto another', async () => {
    const entries = ['', '', 'x'.repeat(201)].map((id, i) => ({
      ...input('bad-ids', 'invalid-event'),
      entryId: `170000000000${i}-0`,
      fields: ['id', id, 'type', 'thing.happened', 'data', '{}'],
    }));
    const written = [];
    for (const entry of entries) written.push(await world.dlq.write(entry));
    expect(written.map((w) => w.created)).toEqual([true, true, true]);
    const listed = await world.dlq.list({ group: 'bad-ids' });
    expect(listed.items.map((i) => i.eventId).sort()).toEqual(entries.map((e) => `entry:${e.entryId}`).sort());
  });

  it('an invalid entry is keyed by its stream entry: a redelivery is one dead letter, another entry with its id is another', async () => {
    // Valid by today's catalog (so it can be replayed), as after a catalog upgrade.
    const withId = (entryId: string, id: string, n: number): DeadLetterInput => ({
      ...input('inv', 'invalid-event'),
      entryId,
      fields: encodeEvent({ ...createEvent({ type: 'thing.happened', data: { n } }), id }),
    });
    const valid = input('inv', 'non-retryable');
    const validId = valid.fields[valid.fields.indexOf('id') + 1] as string;
    const first = withId('1700000000001-0', 'shared', 1);
    const written = [
      await world.dlq.write(first),
      await world.dlq.write(withId('1700000000002-0', 'shared', 2)),
      await world.dlq.write(valid),
      await world.dlq.write(withId('1700000000003-0', validId, 3)),
    ];
    expect(written.map((w) => w.created)).toEqual([true, true, true, true]);
    expect(await world.dlq.write(first)).toEqual({ id: written[0]?.id, created: false });
    // The entry keeps the id it carried; replay and discard find its marker all the same.
    expect((await world.dlq.get(written[0]?.id as string))?.eventId).toBe('shared');
    const markers = () => world.redis.hvals(world.keys.deadLetterMarkers);
    await world.dlq.replay(written[0]?.id as string, { actor: 'ops' });
    await world.dlq.discard(written[1]?.id as string, { actor: 'ops' });
    await world.dlq.discard(written[3]?.id as string, { actor: 'ops' });
    const left = await markers();
    for (const removed of [written[0], written[1], written[3]]) expect(left).not.toContain(removed?.id);
    expect(left).toContain(written[2]?.id);
    // A late write of a removed one's round is still recognised (a redelivery after its replay).
    expect(await world.dlq.write(first)).toEqual({ id: written[0]?.id, created: false });
  });

  it('lists newest first with filters and a cursor that walks every match once', async () => {
    for (let i = 0; i < 7; i++) await world.dlq.write(input('paging', i % 2 ? 'non-retryable' : 'invalid-event', i));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await world.dlq.list({ group: 'paging' }, { limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect([...seen].sort().reverse()).toEqual(seen);
    const onlyNonRetryable = await world.dlq.list({ group: 'paging', reason: 'non-retryable' }, { limit: 100 });
    expect(onlyNonRetryable.items).toHaveLength(3);
    const future = await world.dlq.list({ from: new Date(Date.now() + 60_000) });
    expect(future.items).toHaveLength(0);
    await expect(world.dlq.list({}, { cursor: 'nope' })).rejects.toBeInstanceOf(ValidationError);
  });

  it('bulk dry-run counts by group and reason, flags entries failing today’s schema, and changes nothing', async () => {
    await world.dlq.write(input('dry', 'non-retryable', 'not-a-number'));
    await world.dlq.write(input('dry', 'non-retryable', 2));
    const before = await world.dlq.length();
    const report = await world.dlq.replayMany({ filter: { group: 'dry' }, dryRun: true, actor: 'ops' });
    expect(report).toMatchObject({
      dryRun: true,
      matched: 2,
      replayed: 0,
      byGroup: { dry: 2 },
      byReason: { 'non-retryable': 2 },
    });
    expect(report.invalidToday).toHaveLength(1);
    expect(await world.dlq.length()).toBe(before);
    // The entry failing today's schema is not replayed: it would come straight back.
    const real = await world.dlq.replayMany({ filter: { group: 'dry' }, actor: 'ops', batchId: 'b-1' });
    expect(real.replayed).toBe(1);
    expect(await world.dlq.length()).toBe(before - 1);
    expect((await world.queues.counts('dry')).waiting).toBe(1);
    const audit = await world.audit.list({ limit: 1 });
    expect(audit.items.every((r) => r.batchId === 'b-1' && r.actor === 'ops')).toBe(true);
  });

  it('bulk replay by ids counts a repeated id once and gives it one limit slot', async () => {
    const bad = await world.dlq.write(input('twice', 'non-retryable', 'not-a-number'));
    const good = await world.dlq.write(input('twice', 'non-retryable', 3));
    const ids = [bad.id, bad.id, good.id, bad.id];
    const dry = await world.dlq.replayMany({ ids, limit: 2, dryRun: true, actor: 'ops' });
    expect(dry).toMatchObject({ matched: 2, byGroup: { twice: 2 }, byReason: { 'non-retryable': 2 }, missing: [] });
    expect(dry.invalidToday.map((i) => i.id)).toEqual([bad.id]);
    const real = await world.dlq.replayMany({ ids, limit: 2, actor: 'ops' });
    expect(real).toMatchObject({ matched: 2, replayed: 1, replayedIds: [good.id] });
    expect(real.invalidToday.map((i) => i.id)).toEqual([bad.id]);
    expect((await world.queues.counts('twice')).waiting).toBe(1);
  });

  it('discards with an audit record, and says clearly when an id is gone or unknown', async () => {
    const { id } = await world.dlq.write(input('gone', 'non-retryable'));
    const discarded = await world.dlq.discard(id, { actor: 'ops' });
    expect(discarded.id).toBe(id);
    await expect(world.dlq.replay(id, { actor: 'ops' })).rejects.toThrow(/already discarded/);
    await expect(world.dlq.discard(id, { actor: 'ops' })).rejects.toBeInstanceOf(ConflictError);
    await expect(world.dlq.get('1-1')).resolves.toBeUndefined();
    await expect(world.dlq.replay('1-1', { actor: 'ops' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(world.dlq.get('not-an-id')).rejects.toBeInstanceOf(ValidationError);
  });

  it('bulk discard: a dry run changes nothing; then each picked entry goes, audited, and leaves the counts', async () => {
    for (let i = 0; i < 3; i++) await world.dlq.write(input('purge', i === 0 ? 'invalid-event' : 'non-retryable', i));
    const kept = await world.dlq.write(input('purge-other', 'non-retryable', 9));
    const before = await world.dlq.length();

    const dry = await world.dlq.discardMany({ filter: { group: 'purge' }, dryRun: true, actor: 'ops' });
    expect(dry).toMatchObject({
      dryRun: true,
      matched: 3,
      discarded: 0,
      byGroup: { purge: 3 },
      byReason: { 'invalid-event': 1, 'non-retryable': 2 },
      discardedIds: [],
    });
    expect(await world.dlq.length()).toBe(before);

    const real = await world.dlq.discardMany({ filter: { group: 'purge' }, limit: 2, actor: 'ops', batchId: 'd-1' });
    expect(real).toMatchObject({ dryRun: false, matched: 2, discarded: 2 });
    const rest = await world.dlq.list({ group: 'purge' });
    expect(rest.items).toHaveLength(1);
    expect(real.discardedIds).not.toContain(rest.items[0]?.id);
    expect(await world.dlq.countsByGroup()).toMatchObject({ purge: 1, 'purge-other': 1 });
    const audit = await world.audit.list({ limit: 2 });
    expect(audit.items.map((r) => [r.action, r.batchId, 'deadLetterId' in r ? r.deadLetterId : '']).sort()).toEqual(
      real.discardedIds.map((id) => ['discard', 'd-1', id]).sort(),
    );
    const again = await world.dlq.write(input('purge', 'non-retryable', 1));

    // By ids: an id discarded before is missing, like an unknown one.
    const last = rest.items[0]?.id as string;
    await world.dlq.discard(last, { actor: 'other' });
    const byIds = await world.dlq.discardMany({ ids: [last, '1-1', again.id], actor: 'ops' });
    expect(byIds).toMatchObject({ matched: 1, discarded: 1, discardedIds: [again.id], missing: [last, '1-1'] });

    // Two operators at once: each entry is discarded by one of them, and counted once.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await world.dlq.write(input('race', 'non-retryable', i))).id);
    const [a, b] = await Promise.all([
      world.dlq.discardMany({ ids, actor: 'a' }),
      world.dlq.discardMany({ ids: [...ids].reverse(), actor: 'b' }),
    ]);
    expect((a?.discarded ?? 0) + (b?.discarded ?? 0)).toBe(5);
    expect([...(a?.discardedIds ?? []), ...(b?.discardedIds ?? [])].sort()).toEqual([...ids].sort());
    expect(await world.dlq.get(kept.id)).toBeDefined();
  });
});
