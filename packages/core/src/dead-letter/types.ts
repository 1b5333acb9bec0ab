import type { ErrorSummary, FieldIssue } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';

export const DEAD_LETTER_REASONS = ['retries-exhausted', 'non-retryable', 'invalid-event', 'max-deliveries'] as const;
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number];

/** One failed attempt: when, and what it threw. */
export interface FailureRecord {
  attempt: number;
  at: string;
  name: string;
  message: string;
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
  failures: FailureRecord[];
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
  deadLetteredAt: string;
  /** The event as it was on the stream, field by field. */
  event: Record<string, string>;
}

export interface DeadLetterFilter {
  group?: string;
  type?: string;
  reason?: DeadLetterReason;
  /** Inclusive lower bound on the dead-lettered time. */
  from?: Date;
  /** Inclusive upper bound on the dead-lettered time. */
  to?: Date;
}

export interface DeadLetterPage {
  items: DeadLetterEntry[];
  /** Pass back as `cursor` for the next (older) page; absent on the last page. */
  nextCursor?: string;
}

export interface AuditRecord {
  id: string;
  action: 'replay' | 'discard';
  actor: string;
  at: string;
  deadLetterId: string;
  group: string;
  eventId: string;
  type: string;
  batchId?: string;
}

export interface OperatorContext {
  /** Who asked: shown in the audit log. */
  actor: string;
  /** Groups a bulk action under one id in the audit log. */
  batchId?: string;
}

/**
 * A dead letter's event decoded against today's catalog: the envelope consumers would be
 * handed, or why they would not be (a replay would then come straight back as invalid-event).
 */
export type DeadLetterDecoding =
  | { ok: true; envelope: EventEnvelope }
  | { ok: false; error: string; issues: FieldIssue[] };
