import { ValidationError } from '../errors/index';
import { fieldsToRecord } from '../events/codec';
import type { RedisClient } from '../streams/connection';
import type { StreamfleetKeys } from '../streams/keys';
import { newestFirstPage } from '../streams/newest-first';
import { isStreamId } from '../streams/reply';
import type {
  AuditAction,
  AuditPage,
  AuditRecord,
  DeadLetterAuditRecord,
  NewAuditRecord,
  OperatorContext,
} from './types';

/** The audit stream is trimmed (approximately) to this many records, the newest. */
export const AUDIT_MAX_LEN = 100_000;

/**
 * A record's fields as the audit stream holds them, for the scripts that write a record
 * together with the change it records (`list()` reads them back by name).
 */
export function auditFields(record: NewAuditRecord): string[] {
  return encode(record);
}

/**
 * The fields of an operator's `dead-letter` record but its `deadLetterId`: that is the id
 * Redis gives the dead letter inside the script that writes it, which appends it.
 */
export function deadLetteringAuditFields(
  record: Omit<DeadLetterAuditRecord, 'id' | 'action' | 'deadLetterId'>,
): string[] {
  return encode({ action: 'dead-letter', ...record });
}

/** What every record says of who acted and when: the operator, the time, their bulk call's `batchId`. */
export function byOperator(
  operator: OperatorContext,
  at = new Date().toISOString(),
): { actor: string; at: string; batchId?: string } {
  return { actor: operator.actor, at, ...(operator.batchId ? { batchId: operator.batchId } : {}) };
}

function encode(record: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(record).flatMap(([name, value]) => (value === undefined ? [] : [name, value]));
}

/**
 * The fleet's audit log: one Redis stream of what operators did (dead letters replayed,
 * discarded or made; groups paused and resumed; retries run now), who did it and when.
 * Actions that change Redis in a script of their own write their record in that same script
 * (with `auditFields`), so a change and its record cannot part; `record` is for the others.
 * Safe to share; holds no state.
 */
export class AuditLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamfleetKeys,
  ) {}

  /** Appends records, in one round trip (not atomically: each is a fact of its own). */
  async record(records: readonly NewAuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const record of records) {
      pipeline.xadd(this.keys.audit, 'MAXLEN', '~', AUDIT_MAX_LEN, '*', ...auditFields(record));
    }
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }

  /**
   * Newest first; pass `nextCursor` back as `cursor` for the next (older) page. `filter` keeps
   * the records of one group, action or actor (all given must hold). A filtered page may be
   * short, or empty, and still have a `nextCursor`: one call reads at most `PAGE_SCAN_BUDGET`
   * records, so matches far apart take several calls.
   */
  async list(options: { limit?: number; cursor?: string; filter?: AuditFilter } = {}): Promise<AuditPage> {
    const limit = Math.min(1000, Math.max(1, Math.trunc(options.limit ?? 50)));
    if (options.cursor !== undefined && !isStreamId(options.cursor)) {
      throw new ValidationError('cursor must be a stream entry id like 1700000000000-0', [
        { field: 'cursor', message: 'not a stream entry id' },
      ]);
    }
    const filter = options.filter ?? {};
    const filtered = filter.group !== undefined || filter.action !== undefined || filter.actor !== undefined;
    const chunk = filtered ? Math.max(limit * 2, 100) : limit;
    const end = options.cursor ? `(${options.cursor}` : '+';
    return newestFirstPage(this.redis, this.keys.audit, { end, lower: '-' }, limit, chunk, (id, fields) => {
      const record = parseRecord(id, fields);
      return record && matches(record, filter) ? record : undefined;
    });
  }
}

/** Which audit records a listing keeps: all given conditions must hold. */
export interface AuditFilter {
  group?: string;
  action?: AuditAction;
  actor?: string;
}

function matches(record: AuditRecord, filter: AuditFilter): boolean {
  return (
    (filter.group === undefined || record.group === filter.group) &&
    (filter.action === undefined || record.action === filter.action) &&
    (filter.actor === undefined || record.actor === filter.actor)
  );
}

/**
 * A record read back. Records written before the log covered groups (replays, discards and
 * dead-letterings only) have the same fields and read the same. An action this version does
 * not know (written by a newer one during a rolling upgrade) is left out rather than shown as
 * something it is not.
 */
function parseRecord(id: string, fields: string[]): AuditRecord | undefined {
  const r = fieldsToRecord(fields);
  const base = {
    id,
    actor: r.actor ?? '',
    at: r.at ?? '',
    group: r.group ?? '',
    ...(r.batchId ? { batchId: r.batchId } : {}),
  };
  const event = { eventId: r.eventId ?? '', type: r.type ?? '' };
  switch (r.action) {
    case 'replay':
    case 'discard':
    case 'dead-letter':
      return { ...base, action: r.action, deadLetterId: r.deadLetterId ?? '', ...event };
    case 'run-now':
      return { ...base, action: r.action, jobId: r.jobId ?? '', ...event };
    case 'pause':
    case 'resume':
      return { ...base, action: r.action };
    default:
      return undefined;
  }
}
