import type { EventEnvelope } from '../events/envelope';
import type { Queryable } from './client';

/** Channel a NOTIFY goes to when outbox rows commit: relays wake at once instead of polling. */
export const OUTBOX_CHANNEL = 'streamfleet_outbox';

export interface OutboxMessage {
  stream: string;
  event: EventEnvelope;
}

/**
 * Writes events to the outbox. Call it with the transaction that makes the state change:
 * both commit or neither does, and the `OutboxRelay` publishes what committed. Rows get
 * ids in the order given, which is the order the relay publishes them in.
 */
export async function enqueueOutbox(sql: Queryable, messages: readonly OutboxMessage[]): Promise<void> {
  if (messages.length === 0) return;
  const streams = messages.map((m) => m.stream);
  const ids = messages.map((m) => m.event.id);
  const events = messages.map((m) => JSON.stringify(m.event));
  await sql`
    insert into outbox (stream, event_id, event)
    select s, e::uuid, ev::jsonb
    from unnest(${streams}::text[], ${ids}::text[], ${events}::text[]) with ordinality as t(s, e, ev, n)
    order by n`;
  // Delivered at commit, dropped on rollback; Postgres folds repeats within one transaction.
  await sql`select pg_notify(${OUTBOX_CHANNEL}, '')`;
}

export interface OutboxStats {
  /** Rows committed and not yet published (parked ones apart). */
  unpublished: number;
  /** How long the oldest of those has waited; 0 when none waits. */
  oldestUnpublishedAgeSeconds: number;
  /** Rows the catalog refused: the relay parked them (`failed_at`, `last_error`) for an operator. */
  parked: number;
}

/** The outbox's backlog, for metrics: three index lookups (partial indexes on unpublished and parked rows). */
export async function outboxStats(sql: Queryable): Promise<OutboxStats> {
  const [row] = await sql<{ unpublished: number; age: number | null; parked: number }[]>`
    select
      (select count(*) from outbox where published_at is null and failed_at is null)::int as unpublished,
      (select extract(epoch from now() - created_at) from outbox
        where published_at is null and failed_at is null order by id limit 1)::float8 as age,
      (select count(*) from outbox where published_at is null and failed_at is not null)::int as parked`;
  return {
    unpublished: row?.unpublished ?? 0,
    oldestUnpublishedAgeSeconds: Math.max(0, row?.age ?? 0),
    parked: row?.parked ?? 0,
  };
}

/**
 * Deletes published outbox rows older than `olderThanMs` (the event store keeps the
 * events; outbox rows are only transport). Deletes at most `limit` rows per call.
 */
export async function pruneOutbox(sql: Queryable, olderThanMs: number, limit = 10_000): Promise<number> {
  const rows = await sql`
    delete from outbox where id in (
      select id from outbox
      where published_at is not null and published_at < now() - ${olderThanMs} * interval '1 millisecond'
      limit ${limit})
    returning 1`;
  return rows.length;
}
