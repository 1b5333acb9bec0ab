import { ConcurrencyError } from '../errors/index';
import type { EventEnvelope, EventMetadata } from '../events/envelope';
import { cancelOrder, confirmOrder, loadOrder, markOrderPaid } from '../orders/commands';
import {
  type InventoryReservationFailedData,
  ORDERS_STREAM,
  type OrderCancelledData,
  OrderEventType,
  type PaymentFailedData,
  type PaymentSucceededData,
} from '../orders/events';
import { fitReason } from '../orders/order';
import { lockKeyForTransaction, type Queryable, type Sql, type TransactionSql } from '../store/client';
import { markProcessed } from '../store/processed-events';
import type { GroupDefinition } from '../streams/handler';

export const SAGA_GROUP = 'order-saga';

/**
 * awaiting_reservation -> awaiting_payment -> completed, or -> cancelled from either
 * waiting state. Compensation is event-driven: the saga cancels the order, and the
 * inventory and payment services react to `order.cancelled` (release stock, refund).
 */
export const SAGA_STATES = ['awaiting_reservation', 'awaiting_payment', 'completed', 'cancelled'] as const;
export type SagaState = (typeof SAGA_STATES)[number];

export interface OrderSaga {
  orderId: string;
  state: SagaState;
  data: Record<string, unknown>;
  history: Array<{ event: string; eventId: string; state: SagaState; at: string }>;
}

export async function getSaga(sql: Queryable, orderId: string): Promise<OrderSaga | undefined> {
  const [row] = await sql<OrderSaga[]>`
    select order_id as "orderId", state, data, history from order_sagas where order_id = ${orderId}`;
  return row;
}

/** Who the saga says cancelled an order, in `order.cancelled`. */
export const SAGA_ACTOR = 'order-saga';

function metadataFor(event: EventEnvelope): EventMetadata {
  return { correlationId: event.metadata.correlationId ?? event.id, causationId: event.id };
}

async function transition(
  tx: TransactionSql,
  orderId: string,
  event: Pick<EventEnvelope, 'type' | 'id'>,
  state: SagaState,
  data: Record<string, unknown> = {},
): Promise<void> {
  const entry = [{ event: event.type, eventId: event.id, state, at: new Date().toISOString() }];
  await tx`
    insert into order_sagas (order_id, state, data, history)
    values (${orderId}, ${state}, ${tx.json(data as never)}, ${tx.json(entry as never)})
    on conflict (order_id) do update set
      state = excluded.state,
      data = order_sagas.data || excluded.data,
      history = order_sagas.history || excluded.history,
      updated_at = now()`;
}

/**
 * Cancels the order unless it already is (or can no longer be): the saga never fights a user.
 * The command expects the version just read, so a user's change in between is a (retried)
 * ConcurrencyError, never a rule violation that would dead-letter the saga's event. Returns
 * why the order ended, for the saga's record: `cancelReason`, or, when someone else (a
 * customer) cancelled it first, their reason and who they were.
 */
async function cancelIfOpen(
  tx: TransactionSql,
  orderId: string,
  reason: string,
  cancelReason: string,
  metadata: EventMetadata,
): Promise<{ cancelReason: string; cancelledBy?: string }> {
  const order = await loadOrder(tx, orderId);
  if (order?.status === 'CANCELLED') {
    return {
      cancelReason: order.cancellationReason ?? cancelReason,
      ...(order.cancelledBy ? { cancelledBy: order.cancelledBy } : {}),
    };
  }
  if (order && (order.status === 'PENDING' || order.status === 'CONFIRMED')) {
    await cancelOrder(tx, orderId, reason, SAGA_ACTOR, { expectedVersion: order.version, metadata });
  }
  return { cancelReason };
}

async function step(tx: TransactionSql, event: EventEnvelope): Promise<void> {
  const orderId = (event.data as { orderId: string }).orderId;
  // Serialises the saga's handlers per order: `for update` below locks nothing while the saga
  // row does not exist yet, so a retry running beside the next event of the same order (both
  // reading "no saga") let the later upsert undo the other, e.g. reopen a cancelled saga.
  await lockKeyForTransaction(tx, `order_sagas:${orderId}`);
  const [current] = await tx<{ state: SagaState }[]>`
    select state from order_sagas where order_id = ${orderId} for update`;
  const finished = current?.state === 'completed' || current?.state === 'cancelled';
  switch (event.type) {
    case OrderEventType.created:
      if (!current) await transition(tx, orderId, event, 'awaiting_reservation');
      return;
    case OrderEventType.inventoryReserved:
      if (!finished) await transition(tx, orderId, event, 'awaiting_payment', { reserved: true });
      return;
    case OrderEventType.inventoryReservationFailed: {
      if (finished) return;
      const d = event.data as InventoryReservationFailedData;
      const skus = d.unavailable.map((u) => u.sku).join(', ');
      const ended = await cancelIfOpen(tx, orderId, fitReason(`${d.reason}: ${skus}`), d.reason, metadataFor(event));
      await transition(tx, orderId, event, 'cancelled', ended);
      return;
    }
    case OrderEventType.paymentSucceeded: {
      if (finished) return;
      const d = event.data as PaymentSucceededData;
      const order = await loadOrder(tx, orderId);
      if (order?.status === 'PENDING' || order?.status === 'CONFIRMED') {
        // Each command expects the version the saga decided on (see cancelIfOpen).
        const metadata = metadataFor(event);
        let version = order.version;
        if (order.status === 'PENDING') {
          version = (await confirmOrder(tx, orderId, { expectedVersion: version, metadata })).order.version;
        }
        await markOrderPaid(
          tx,
          orderId,
          { paymentId: d.paymentId, amount: d.amount },
          { expectedVersion: version, metadata },
        );
        await transition(tx, orderId, event, 'completed', { paymentId: d.paymentId });
      }
      // Otherwise the order was cancelled meanwhile: the payment service refunds on
      // order.cancelled; the saga ends when it sees that event.
      return;
    }
    case OrderEventType.paymentFailed: {
      if (finished) return;
      const d = event.data as PaymentFailedData;
      const reason = fitReason(`payment_failed: ${d.reason}`);
      const ended = await cancelIfOpen(tx, orderId, reason, 'payment_failed', metadataFor(event));
      await transition(tx, orderId, event, 'cancelled', ended);
      return;
    }
    case OrderEventType.cancelled: {
      if (current?.state === 'cancelled') return;
      const d = event.data as OrderCancelledData;
      await transition(tx, orderId, event, 'cancelled', { cancelReason: d.reason, cancelledBy: d.cancelledBy });
      return;
    }
    default:
      return;
  }
}

export interface SagaGroupOptions {
  sql: Sql;
  group?: string;
}

/**
 * The order-processing saga as a consumer group: order.created -> (inventory reserves) ->
 * (payment charges) -> confirm and mark paid; a failed reservation or payment cancels the
 * order with a reason. State, order commands and the (group, event id) record commit in
 * one transaction; a ConcurrencyError (a user changed the order meanwhile) rolls it all
 * back and the group retries against the new state.
 */
export function createSagaGroup(options: SagaGroupOptions): GroupDefinition {
  const group = options.group ?? SAGA_GROUP;
  return {
    group,
    stream: ORDERS_STREAM,
    types: [
      OrderEventType.created,
      OrderEventType.inventoryReserved,
      OrderEventType.inventoryReservationFailed,
      OrderEventType.paymentSucceeded,
      OrderEventType.paymentFailed,
      OrderEventType.cancelled,
    ],
    handler: async (event) => {
      await options.sql.begin(async (tx) => {
        if (!(await markProcessed(tx, group, event.id))) return;
        await step(tx, event);
      });
    },
  };
}

export interface ExpireSagasOptions {
  /** A saga waiting longer than this is given up. */
  olderThanMs: number;
  /** Sagas handled per call. Default 100. */
  limit?: number;
}

/**
 * Gives up sagas stuck waiting (an event dead-lettered, a service down for long): cancels
 * the order with reason `timeout: <state>`, and the usual compensations follow from
 * `order.cancelled`. A saga whose reservation or payment outcome is already recorded is left
 * to read it (its own group is paused or behind). Safe to run from several processes at once
 * (skip locked). Returns the order ids it cancelled.
 */
export async function expireStaleSagas(sql: Sql, options: ExpireSagasOptions): Promise<string[]> {
  return (await sql.begin(async (tx) => {
    // A saga whose awaited outcome is already recorded is not stuck but behind: its event waits
    // in the saga group's lag (the group paused, or slow). Cancelling would undo a paid order.
    const stale = await tx<{ order_id: string; state: SagaState }[]>`
      select s.order_id, s.state from order_sagas s
      where s.state in ('awaiting_reservation', 'awaiting_payment')
        and s.updated_at < now() - ${options.olderThanMs} * interval '1 millisecond'
        and not (s.state = 'awaiting_reservation' and exists (
          select 1 from reservations r where r.order_id = s.order_id and r.status in ('reserved', 'failed')))
        and not (s.state = 'awaiting_payment' and exists (
          select 1 from payments p where p.order_id = s.order_id and p.status in ('succeeded', 'failed')))
      order by s.updated_at
      limit ${options.limit ?? 100}
      for update of s skip locked`;
    const expired: string[] = [];
    for (const saga of stale) {
      const marker = { type: 'saga.timed_out', id: `timeout:${saga.order_id}` };
      try {
        await tx.savepoint(async (sp) => {
          const ended = await cancelIfOpen(sp, saga.order_id, `timeout: ${saga.state}`, 'timeout', {
            correlationId: saga.order_id,
          });
          await transition(sp, saga.order_id, marker, 'cancelled', ended);
        });
        expired.push(saga.order_id);
      } catch (err) {
        // Someone changed the order meanwhile: the next sweep looks again.
        if (!(err instanceof ConcurrencyError)) throw err;
      }
    }
    return expired;
  })) as string[];
}
