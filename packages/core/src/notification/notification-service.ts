import pLimit from 'p-limit';
import { StreamfleetError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import { ORDERS_STREAM, OrderEventType } from '../orders/events';
import { lockKeyForTransaction, type Queryable, type Sql, type TransactionSql } from '../store/client';
import { markProcessed } from '../store/processed-events';
import type { GroupDefinition } from '../streams/handler';

export const NOTIFICATION_GROUP = 'notification';

/** The webhook is down or slow: retry later. */
export class NotificationDeliveryError extends StreamfleetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOTIFICATION_DELIVERY_FAILED', message, options);
  }
}

export interface NotificationGroupOptions {
  sql: Sql;
  /** `NOTIFICATION_WEBHOOK_URL`. When unset, notifications are only recorded. */
  webhookUrl?: string;
  /** Per request. Default 5000 ms. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  group?: string;
  /**
   * Webhook calls in flight at once in this process. Each holds a pooled connection (its
   * order's lock) for up to `timeoutMs`, so this bounds what a slow webhook takes from the
   * pool the other groups share. Default 4.
   */
  maxConcurrentSends?: number;
}

/**
 * One handled notification event. `status` 'sent': POSTed (or only recorded, without a
 * webhook), `delivered` saying whether the webhook accepted it; 'skipped': stale, a newer
 * notification of the order (`supersededBy`, an event id) had already been sent.
 */
export interface SentNotification {
  eventId: string;
  orderId: string;
  kind: string;
  recipient: string;
  /** The order version of the event; null for events that carry none. */
  aggregateVersion: number | null;
  status: 'sent' | 'skipped';
  delivered: boolean;
  statusCode: number | null;
  supersededBy: string | null;
}

/** An order's notifications in the order they were recorded. */
export async function listNotifications(sql: Queryable, orderId: string): Promise<SentNotification[]> {
  return sql<SentNotification[]>`
    select event_id as "eventId", order_id as "orderId", kind, recipient, aggregate_version as "aggregateVersion",
           status, delivered, status_code as "statusCode", superseded_by as "supersededBy"
    from notifications where order_id = ${orderId} order by sent_at, event_id`;
}

/**
 * The notification service as a consumer group: tells the customer when an order is
 * confirmed or cancelled. POSTs `{ kind, orderId, customerId, reason?, eventId,
 * aggregateVersion?, occurredAt }` to the webhook with `Idempotency-Key: <event id>` (a
 * retry after a crash re-sends with the same key, so the receiver can drop it), and records
 * what it sent with the (group, event id) record. A 5xx, 429 or timeout throws (retried);
 * other 4xx are recorded as not delivered.
 *
 * Never a stale message last: an event whose order already had a notification of a higher
 * aggregate version sent (a retried or replayed `order.confirmed` after `order.cancelled`)
 * is not POSTed but recorded as 'skipped', and not retried. The check, the POST and the
 * record run in one transaction under a per-order advisory lock, because per-aggregate
 * order only holds within one process: another worker handling the same order waits, so a
 * newer event never overtakes an older one in flight, and an older one sees the newer one
 * sent. The price is one pooled connection per call in flight, bounded by
 * `maxConcurrentSends` and `timeoutMs`. Events without a version are sent, never skipped.
 */
export function createNotificationGroup(options: NotificationGroupOptions): GroupDefinition {
  const { sql } = options;
  const group = options.group ?? NOTIFICATION_GROUP;
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const sends = options.maxConcurrentSends ?? 4;
  if (!Number.isInteger(sends) || sends < 1) throw new RangeError('maxConcurrentSends must be an integer >= 1');
  const slots = pLimit(sends);

  async function deliver(
    event: EventEnvelope,
    payload: unknown,
    cancel: AbortSignal,
  ): Promise<{ delivered: boolean; status: number | null }> {
    if (!options.webhookUrl) return { delivered: false, status: null };
    let response: Response;
    try {
      response = await doFetch(options.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': event.id },
        body: JSON.stringify(payload),
        // Given up at our timeout, or at the handler's (its attempt has failed by then).
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), cancel]),
      });
    } catch (err) {
      throw new NotificationDeliveryError(`webhook unreachable: ${(err as Error).message}`, { cause: err });
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 500 || response.status === 429) {
      throw new NotificationDeliveryError(`webhook answered ${response.status}`);
    }
    return { delivered: response.ok, status: response.status };
  }

  return {
    group,
    stream: ORDERS_STREAM,
    types: [OrderEventType.confirmed, OrderEventType.cancelled],
    handler: async (event, context) => {
      const data = event.data as { orderId: string; customerId: string; reason?: string };
      // Redeliveries of what was handled end here, without a slot or the order's lock.
      const [done] = await sql`select 1 from notifications where event_id = ${event.id}`;
      if (done) return;
      const kind = event.type === OrderEventType.confirmed ? 'order_confirmed' : 'order_cancelled';
      const version = event.aggregateVersion ?? null;
      const payload = {
        kind,
        orderId: data.orderId,
        customerId: data.customerId,
        ...(data.reason ? { reason: data.reason } : {}),
        eventId: event.id,
        // Lets the receiver order and deduplicate what it gets (retries, replays, races).
        ...(version !== null ? { aggregateVersion: version } : {}),
        occurredAt: event.occurredAt,
      };
      const record = (
        tx: TransactionSql,
        status: SentNotification['status'],
        result: { delivered: boolean; status: number | null },
        supersededBy: string | null,
      ) => tx`
        insert into notifications (event_id, order_id, kind, recipient, aggregate_version, status, delivered,
                                   status_code, superseded_by, sent_at)
        values (${event.id}, ${data.orderId}, ${kind}, ${data.customerId}, ${version}, ${status},
                ${result.delivered}, ${result.status}, ${supersededBy}, clock_timestamp())
        on conflict (event_id) do nothing`;
      const notify = async (): Promise<void> => {
        await sql.begin(async (tx) => {
          await lockKeyForTransaction(tx, `notifications:${data.orderId}`);
          if (!(await markProcessed(tx, group, event.id))) return;
          // Under the lock: a concurrent delivery of this event may have recorded it meanwhile.
          const [recorded] = await tx`select 1 from notifications where event_id = ${event.id}`;
          if (recorded) return;
          if (version !== null) {
            const [newer] = await tx<{ eventId: string }[]>`
              select event_id as "eventId" from notifications
              where order_id = ${data.orderId} and status = 'sent' and aggregate_version > ${version}
              order by aggregate_version desc limit 1`;
            if (newer) {
              await record(tx, 'skipped', { delivered: false, status: null }, newer.eventId);
              return;
            }
            if (event.type === OrderEventType.confirmed) {
              // Read late (this group paused or behind): the event store may know the order was
              // cancelled since. The customer hears of the cancellation, not of a stale confirmation.
              const [cancellation] = await tx<{ eventId: string }[]>`
                select event_id::text as "eventId" from events
                where aggregate_id = ${data.orderId} and type = ${OrderEventType.cancelled} and version > ${version}
                limit 1`;
              if (cancellation) {
                await record(tx, 'skipped', { delivered: false, status: null }, cancellation.eventId);
                return;
              }
            }
          }
          // A throw rolls back the (group, event id) record too: the retry sends again.
          const result = await deliver(event, payload, context.signal);
          await record(tx, 'sent', result, null);
        });
      };
      await (options.webhookUrl ? slots(notify) : notify());
    },
  };
}
