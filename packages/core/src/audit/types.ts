import type { NewestFirstPage } from '../streams/newest-first';

/** What every audit record says: who did it, when, and to which consumer group. */
interface AuditRecordBase {
  /** The audit stream entry id (Redis's clock): records are listed newest first by it. */
  id: string;
  actor: string;
  /** When the action took effect (ISO 8601, the acting process's clock). */
  at: string;
  group: string;
  /** Groups the records of one bulk action (the `batchId` its answer gave). */
  batchId?: string;
}

/**
 * An action on a dead letter: `replay`, `discard`, or `dead-letter` (an operator dead-lettered
 * a retrying event; recorded when the retry worker writes its dead letter, with it).
 */
export interface DeadLetterAuditRecord extends AuditRecordBase {
  action: 'replay' | 'discard' | 'dead-letter';
  deadLetterId: string;
  eventId: string;
  type: string;
}

/** An operator made a delayed retry job due now (`/admin/retries/{group}/run-now`). */
export interface RunNowAuditRecord extends AuditRecordBase {
  action: 'run-now';
  jobId: string;
  eventId: string;
  type: string;
}

/** An operator paused or resumed a consumer group; only a change is recorded, not a no-op. */
export interface GroupAuditRecord extends AuditRecordBase {
  action: 'pause' | 'resume';
}

/** One entry of the audit log; `action` says which of the shapes it has. */
export type AuditRecord = DeadLetterAuditRecord | RunNowAuditRecord | GroupAuditRecord;

export type AuditAction = AuditRecord['action'];

/** Every action the audit log records. */
export const AUDIT_ACTIONS = [
  'replay',
  'discard',
  'dead-letter',
  'run-now',
  'pause',
  'resume',
] as const satisfies readonly AuditAction[];

/** A record to write: the id is the stream entry's, given by Redis. */
export type NewAuditRecord = AuditRecord extends infer R ? (R extends AuditRecord ? Omit<R, 'id'> : never) : never;

/** A page of the audit log, newest first; pass `nextCursor` back as `cursor` for the next (older) one. */
export type AuditPage = NewestFirstPage<AuditRecord>;

/** Who is acting, for the audit log: every operator action that changes something takes one. */
export interface OperatorContext {
  /** Who asked: shown in the audit log. */
  actor: string;
  /** Groups a bulk action under one id in the audit log. */
  batchId?: string;
}
