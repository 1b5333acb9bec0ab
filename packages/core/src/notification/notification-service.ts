import { StreamfleetError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import { ORDERS_STREAM, OrderEventType } from '../orders/events';
import type { Queryable, Sql } from '../store/client';
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
}

export interface SentNotification {
  eventId: string;
  orderId: string;
  kind: string;
  recipient: string;
  delivered: boolean;
  statusCode: number | null;
}

export async function listNotifications(sql: Queryable, orderId: string): Promise<SentNotification[]> {
  return sql<SentNotification[]>`
    select event_id as "eventId", order_id as "orderId", kind, recipient, delivered, status_code as "statusCode"
    from notifications where order_id = ${orderId} order by sent_at`;
}

/**
 * The notification service as a consumer group: tells the customer when an order is
 * confirmed or cancelled. POSTs `{ kind, orderId, customerId, event }` to the webhook with
 * `Idempotency-Key: <event id>` (a retry after a crash re-sends with the same key, so the
 * receiver can drop it), then records what it sent with the (group, event id) record.
 * A 5xx, 429 or timeout throws (retried); other 4xx are recorded as not delivered.
 */
export function createNotificationGroup(options: NotificationGroupOptions): GroupDefinition {
  const { sql } = options;
  const group = options.group ?? NOTIFICATION_GROUP;
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5000;

  async function deliver(
    event: EventEnvelope,
    payload: unknown,
  ): Promise<{ delivered: boolean; status: number | null }> {
    if (!options.webhookUrl) return { delivered: false, status: null };
    let response: Response;
    try {
      response = await doFetch(options.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': event.id },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs),
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
    handler: async (event) => {
      const data = event.data as { orderId: string; customerId: string; reason?: string };
      const [done] = await sql`select 1 from notifications where event_id = ${event.id}`;
      if (done) return;
      const kind = event.type === OrderEventType.confirmed ? 'order_confirmed' : 'order_cancelled';
      const result = await deliver(event, {
        kind,
        orderId: data.orderId,
        customerId: data.customerId,
        ...(data.reason ? { reason: data.reason } : {}),
        eventId: event.id,
        occurredAt: event.occurredAt,
      });
      await sql.begin(async (tx) => {
        if (!(await markProcessed(tx, group, event.id))) return;
        await tx`
          insert into notifications (event_id, order_id, kind, recipient, delivered, status_code)
          values (${event.id}, ${data.orderId}, ${kind}, ${data.customerId}, ${result.delivered}, ${result.status})
          on conflict (event_id) do nothing`;
      });
    },
  };
}
