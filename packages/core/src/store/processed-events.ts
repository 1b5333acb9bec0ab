import type { Queryable } from './client';

/**
 * Records that `group` handled `eventId`. Returns false when it already had: the caller
 * skips its effects. Call it first in the handler's transaction, so a concurrent delivery
 * of the same event waits on the row lock and then sees it as done.
 */
export async function markProcessed(sql: Queryable, group: string, eventId: string): Promise<boolean> {
  const rows = await sql`
    insert into processed_events ("group", event_id) values (${group}, ${eventId})
    on conflict do nothing
    returning 1`;
  return rows.length > 0;
}

/** Whether `group` already handled `eventId` (a read, for handlers that call out first). */
export async function isProcessed(sql: Queryable, group: string, eventId: string): Promise<boolean> {
  const rows = await sql`select 1 from processed_events where "group" = ${group} and event_id = ${eventId}`;
  return rows.length > 0;
}

/**
 * Forgets idempotency records older than `olderThanMs`: after that, a redelivery of the
 * same event would run again. Keep it well above the longest retry plus replay window.
 */
export async function pruneProcessedEvents(sql: Queryable, olderThanMs: number, limit = 10_000): Promise<number> {
  const rows = await sql`
    delete from processed_events where ctid in (
      select ctid from processed_events
      where processed_at < now() - ${olderThanMs} * interval '1 millisecond'
      limit ${limit})
    returning 1`;
  return rows.length;
}
