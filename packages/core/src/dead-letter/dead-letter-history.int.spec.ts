import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EventCatalog } from '../events/catalog';
import { RetryPolicy } from '../retry/retry-policy';
import { RetryQueues } from '../retry/retry-queues';
import { RetryWorker } from '../retry/retry-worker';
import { StreamfleetKeys } from '../streams/keys';
import { cleanupPrefix, deadLetterInput, testRedisUrl, uniquePrefix, waitFor } from '../testing/index';
import { DeadLetterStream, MAX_FAILURE_HISTORY } from './dead-letter-stream';
import type { DeadLetterEntry, FailureRecord } from './types';

const catalog = new EventCatalog().register({
  type: 'thing.happened',
  schemaVersion: 1,
  stream: 'things',
  schema: z.object({ n: z.number() }),
});
const prefix = uniquePrefix();
const keys = new StreamfleetKeys(prefix);
const FIRST_FAILED_AT = '2020-01-01T00:00:00.000Z';
let redis: Redis;
let queues: RetryQueues;
let dlq: DeadLetterStream;

const failure = (attempt: number, message = `fail #${attempt}`): FailureRecord => ({
  attempt,
  at: FIRST_FAILED_AT,
  name: 'Error',
  message,
});
const rounds = (entry: DeadLetterEntry | undefined) => entry?.failures.map((f) => [f.replay, f.attempt, f.message]);

beforeAll(() => {
  redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  queues = new RetryQueues({ connection: redis, keys });
  dlq = new DeadLetterStream({ redis, keys, retryQueues: queues, catalog });
});

afterAll(async () => {
  await queues.close();
  redis.disconnect();
  await cleanupPrefix(testRedisUrl(), prefix);
});

describe('failure history across replays', () => {
  it('a replay that fails again keeps the first failure time and every earlier attempt, each naming its round', async () => {
    const group = 'history';
    let calls = 0;
    const worker = new RetryWorker({
      connection: redis,
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
      deadLetters: dlq,
      maxDeliveries: 5,
    });
    worker.start();
    try {
      // As the consumer writes it: the original round's failures carry no round.
      const { id } = await dlq.write(
        deadLetterInput(
          group,
          'retries-exhausted',
          { type: 'thing.happened', data: { n: 1 } },
          { attempts: 2, failures: [failure(1), failure(2)], firstFailedAt: FIRST_FAILED_AT },
        ),
      );
      const original = await dlq.get(id);
      expect(rounds(original)).toEqual([
        [0, 1, 'fail #1'],
        [0, 2, 'fail #2'],
      ]);

      const replayedOnce = async (from: string, replayCount: number) => {
        await dlq.replay(from, { actor: 'ops' });
        return waitFor(async () => (await dlq.list({ group })).items.find((e) => e.replayCount === replayCount), {
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
      expect(await dlq.countsByGroup()).toMatchObject({ [group]: 1 });
    } finally {
      await worker.close();
    }
  });

  it(`keeps only the newest ${MAX_FAILURE_HISTORY} failure records`, async () => {
    const failures = Array.from({ length: MAX_FAILURE_HISTORY + 10 }, (_, i) => ({ ...failure(i + 1), replay: i }));
    const { id } = await dlq.write(
      deadLetterInput('capped', 'non-retryable', { type: 'thing.happened', data: { n: 1 } }, { failures }),
    );
    const entry = await dlq.get(id);
    expect(entry?.failures).toHaveLength(MAX_FAILURE_HISTORY);
    expect(entry?.failures[0]).toMatchObject({ attempt: 11, replay: 10 });
    expect(entry?.failures.at(-1)).toMatchObject({ attempt: MAX_FAILURE_HISTORY + 10 });
  });

  it('reads entries written before rounds were recorded: their failures belong to the entry’s round', async () => {
    const id = await redis.xadd(
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
    expect((await dlq.get(id as string))?.failures).toEqual([{ ...failure(1), replay: 2 }]);
  });
});
