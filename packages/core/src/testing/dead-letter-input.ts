import type { DeadLetterInput } from '../dead-letter/types';
import { encodeEvent } from '../events/codec';
import { createEvent } from '../events/envelope';

/**
 * A dead letter for tests: one failed attempt of a fresh event of `type` with `data`, on
 * stream `things`, dead-lettered for `reason` by `group`; anything else in `overrides`.
 */
export function deadLetterInput(
  group: string,
  reason: DeadLetterInput['reason'],
  event: { type: string; data: unknown },
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
