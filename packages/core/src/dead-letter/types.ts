import type { ErrorSummary, FieldIssue } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import type { NewestFirstPage } from '../streams/newest-first';

/** Why an event was dead-lettered; `operator`: an operator dead-lettered it while it waited to be retried. */
export const DEAD_LETTER_REASONS = [
  'retries-exhausted',
  'non-retryable',
  'invalid-event',
  'max-deliveries',
  'operator',
] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** One failed attempt: when, and what it threw. */
export interface FailureRecord {
  /** Attempt number within its round: attempts restart at 1 after a replay. */
  attempt: number;
  at: string;
  name: string;
  message: string;
  /**
   * The round the attempt belongs to: 0 for the original deliveries, n for the n-th replay.
   * Absent means the round of whatever holds the record (its entry's or retry job's
   * `replayCount`), as in entries written before rounds were recorded; entries read back
   * from the dead-letter stream always carry it.
   */
  replay?: number;
}

/** What every dead letter records of the failure, as written and as read back. */
interface DeadLetterRecord {
  group: string;
  stream: string;
  /** The source stream entry id. */
  entryId: string;
  reason: DeadLetterReason;
  attempts: number;
  replayCount: number;
  lastError: ErrorSummary;
  /**
   * Every failed attempt of every round (original deliveries and each replay), oldest
   * first; only the last `MAX_FAILURE_HISTORY` (50) are kept.
   */
  failures: FailureRecord[];
  /** When the event first failed in this group: kept across replays. */
  firstFailedAt: string;
}

/** What a caller hands the dead-letter stream. */
export interface DeadLetterInput extends DeadLetterRecord {
  /** The raw stream entry fields, kept verbatim so even an undecodable event survives. */
  fields: readonly string[];
}

export interface DeadLetterEntry extends DeadLetterRecord {
  /** Dead-letter stream entry id; also the handle operators use. */
  id: string;
  eventId: string;
  type: string;
  aggregateId?: string;
  /** When it was dead-lettered: the entry id's time (Redis's clock), the one the time filters use. */
  deadLetteredAt: string;
  /** The event as it was on the stream, field by field. */
  event: Record<string, string>;
}

/**
 * Which entries an action picks. All given conditions must hold; the list and the bulk
 * actions (by filter or by ids) read it the same way.
 */
export interface DeadLetterFilter {
  group?: string;
  type?: string;
  reason?: DeadLetterReason;
  /** The event's id: every dead letter of one event (one per group that failed it, and per round). */
  eventId?: string;
  /** The event's aggregate, e.g. an order id: what went wrong for this order? */
  aggregateId?: string;
  /** Inclusive lower bound on the dead-lettered time. */
  from?: Date;
  /** Inclusive upper bound on the dead-lettered time. */
  to?: Date;
}

/** A page of `list`, newest first; pass `nextCursor` back as `cursor` for the next (older) one. */
export type DeadLetterPage = NewestFirstPage<DeadLetterEntry>;

/**
 * A dead letter's event decoded against today's catalog: the envelope consumers would be
 * handed, or why they would not be (a replay would then come straight back as invalid-event).
 */
export type DeadLetterDecoding =
  | { ok: true; envelope: EventEnvelope }
  | { ok: false; error: string; issues: FieldIssue[] };
