import { describe, expect, it } from 'vitest';
import { RetryPolicy } from '../retry/retry-policy';
import { RetryWorker } from '../retry/retry-worker';
import { DeadLetterWorld } from '../testing/dead-letter-world';
import { deadLetterInput, waitFor } from '../testing/index';
import { MAX_FAILURE_HISTORY } from './dead-letter-stream';
import type { DeadLetterEntry, FailureRecord } from './types';

const world = new DeadLetterWorld().useHooks();
const { keys, catalog } = world;
const FIRST_FAILED_AT = '2020-01-01T00:00:00.000Z';

const failure = (attempt: number, message = `fail #${attempt}`): FailureRecord => ({
  attempt,
  at: FIRST_FAILED_AT,
  name: 'Error',
  message,
});
const rounds = (entry: DeadLetterEntry | undefined) => entry?.failures.map((f) => [f.replay, f.attempt, f.message]);

describe('failure history across replays', () => {
  it('a replay that fails again keeps the first failure time and every earlier attempt, each naming its round', async () => {
    const group = 'history';
    let calls = 0;
    const worker = new RetryWorker({
      connection: world.redis,
      keys,
      definition: {
        group,
        stream: 'things',
        handler: () => {
          calls++;
          throw new Error(`still broken #${calls}`);
        },
      },
      catalog,
      policy: new RetryPolicy({ maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 10, jitter: 0 }),
      deadLetters: world.dlq,
      maxDeliveries: 5,
    });
    worker.start();
    try {
      // As the consumer writes it: the original round's failures carry no round.
      const { id } = await world.dlq.write(
        deadLetterInput(
          group,
          'retries-exhausted',
          { type: 'thing.happened', data: { n: 1 } },
          { attempts: 2, failures: [failure(1), failure(2)], firstFailedAt: FIRST_FAILED_AT },
        ),
      );
      const original = await world.dlq.get(id);
      expect(rounds(original)).toEqual([
        [0, 1, 'fail #1'],
        [0, 2, 'fail #2'],
      ]);

      const replayedOnce = async (from: string, replayCount: number) => {
        await world.dlq.replay(from, { actor: 'ops' });
        return waitFor(async () => (await world.dlq.list({ group })).items.find((e) => e.replayCount === replayCount), {
          message: `the replay #${replayCount} dead-lettered again`,
        });
      };
      const second = await replayedOnce(id, 1);
      expect(second).toMatchObject({ reason: 'retries-exhausted', attempts: 2, firstFailedAt: FIRST_FAILED_AT });
      expect(rounds(second)).toEqual([
        [0, 1, 'fail #1'],
        [0, 2, 'fail #2'],
        [1, 1, 'still broken #1'],
        [1, 2, 'still broken #2'],
      ]);

      const third = await replayedOnce(second.id, 2);
      expect(third).toMatchObject({ attempts: 2, replayCount: 2, firstFailedAt: FIRST_FAILED_AT });
      expect(rounds(third)?.map(([round, attempt]) => [round, attempt])).toEqual([
        [0, 1],
        [0, 2],
        [1, 1],
        [1, 2],
        [2, 1],
        [2, 2],
      ]);
      expect(await world.dlq.countsByGroup()).toMatchObject({ [group]: 1 });
    } finally {
      await worker.close();
    }
  });

  it(`keeps only the newest ${MAX_FAILURE_HISTORY} failure records`, async () => {
    const failures = Array.from({ length: MAX_FAILURE_HISTORY + 10 }, (_, i) => ({ ...failure(i + 1), replay: i }));
    const { id } = await world.dlq.write(
      deadLetterInput('capped', 'non-retryable', { type: 'thing.happened', data: { n: 1 } }, { failures }),
    );
    const entry = await world.dlq.get(id);
    expect(entry?.failures).toHaveLength(MAX_FAILURE_HISTORY);
    expect(entry?.failures[0]).toMatchObject({ attempt: 11, replay: 10 });
    expect(entry?.failures.at(-1)).toMatchObject({ attempt: MAX_FAILURE_HISTORY + 10 });
  });

  it('reads entries written before rounds were recorded: their failures belong to the entry’s round', async () => {
    const id = await world.redis.xadd(
      keys.deadLetter,
      '*',
      'group',
      'legacy',
      'type',
      'thing.happened',
      'reason',
      'non-retryable',
      'replayCount',
      '2',
      'failures',
      JSON.stringify([failure(1)]),
    );
    expect((await world.dlq.get(id as string))?.failures).toEqual([{ ...failure(1), replay: 2 }]);
  });
});
