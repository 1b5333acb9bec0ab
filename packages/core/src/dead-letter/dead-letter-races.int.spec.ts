import { describe, expect, it } from 'vitest';
import type { RetryQueues } from '../retry/retry-queues';
import { DeadLetterWorld } from '../testing/dead-letter-world';
import { deadLetterInput } from '../testing/index';
import { DeadLetterStream } from './dead-letter-stream';

const world = new DeadLetterWorld().useHooks();

const write = async (group: string) =>
  (
    await world.dlq.write(
      deadLetterInput(group, 'retries-exhausted', { type: 'thing.happened', data: { n: 1 } }, { attempts: 3 }),
    )
  ).id;

/** A DeadLetterStream whose replays run `meanwhile` once their retry job is stored, before they take the entry. */
function streamWith(meanwhile: () => Promise<unknown>): DeadLetterStream {
  let ran: Promise<unknown> | undefined;
  const queues = new Proxy(world.queues, {
    get(target, prop) {
      if (prop === 'schedule') {
        return async (...args: Parameters<RetryQueues['schedule']>) => {
          const stored = target.schedule(...args);
          target.flush();
          const jobId = await stored;
          ran ??= meanwhile();
          await ran.catch(() => undefined);
          return jobId;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new DeadLetterStream({ redis: world.redis, keys: world.keys, retryQueues: queues, catalog: world.catalog });
}

const retrying = async (group: string) => {
  const c = await world.queues.counts(group);
  return c.waiting + c.delayed + c.active;
};

describe('replay racing another operator', () => {
  it('a discard that takes the entry while a replay stores its job wins: the job is withdrawn, nothing runs', async () => {
    const id = await write('race-discard');
    const dlq = streamWith(() => world.dlq.discard(id, { actor: 'discarder' }));

    await expect(dlq.replay(id, { actor: 'replayer' })).rejects.toMatchObject({ code: 'DLQ_ENTRY_DISCARDED' });

    expect(await retrying('race-discard')).toBe(0);
    const { items } = await world.audit.list({ limit: 10 });
    expect(items.filter((r) => 'deadLetterId' in r && r.deadLetterId === id).map((r) => [r.action, r.actor])).toEqual([
      ['discard', 'discarder'],
    ]);
  });

  it('two replays at once: one wins, the other is told so, and the group gets one job, due now', async () => {
    const id = await write('race-replay');
    const dlq = streamWith(() => world.dlq.replay(id, { actor: 'first' }));

    await expect(dlq.replay(id, { actor: 'second' })).rejects.toMatchObject({ code: 'DLQ_ENTRY_REPLAYED' });

    expect(await world.queues.counts('race-replay')).toMatchObject({ waiting: 1, delayed: 0 });
  });

  it('a replay alone makes its job due at once', async () => {
    const id = await write('race-none');
    const { jobId } = await world.dlq.replay(id, { actor: 'alone' });
    expect(await world.queues.counts('race-none')).toMatchObject({ waiting: 1, delayed: 0 });
    expect(jobId).toContain('race-none');
  });
});
