import { ConcurrencyError } from '../errors/index';
import { createEvent, type EventEnvelope, type EventMetadata } from '../events/envelope';
import { inTransaction, type Queryable, sqlState, UNIQUE_VIOLATION } from './client';
import { enqueueOutbox } from './outbox';

/** An event to append; the store assigns aggregate id and version. */
export interface PendingEvent<TType extends string = string, TData = unknown> {
  type: TType;
  data: TData;
  schemaVersion?: number;
  id?: string;
  metadata?: EventMetadata;
  occurredAt?: string | Date;
}

export interface AppendOptions {
  /**
   * Stream the relay publishes the events to. When set, the events are written to the
   * outbox in the same transaction as the append.
   */
  stream?: string;
}

export interface AppendResult {
  events: EventEnvelope[];
  /** The aggregate's version after the append. */
  version: number;
}

/**
 * Appends events to an aggregate's stream when its current version is `expectedVersion`
 * (0: the aggregate must not exist yet). A version mismatch, or another writer winning the
 * race on unique(aggregate_id, version), is a `ConcurrencyError`.
 */
export async function appendToStream(
  sql: Queryable,
  aggregateId: string,
  expectedVersion: number,
  events: readonly PendingEvent[],
  options: AppendOptions = {},
): Promise<AppendResult> {
  const envelopes = events.map((e, i) =>
    createEvent({
      type: e.type,
      data: e.data,
      aggregateId,
      aggregateVersion: expectedVersion + i + 1,
      ...(e.schemaVersion === undefined ? {} : { schemaVersion: e.schemaVersion }),
      ...(e.id === undefined ? {} : { id: e.id }),
      ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
      ...(e.occurredAt === undefined ? {} : { occurredAt: e.occurredAt }),
    }),
  );
  if (envelopes.length === 0) return { events: [], version: expectedVersion };
  try {
    await inTransaction(sql, async (tx) => {
      const [row] = await tx<{ version: number | null }[]>`
        select max(version) as version from events where aggregate_id = ${aggregateId}`;
      const current = row?.version ?? 0;
      if (current !== expectedVersion) {
        throw new ConcurrencyError(`aggregate ${aggregateId} is at version ${current}, expected ${expectedVersion}`, {
          aggregateId,
          expectedVersion,
          actualVersion: current,
        });
      }
      for (const e of envelopes) {
        await tx`
          insert into events (event_id, aggregate_id, version, type, schema_version, data, metadata, occurred_at)
          values (${e.id}, ${aggregateId}, ${e.aggregateVersion ?? 0}, ${e.type}, ${e.schemaVersion},
                  ${tx.json(e.data as never)}, ${tx.json(e.metadata as never)}, ${e.occurredAt})`;
      }
      if (options.stream !== undefined) {
        const stream = options.stream;
        await enqueueOutbox(
          tx,
          envelopes.map((event) => ({ stream, event })),
        );
      }
    });
  } catch (err) {
    if (sqlState(err) === UNIQUE_VIOLATION && /aggregate_id_version/.test(String((err as Error).message))) {
      throw new ConcurrencyError(`aggregate ${aggregateId} was changed concurrently (expected ${expectedVersion})`, {
        aggregateId,
        expectedVersion,
      });
    }
    throw err;
  }
  return { events: envelopes, version: expectedVersion + envelopes.length };
}

interface EventRow {
  event_id: string;
  aggregate_id: string;
  version: number;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: EventMetadata;
  occurred_at: Date;
}

/** Loads an aggregate's events in version order, from `fromVersion` (inclusive) when given. */
export async function loadEvents(sql: Queryable, aggregateId: string, fromVersion = 1): Promise<EventEnvelope[]> {
  const rows = await sql<EventRow[]>`
    select event_id, aggregate_id, version, type, schema_version, data, metadata, occurred_at
    from events
    where aggregate_id = ${aggregateId} and version >= ${fromVersion}
    order by version`;
  return rows.map(toEnvelope);
}

function toEnvelope(row: EventRow): EventEnvelope {
  return {
    id: row.event_id,
    type: row.type,
    schemaVersion: row.schema_version,
    aggregateId: row.aggregate_id,
    aggregateVersion: row.version,
    occurredAt: row.occurred_at.toISOString(),
    data: row.data,
    metadata: row.metadata ?? {},
  };
}
