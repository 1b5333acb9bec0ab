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
