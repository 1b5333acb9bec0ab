import { readFileSync } from 'node:fs';
import { AUDIT_MAX_LEN, auditFields, byOperator, deadLetteringAuditFields } from '../audit/audit-log';
import type { OperatorContext } from '../audit/types';
import { ConflictError, DomainError, type ErrorSummary, NotFoundError, ValidationError } from '../errors/index';
import type { EventCatalog } from '../events/catalog';
import { decodeEvent, fieldsToRecord, MAX_ENVELOPE_TEXT } from '../events/codec';
import { type Logger, silentLogger } from '../logging/index';
import type { RetryQueues } from '../retry/retry-queues';
import type { RedisClient } from '../streams/connection';
import type { StreamfleetKeys } from '../streams/keys';
import { newestFirstPage } from '../streams/newest-first';
import { isStreamId, streamIdTime } from '../streams/reply';
import {
  DEAD_LETTER_REASONS,
  type DeadLetterDecoding,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterInput,
  type DeadLetterPage,
  type DeadLetterReason,
  type FailureRecord,
} from './types';

const script = (name: string) => readFileSync(new URL(`./scripts/${name}`, import.meta.url), 'utf8');
const WRITE_SCRIPT = script('write-dead-letter-6.lua');
const REMOVE_SCRIPT = script('remove-dead-letter-6.lua');

/** How long "already replayed/discarded" is remembered for an entry id. */
const TOMBSTONE_TTL_SECONDS = 7 * 24 * 3600;
/**
 * An entry keeps at most this many failure records, the newest: replays carry the history
 * on, and an event replayed into failure again and again must not grow its entry for ever.
 */
export const MAX_FAILURE_HISTORY = 50;
/** Bulk actions by ids look them up this many at a time. */
const LOOKUP_CHUNK = 500;
/**
 * How long a replay's job is held back while the replay takes its entry (then it is made due
 * at once): the time a discard of the same entry has to withdraw it, and the delay after which
 * it runs anyway if the replaying process died in between.
 */
const REPLAY_HOLD_MS = 60_000;
/** Entries a bulk replay passes over (failing today's schema) in one call, at most. */
const MAX_SKIPPED = 10_000;

type DeadLetterRedis = RedisClient & {
  sfWriteDeadLetter(...args: string[]): Promise<[string, number]>;
  sfRemoveDeadLetter(...args: string[]): Promise<number>;
};

export interface DeadLetterStreamOptions {
  redis: RedisClient;
  keys: StreamfleetKeys;
  /** Needed for replay: the dead event goes back to its group's retry queue. */
  retryQueues?: RetryQueues;
  /** Needed to check that entries still pass today's schemas before replaying them (else none is checked). */
  catalog?: EventCatalog;
  logger?: Logger;
}

export interface ReplayResult {
  id: string;
  group: string;
  eventId: string;
  jobId: string;
}

/**
 * The entries a bulk replay or discard acts on: `ids` (narrowed by `filter` if given: the
 * same conditions, time range included, as a list or a bulk action by filter), else `filter`.
 */
export interface BulkOptions extends OperatorContext {
  ids?: string[];
  filter?: DeadLetterFilter;
  /** At most this many entries are acted on (default 100, max 10000); `more` says if others matched. */
  limit?: number;
  /** Say what would be done, and do nothing. */
  dryRun?: boolean;
}

export type BulkReplayOptions = BulkOptions;

/** What a bulk replay or discard picked: in a dry run, what it would act on. */
export interface BulkSelection {
  dryRun: boolean;
  /** Entries picked (at most `limit`). */
  matched: number;
  /** More entries matched than `limit`: they were left alone. */
  more: boolean;
  /**
   * The picked entries' ids: newest first by filter, in the order asked by ids. A discard
   * acts on each (a dry run would); a replay on each but those in `invalidToday`.
   */
  matchedIds: string[];
  byGroup: Record<string, number>;
  byReason: Record<string, number>;
  /** Ids that were asked for but are not in the dead-letter stream. */
  missing: string[];
  /** Ids that were asked for and are in the dead-letter stream, but that the filter leaves out. */
  notMatching: string[];
}

/** What the remover of a dead-letter entry recorded: which action, who, when. */
export interface DeadLetterRemoval {
  action: 'replay' | 'discard';
  actor: string;
  at: string;
}

export interface BulkReplayResult extends BulkSelection {
  replayed: number;
  /**
   * Picked entries whose event fails today's schema: a replay would bring them straight back
   * as invalid-event, so none is replayed, dry run or not; they stay in the dead-letter stream.
   */
  invalidToday: { id: string; error: string }[];
  replayedIds: string[];
}

export interface BulkDiscardResult extends BulkSelection {
  discarded: number;
  discardedIds: string[];
}

/**
 * The fleet's one dead-letter stream. Writes are idempotent per (group, event, replay round),
 * an invalid entry's per (group, stream entry, replay round);
 * replay sends an event back to the group that failed it, and only that group, with fresh
 * attempts; replays and discards leave an audit record. Safe to share; holds no state.
 */
export class DeadLetterStream {
  private readonly redis: DeadLetterRedis;
  private readonly keys: StreamfleetKeys;
  private readonly retryQueues: RetryQueues | undefined;
  private readonly catalog: EventCatalog | undefined;
  private readonly logger: Logger;

  constructor(options: DeadLetterStreamOptions) {
    const redis = options.redis as DeadLetterRedis;
    if (typeof redis.sfWriteDeadLetter !== 'function') {
      redis.defineCommand('sfWriteDeadLetter', { numberOfKeys: 6, lua: WRITE_SCRIPT });
      redis.defineCommand('sfRemoveDeadLetter', { numberOfKeys: 6, lua: REMOVE_SCRIPT });
    }
    this.redis = redis;
    this.keys = options.keys;
    this.retryQueues = options.retryQueues;
    this.catalog = options.catalog;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Writes the entry unless this (group, event, replay round) is already dead-lettered (for an
   * `invalid-event`, this stream entry rather than the id it carries).
   * With `ackEntryId`, the source entry is XACKed in the same script. With `operator` (an
   * operator dead-lettered a retrying event), a `dead-letter` audit record is appended in the
   * same script too, when the entry is written: a write that finds it there already records
   * nothing, so the record is made once however often a crashed job runs again.
   */
  async write(
    input: DeadLetterInput,
    options: { ackEntryId?: string; operator?: OperatorContext } = {},
  ): Promise<{ id: string; created: boolean }> {
    const record = fieldsToRecord(input.fields);
    // An id that cannot be an event's (empty, or longer than any valid one) names nothing to
    // dedupe by: key the dead letter by its stream entry, as when the id is missing.
    const eventId = record.id && record.id.length <= MAX_ENVELOPE_TEXT ? record.id : `entry:${input.entryId}`;
    const failures = input.failures.slice(-MAX_FAILURE_HISTORY).map((f) => withRound(f, input.replayCount));
    const fields: string[] = [
      'group',
      input.group,
      'stream',
      input.stream,
      'entryId',
      input.entryId,
      'eventId',
      eventId,
      'type',
      record.type ?? '',
      'aggregateId',
      record.aggregateId ?? '',
      'reason',
      input.reason,
      'attempts',
      String(input.attempts),
      'replayCount',
      String(input.replayCount),
      'error',
      JSON.stringify(input.lastError),
      'failures',
      JSON.stringify(failures),
      'firstFailedAt',
      input.firstFailedAt,
      'event',
      JSON.stringify(record),
    ];
    const { operator } = options;
    const audit = operator
      ? deadLetteringAuditFields({ group: input.group, eventId, type: record.type ?? '', ...byOperator(operator) })
      : [];
    const mark = marker({ ...input, eventId });
    const [id, created] = await this.redis.sfWriteDeadLetter(
      this.keys.deadLetter,
      this.keys.deadLetterMarkers,
      this.keys.deadLetterCounts,
      this.keys.stream(input.stream),
      this.keys.deadLetterMarkerGone(mark),
      this.keys.audit,
      mark,
      input.group,
      options.ackEntryId ?? '',
      String(AUDIT_MAX_LEN),
      String(audit.length),
      ...audit,
      ...fields,
    );
    return { id, created: created === 1 };
  }

  /** The entry whose id is exactly `id`; a bare millisecond (`1700000000000`) names none. */
  async get(id: string): Promise<DeadLetterEntry | undefined> {
    assertId(id);
    // Redis widens a partial id to a range (and reads `01-0` as `1-0`): only an equal id counts.
    const rows = (await this.redis.xrange(this.keys.deadLetter, id, id, 'COUNT', 1)) as [string, string[]][];
    const row = rows[0];
    return row && row[0] === id ? parseEntry(row[0], row[1]) : undefined;
  }

  /** Newest first. Filters apply server-side of this call; pagination is by cursor (an entry id). */
  async list(filter: DeadLetterFilter = {}, page: { cursor?: string; limit?: number } = {}): Promise<DeadLetterPage> {
    const limit = clamp(page.limit ?? 50, 1, 1000);
    if (page.cursor !== undefined) assertId(page.cursor, 'cursor');
    const lower = filter.from ? String(filter.from.getTime()) : '-';
    const end = upperBound(page.cursor, filter.to);
    // The range read already keeps to `from`/`to`; `matches` is the one whole definition.
    return newestFirstPage(
      this.redis,
      this.keys.deadLetter,
      { end, lower },
      limit,
      Math.max(limit * 2, 100),
      (id, fields) => {
        const entry = parseEntry(id, fields);
        return matches(entry, filter) ? entry : undefined;
      },
    );
  }

  /**
   * Replays one entry to the group that failed it. Rejects an id already replayed or
   * discarded, and (a `DomainError`, `DLQ_EVENT_INVALID`) an entry whose event fails today's
   * schema: it would come straight back as invalid-event, so it stays where it is.
   */
  async replay(id: string, context: OperatorContext): Promise<ReplayResult> {
    const entry = await this.get(id);
    if (!entry) throw await this.goneError(id);
    const decoded = this.decode(entry);
    if (decoded && !decoded.ok) {
      throw new DomainError(
        'DLQ_EVENT_INVALID',
        `dead-letter entry ${id} was not replayed: its event fails today's schema (${decoded.error}), so it ` +
          'would come straight back as invalid-event',
        { details: { id, envelopeError: { message: decoded.error, errors: decoded.issues } } },
      );
    }
    return this.replayEntry(entry, context);
  }

  /**
   * Replays the picked entries, each audited, except those whose event fails today's schema
   * (`invalidToday`: they stay in the dead-letter stream). An entry another operator replayed
   * or discarded meanwhile is left out of `replayed`.
   */
  async replayMany(options: BulkReplayOptions): Promise<BulkReplayResult> {
    // Entries failing today's schema take no `limit` slot: a page of them must not hide the
    // replayable entries behind them from every later call.
    const { entries, selection, skipped } = await this.select(options, (entry) => this.schemaProblem(entry));
    const result: BulkReplayResult = { ...selection, replayed: 0, invalidToday: skipped, replayedIds: [] };
    const invalid = new Set(skipped.map((s) => s.id));
    const replayable = entries.filter((entry) => !invalid.has(entry.id));
    if (result.dryRun) return result;
    for (const entry of replayable) {
      try {
        await this.replayEntry(entry, options);
        result.replayed++;
        result.replayedIds.push(entry.id);
      } catch (err) {
        // Another operator got there first; it is not ours to count.
        if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      }
    }
    return result;
  }

  /**
   * Discards in bulk what `replayMany` would replay (same selection, limit and dry run), each
   * entry with its audit record. An entry another operator replayed or discarded meanwhile is
   * left out of `discarded`.
   */
  async discardMany(options: BulkOptions): Promise<BulkDiscardResult> {
    const { entries, selection } = await this.select(options);
    const result: BulkDiscardResult = { ...selection, discarded: 0, discardedIds: [] };
    if (result.dryRun) return result;
    for (const entry of entries) {
      if (!(await this.remove(entry, 'discard', options))) continue;
      result.discarded++;
      result.discardedIds.push(entry.id);
    }
    return result;
  }

  /**
   * The entries a bulk action picks, at most `limit`, their counts by group and reason, and
   * whether more matched. By ids, every id is looked up: the first `limit` that exist and
   * match are picked, ids not there go to `missing`, ids the filter leaves out to `notMatching`.
   */
  private async select(
    options: BulkOptions,
    skip?: (entry: DeadLetterEntry) => string | undefined,
  ): Promise<{ entries: DeadLetterEntry[]; selection: BulkSelection; skipped: { id: string; error: string }[] }> {
    const limit = clamp(options.limit ?? 100, 1, 10_000);
    const filter = options.filter ?? {};
    const missing: string[] = [];
    const notMatching: string[] = [];
    // Picked in order; `skip`ped ones are picked too but take no `limit` slot. One past the
    // limit is read (by filter) to tell whether more matched.
    const entries: DeadLetterEntry[] = [];
    const skipped: { id: string; error: string }[] = [];
    let counted = 0;
    let more = false;
    // Once `limit` entries count (or too many were skipped), the next match only says there is more.
    const pick = (entry: DeadLetterEntry): void => {
      if (counted === limit || skipped.length >= MAX_SKIPPED) {
        more = true;
        return;
      }
      const problem = skip?.(entry);
      if (problem === undefined) counted++;
      else skipped.push({ id: entry.id, error: problem });
      entries.push(entry);
    };
    if (options.ids && options.ids.length > 0) {
      for (const id of options.ids) assertId(id);
      // A repeated id is one entry: counted once, and it takes one `limit` slot.
      const ids = [...new Set(options.ids)];
      for (let i = 0; i < ids.length; i += LOOKUP_CHUNK) {
        const chunk = ids.slice(i, i + LOOKUP_CHUNK);
        const found = await Promise.all(chunk.map((id) => this.get(id)));
        chunk.forEach((id, j) => {
          const entry = found[j];
          if (!entry) missing.push(id);
          else if (!matches(entry, filter)) notMatching.push(id);
          else pick(entry);
        });
      }
    } else {
      let cursor: string | undefined;
      do {
        const page = await this.list(filter, {
          limit: Math.min(1000, limit + 1 - counted),
          ...(cursor ? { cursor } : {}),
        });
        for (const entry of page.items) {
          pick(entry);
          if (more) break;
        }
        cursor = page.nextCursor;
      } while (cursor && !more);
    }
    const byGroup: Record<string, number> = {};
    const byReason: Record<string, number> = {};
    for (const entry of entries) {
      byGroup[entry.group] = (byGroup[entry.group] ?? 0) + 1;
      byReason[entry.reason] = (byReason[entry.reason] ?? 0) + 1;
    }
    const selection: BulkSelection = {
      dryRun: options.dryRun ?? false,
      matched: entries.length,
      more,
      matchedIds: entries.map((e) => e.id),
      byGroup,
      byReason,
      missing,
      notMatching,
    };
    return { entries, selection, skipped };
  }

  /** Deletes an entry for good, with an audit record. */
  async discard(id: string, context: OperatorContext): Promise<DeadLetterEntry> {
    const entry = await this.get(id);
    if (!entry) throw await this.goneError(id);
    const removed = await this.remove(entry, 'discard', context);
    if (!removed) throw await this.goneError(id);
    return entry;
  }

  async length(): Promise<number> {
    return this.redis.xlen(this.keys.deadLetter);
  }

  /** Number of dead-lettered entries per group. */
  async countsByGroup(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.keys.deadLetterCounts);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  private async replayEntry(entry: DeadLetterEntry, context: OperatorContext): Promise<ReplayResult> {
    const queues = this.retryQueues;
    if (!queues) throw new Error('DeadLetterStream needs retryQueues to replay');
    const fields = Object.entries(entry.event).flat();
    const replayCount = entry.replayCount + 1;
    // Job first, held back; then the entry is taken; then the job is made due. A crash in
    // between leaves the entry listed and the job due after the hold, and a second replay of
    // the entry maps to the same job id, so the group still runs it once. An operator who took
    // the entry first (a discard) gets the held job withdrawn before it can run. The job
    // carries the entry's history (each record naming its round) and first failure time, so a
    // dead letter of the replay keeps every attempt; its own attempts start again at 1.
    const stored = queues.schedule(
      {
        group: entry.group,
        stream: entry.stream,
        entryId: entry.entryId,
        fields,
        eventId: entry.eventId,
        type: entry.type,
        attemptOffset: 0,
        replayCount,
        firstFailedAt: entry.firstFailedAt || new Date().toISOString(),
        failures: entry.failures,
      },
      REPLAY_HOLD_MS,
    );
    queues.flush();
    const jobId = await stored;
    if (!(await this.remove(entry, 'replay', context))) {
      const gone = await this.goneError(entry.id);
      // Replayed by someone else: the job is theirs too (same id), they make it due.
      if (gone instanceof ConflictError && gone.code === 'DLQ_ENTRY_DISCARDED') {
        if (!(await queues.withdraw(entry.group, jobId))) {
          this.logger.error(
            { id: entry.id, group: entry.group, jobId },
            'a replay lost its entry to a discard, and its held job could no longer be withdrawn',
          );
        }
      }
      throw gone;
    }
    await queues.runNow(entry.group, [jobId]);
    return { id: entry.id, group: entry.group, eventId: entry.eventId, jobId };
  }

  private async remove(
    entry: DeadLetterEntry,
    action: 'replay' | 'discard',
    context: OperatorContext,
  ): Promise<boolean> {
    const at = new Date().toISOString();
    const audit = auditFields({
      action,
      group: entry.group,
      deadLetterId: entry.id,
      eventId: entry.eventId,
      type: entry.type,
      ...byOperator(context, at),
    });
    const mark = marker(entry);
    const removed = await this.redis.sfRemoveDeadLetter(
      this.keys.deadLetter,
      this.keys.deadLetterMarkers,
      this.keys.deadLetterCounts,
      this.keys.deadLetterTombstone(entry.id),
      this.keys.audit,
      this.keys.deadLetterMarkerGone(mark),
      entry.id,
      mark,
      entry.group,
      JSON.stringify({ action, actor: context.actor, at }),
      String(TOMBSTONE_TTL_SECONDS),
      String(AUDIT_MAX_LEN),
      ...audit,
    );
    return removed === 1;
  }

  /**
   * Who replayed or discarded entry `id`, and when: what its remover recorded (kept for a
   * week after). `undefined` for an id never removed, or removed longer ago.
   */
  async removal(id: string): Promise<DeadLetterRemoval | undefined> {
    const tombstone = await this.redis.get(this.keys.deadLetterTombstone(id));
    if (tombstone === null) return undefined;
    try {
      const { action, actor, at } = JSON.parse(tombstone) as Partial<DeadLetterRemoval>;
      if ((action === 'replay' || action === 'discard') && typeof actor === 'string' && typeof at === 'string') {
        return { action, actor, at };
      }
    } catch {
      // Not what a remover writes: as good as none.
    }
    return undefined;
  }

  private async goneError(id: string): Promise<Error> {
    const removal = await this.removal(id);
    if (!removal) return new NotFoundError(`no dead-letter entry ${id}`, { id });
    const verb = removal.action === 'discard' ? 'discarded' : 'replayed';
    return new ConflictError(
      `DLQ_ENTRY_${verb.toUpperCase()}`,
      `dead-letter entry ${id} was already ${verb} at ${removal.at} by ${removal.actor}`,
      { id, ...removal },
    );
  }

  /**
   * Decodes the entry's event as a consumer would today: the check by which `replay` refuses
   * an entry and a bulk replay skips it (`invalidToday`). `undefined` without a catalog.
   */
  decode(entry: DeadLetterEntry): DeadLetterDecoding | undefined {
    if (!this.catalog) return undefined;
    try {
      return { ok: true, envelope: decodeEvent(Object.entries(entry.event).flat(), this.catalog) };
    } catch (err) {
      const issues = err instanceof ValidationError ? err.issues : [];
      return { ok: false, error: err instanceof Error ? err.message : String(err), issues };
    }
  }

  private schemaProblem(entry: DeadLetterEntry): string | undefined {
    const decoded = this.decode(entry);
    return decoded && !decoded.ok ? decoded.error : undefined;
  }
}

/**
 * What a dead letter is written once per: its group, its event and its replay round. An entry
 * that failed validation is keyed by its stream entry instead: the id it carries was not
 * validated, so another bad entry (or a valid event) with the same id is a different failure,
 * while a redelivery of the same entry is the same one.
 */
function marker(
  d: Pick<DeadLetterInput, 'group' | 'reason' | 'entryId' | 'replayCount'> & { eventId: string },
): string {
  const key = d.reason === 'invalid-event' ? `entry:${d.entryId}` : d.eventId;
  return `${d.group}|${key}|${d.replayCount}`;
}

function parseEntry(id: string, fields: string[]): DeadLetterEntry {
  const r = fieldsToRecord(fields);
  const replayCount = Number(r.replayCount ?? 0);
  const entry: DeadLetterEntry = {
    id,
    group: r.group ?? '',
    stream: r.stream ?? '',
    entryId: r.entryId ?? '',
    eventId: r.eventId ?? '',
    type: r.type ?? '',
    reason: (DEAD_LETTER_REASONS as readonly string[]).includes(r.reason ?? '')
      ? (r.reason as DeadLetterReason)
      : 'retries-exhausted',
    attempts: Number(r.attempts ?? 0),
    replayCount,
    lastError: parseJson<ErrorSummary>(r.error, { name: 'Error', message: '' }),
    failures: parseFailures(r.failures, replayCount),
    firstFailedAt: r.firstFailedAt ?? '',
    // The entry id's time, Redis's clock: the one the time filters use, whatever the writer's clock said.
    deadLetteredAt: new Date(streamIdTime(id)).toISOString(),
    event: parseJson<Record<string, string>>(r.event, {}),
  };
  if (r.aggregateId) entry.aggregateId = r.aggregateId;
  return entry;
}

/**
 * XREVRANGE's upper end: before `cursor` (exclusive) and at or before `to` (its whole
 * millisecond), whichever is lower, so paging never steps past the `to` filter.
 */
function upperBound(cursor: string | undefined, to: Date | undefined): string {
  if (cursor && (to === undefined || streamIdTime(cursor) <= to.getTime())) return `(${cursor}`;
  return to === undefined ? '+' : String(to.getTime());
}

/**
 * Whether an entry passes a filter: the one definition, for lists and for bulk actions by
 * filter or by ids. The time range is on the dead-lettered time, the entry id's millisecond.
 */
function matches(entry: DeadLetterEntry, filter: DeadLetterFilter): boolean {
  const at = streamIdTime(entry.id);
  return (
    (filter.group === undefined || entry.group === filter.group) &&
    (filter.type === undefined || entry.type === filter.type) &&
    (filter.reason === undefined || entry.reason === filter.reason) &&
    (filter.eventId === undefined || entry.eventId === filter.eventId) &&
    (filter.aggregateId === undefined || entry.aggregateId === filter.aggregateId) &&
    (filter.from === undefined || at >= filter.from.getTime()) &&
    (filter.to === undefined || at <= filter.to.getTime())
  );
}

/** The record with its round named: a record without one belongs to the round of what holds it. */
function withRound(failure: FailureRecord, replayCount: number): FailureRecord {
  return failure.replay === undefined ? { ...failure, replay: replayCount } : failure;
}

function parseFailures(raw: string | undefined, replayCount: number): FailureRecord[] {
  const failures = parseJson<unknown>(raw, []);
  return Array.isArray(failures) ? failures.map((f: FailureRecord) => withRound(f, replayCount)) : [];
}

function parseJson<T>(raw: string | undefined, fallback: T): T {
  if (!raw) return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return fallback;
  }
}

function assertId(id: string, field = 'id'): void {
  if (!isStreamId(id)) {
    throw new ValidationError(`${field} must be a stream entry id like 1700000000000-0`, [
      { field, message: 'not a stream entry id' },
    ]);
  }
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(n)));
}
