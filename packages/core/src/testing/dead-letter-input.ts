import type { DeadLetterInput } from '../dead-letter/types';
import { encodeEvent } from '../events/codec';
import { createEvent, type NewEvent } from '../events/envelope';

/**
 * A dead letter for tests: one failed attempt of a fresh event of `type` with `data` (and
 * `id` / `aggregateId` when given), on
 * stream `things`, dead-lettered for `reason` by `group`; anything else in `overrides`.
 */
export function deadLetterInput(
  group: string,
  reason: DeadLetterInput['reason'],
  event: Pick<NewEvent, 'type' | 'data' | 'id' | 'aggregateId'>,
  overrides: Partial<DeadLetterInput> = {},
): DeadLetterInput {
  return {
    group,
    stream: 'things',
    entryId: '1-0',
    fields: encodeEvent(createEvent(event)),
    reason,
    attempts: 1,
    replayCount: 0,
    lastError: { name: 'Error', message: 'boom' },
    failures: [],
    firstFailedAt: new Date().toISOString(),
    ...overrides,
  };
}
