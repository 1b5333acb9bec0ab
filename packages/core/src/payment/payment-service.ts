import { ConcurrencyError } from '../errors/index';
import { createEvent, type EventEnvelope } from '../events/envelope';
import { type Logger, silentLogger } from '../logging/index';
import {
  type InventoryReservedData,
  ORDERS_STREAM,
  type OrderCancelledData,
  OrderEventType,
  type PaymentFailedData,
  type PaymentRefundedData,
  type PaymentSucceededData,
} from '../orders/events';
import type { Queryable, Sql } from '../store/client';
import { enqueueOutbox } from '../store/outbox';
import { isProcessed, markProcessed } from '../store/processed-events';
import type { GroupDefinition, HandlerContext } from '../streams/handler';
import {
  type ChargeRequest,
  type ChargeResult,
  type PaymentGateway,
  PaymentGatewayUnavailableError,
} from './payment-gateway';

export const PAYMENT_GROUP = 'payment';

export type PaymentStatus = 'succeeded' | 'failed' | 'refunded' | 'void';

export interface PaymentRecord {
  orderId: string;
  status: PaymentStatus;
  amount: number;
  currency: string;
  chargeId: string | null;
  refundId: string | null;
  failureReason: string | null;
}

interface PaymentRow {
  order_id: string;
  status: PaymentStatus;
  amount: string | number;
  currency: string;
  charge_id: string | null;
  refund_id: string | null;
  failure_reason: string | null;
}

export async function getPayment(sql: Queryable, orderId: string): Promise<PaymentRecord | undefined> {
  const [row] = await sql<PaymentRow[]>`select * from payments where order_id = ${orderId}`;
  return row ? toRecord(row) : undefined;
}

function toRecord(row: PaymentRow): PaymentRecord {
  return {
    orderId: row.order_id,
    status: row.status,
    amount: Number(row.amount),
    currency: row.currency,
    chargeId: row.charge_id,
    refundId: row.refund_id,
    failureReason: row.failure_reason,
  };
}

function follow(cause: EventEnvelope, type: string, data: { orderId: string }): EventEnvelope {
  return createEvent({
    type,
    data,
    aggregateId: cause.aggregateId ?? data.orderId,
    metadata: { correlationId: cause.metadata.correlationId ?? cause.id, causationId: cause.id },
  });
}

/** What a charge request sent, kept with its attempt (`payment_attempts.request`) while its outcome is in doubt. */
type StoredChargeRequest = Pick<ChargeRequest, 'customerId' | 'amount' | 'currency'>;

interface ChargeState {
  payment: PaymentRecord | undefined;
  /** The event store holds the order's cancellation. */
  cancelled: boolean;
  /** An earlier attempt of this charge may have reached the gateway. */
  mayHaveCharged: boolean;
}

/** What a charge request needs to know, in one round trip. */
async function chargeState(sql: Queryable, orderId: string, eventId: string): Promise<ChargeState> {
  const [row] = await sql<(Partial<PaymentRow> & { cancelled: boolean; attempted: boolean })[]>`
    select p.*,
      exists(select 1 from events where aggregate_id = ${orderId} and type = ${OrderEventType.cancelled}) as cancelled,
      exists(select 1 from payment_attempts where event_id = ${eventId}) as attempted
    from (values (1)) as one left join payments p on p.order_id = ${orderId}`;
  return {
    payment: row?.order_id ? toRecord(row as PaymentRow) : undefined,
    cancelled: row?.cancelled ?? false,
    mayHaveCharged: row?.attempted ?? false,
  };
}

/** "Do not charge this order": a record a later charge request finds (or conflicts with). */
async function insertVoid(sql: Queryable, orderId: string, eventId: string): Promise<boolean> {
  const inserted = await sql`
    insert into payments (order_id, status, amount, currency, idempotency_key)
    values (${orderId}, 'void', 0, 'EUR', ${`void:${eventId}`})
    on conflict do nothing
    returning 1`;
  return inserted.length > 0;
}

export interface PaymentGroupOptions {
  sql: Sql;
  gateway: PaymentGateway;
  group?: string;
  logger?: Logger;
}

/**
 * The payment service as a consumer group. On `inventory.reserved` it charges through the
 * gateway (Idempotency-Key: the event id, so a retry after a crash cannot charge twice);
 * a decline emits `payment.failed`; a gateway outage throws, and the group retries. An
 * order the event store already holds as cancelled is not charged (unless an earlier
 * attempt may have charged it: that charge is fetched again and refunded). On
 * `order.cancelled` it refunds a captured payment, or leaves a `void` record so a charge
 * request that arrives after the cancellation does nothing.
 *
 * The gateway call happens outside any transaction (no connection held during network
 * I/O); the outcome, the (group, event id) record and the emitted event commit together.
 */
export function createPaymentGroup(options: PaymentGroupOptions): GroupDefinition {
  const { sql, gateway } = options;
  const group = options.group ?? PAYMENT_GROUP;
  const logger = options.logger ?? silentLogger;

  async function onReserved(
    event: EventEnvelope<string, InventoryReservedData>,
    context: HandlerContext,
  ): Promise<void> {
    const d = event.data;
    const state = await chargeState(sql, d.orderId, event.id);
    if (state.payment && state.payment.status !== 'void') {
      await sql.begin(async (tx) => {
        await markProcessed(tx, group, event.id);
      });
      return;
    }
    if (state.payment?.status === 'void' || state.cancelled) {
      // The order was cancelled before it was charged (this group was paused or behind, a
      // retry waited out a gateway outage, a dead letter was replayed late): do not charge.
      // Unless an earlier attempt of this very event may have charged (its answer or its
      // commit was lost): then ask again with the same idempotency key, which returns that
      // charge, and the 'void' record written first makes the commit below refund it.
      if (!state.mayHaveCharged) {
        await sql.begin(async (tx) => {
          if (!(await markProcessed(tx, group, event.id))) return;
          await insertVoid(tx, d.orderId, event.id);
        });
        logger.info({ orderId: d.orderId, eventId: event.id }, 'order cancelled before it was charged: not charging');
        return;
      }
      await insertVoid(sql, d.orderId, event.id);
    }
    const request: StoredChargeRequest = { customerId: d.customerId, amount: d.total, currency: d.currency };
    const [attempt] = await sql<{ attempt_id: string }[]>`
      insert into payment_attempts (event_id, order_id, request) values (${event.id}, ${d.orderId}, ${sql.json(request)})
      returning attempt_id`;
    let result: ChargeResult;
    try {
      result = await gateway.charge({
        orderId: d.orderId,
        customerId: d.customerId,
        amount: d.total,
        currency: d.currency,
        idempotencyKey: event.id,
        signal: context.signal,
      });
    } catch (err) {
      // The gateway did nothing for this attempt: forget it (only it: an earlier or a
      // concurrent attempt of the same charge keeps its own row), so a cancellation before
      // the retry means no charge at all.
      if (attempt && err instanceof PaymentGatewayUnavailableError && err.nothingDone) {
        await sql`delete from payment_attempts where event_id = ${event.id} and attempt_id = ${attempt.attempt_id}`.catch(
          () => undefined,
        );
      }
      throw err;
    }
    await sql.begin(async (tx) => {
      // The outcome is recorded (here, or by a duplicate that won): no attempt is in doubt any more.
      await tx`delete from payment_attempts where event_id = ${event.id}`;
      if (!(await markProcessed(tx, group, event.id))) return;
      const inserted = await tx`
        insert into payments (order_id, status, amount, currency, charge_id, idempotency_key, failure_reason)
        values (${d.orderId}, ${result.status === 'succeeded' ? 'succeeded' : 'failed'}, ${d.total}, ${d.currency},
                ${result.status === 'succeeded' ? result.chargeId : null}, ${event.id},
                ${result.status === 'declined' ? result.reason : null})
        on conflict (order_id) do nothing
        returning 1`;
      if (inserted.length === 0) {
        // The order was cancelled while we charged (a 'void' record won the race): give
        // the money back before committing. A failed refund rolls back and retries; the
        // charge's idempotency key makes the retry find the same charge.
        if (result.status === 'succeeded') {
          const charge = { orderId: d.orderId, chargeKey: event.id, chargeId: result.chargeId, ...request };
          if (await refundVoided(tx, charge, event, context.signal)) {
            logger.warn(
              { orderId: d.orderId, eventId: event.id },
              'refunded a charge for an order cancelled meanwhile',
            );
          }
        }
        return;
      }
      if (result.status === 'succeeded') {
        const data: PaymentSucceededData = {
          orderId: d.orderId,
          paymentId: result.chargeId,
          amount: d.total,
          currency: d.currency,
        };
        await enqueueOutbox(tx, [
          { stream: ORDERS_STREAM, event: follow(event, OrderEventType.paymentSucceeded, data) },
        ]);
      } else {
        const data: PaymentFailedData = { orderId: d.orderId, amount: d.total, reason: result.reason };
        await enqueueOutbox(tx, [{ stream: ORDERS_STREAM, event: follow(event, OrderEventType.paymentFailed, data) }]);
      }
    });
  }

  async function onCancelled(event: EventEnvelope<string, OrderCancelledData>, context: HandlerContext): Promise<void> {
    const orderId = event.data.orderId;
    const payment = await getPayment(sql, orderId);
    if (payment?.status === 'succeeded' && payment.chargeId) {
      const { refundId } = await gateway.refund({
        chargeId: payment.chargeId,
        amount: payment.amount,
        idempotencyKey: event.id,
        signal: context.signal,
      });
      await sql.begin(async (tx) => {
        if (!(await markProcessed(tx, group, event.id))) return;
        await tx`
          update payments set status = 'refunded', refund_id = ${refundId}, updated_at = now()
          where order_id = ${orderId} and status = 'succeeded'`;
        const data: PaymentRefundedData = {
          orderId,
          paymentId: payment.chargeId ?? '',
          refundId,
          amount: payment.amount,
        };
        await enqueueOutbox(tx, [
          { stream: ORDERS_STREAM, event: follow(event, OrderEventType.paymentRefunded, data) },
        ]);
      });
      return;
    }
    // Charges whose outcome was never recorded (the answer was lost, and their charge request
    // waits for a retry or sits in the dead-letter stream): the money must not wait on a replay.
    // 'void' first, so that request charges nothing new if it comes back; then ask the gateway
    // again with each one's idempotency key: it answers with the charge it made, or (if the lost
    // call never reached it) charges now. Either way what succeeded is refunded below.
    const inDoubt = payment === undefined || payment.status === 'void' ? await chargesInDoubt(orderId) : [];
    if (inDoubt.length > 0) await insertVoid(sql, orderId, event.id);
    const asked: Array<{ eventId: string; request: StoredChargeRequest; result: ChargeResult }> = [];
    for (const { eventId, request } of inDoubt) {
      const result = await gateway.charge({ orderId, ...request, idempotencyKey: eventId, signal: context.signal });
      asked.push({ eventId, request, result });
    }
    await sql.begin(async (tx) => {
      if (!(await markProcessed(tx, group, event.id))) return;
      const [row] = await tx<{ status: PaymentStatus }[]>`
        select status from payments where order_id = ${orderId} for update`;
      // A charge committed after the read above (a retry of inventory.reserved ran beside
      // this one): roll back; the retry finds the payment and refunds it.
      if ((row === undefined && !(await insertVoid(tx, orderId, event.id))) || row?.status === 'succeeded') {
        throw new ConcurrencyError(`payment of order ${orderId} was recorded meanwhile`, { orderId });
      }
      for (const { eventId, request, result } of asked) {
        await tx`delete from payment_attempts where event_id = ${eventId}`;
        if (result.status !== 'succeeded') continue;
        const charge = { orderId, chargeKey: eventId, chargeId: result.chargeId, ...request };
        if (await refundVoided(tx, charge, event, context.signal)) {
          logger.warn({ orderId, eventId }, 'refunded a charge in doubt when its order was cancelled');
        }
      }
    });
  }

  /** Charges of an order that may have happened: one per charge request, with what it sent. */
  async function chargesInDoubt(orderId: string): Promise<Array<{ eventId: string; request: StoredChargeRequest }>> {
    const rows = await sql<{ event_id: string; request: StoredChargeRequest | null }[]>`
      select distinct on (event_id) event_id, request from payment_attempts
      where order_id = ${orderId} order by event_id, request is null`;
    const known = rows.filter((r) => r.request !== null);
    if (known.length < rows.length) {
      // Written before the request was stored (migration 12): resolved when that charge request is replayed.
      logger.warn({ orderId }, 'a charge in doubt without its request: replay its dead letter to refund it');
    }
    return known.map((r) => ({ eventId: r.event_id, request: r.request as StoredChargeRequest }));
  }

  /**
   * A charge that went through for an order cancelled meanwhile (its payment row is 'void'):
   * refund it, record the refund and emit `payment.refunded`. The row lock serialises the
   * paths that can find the same charge (its retry or replay, and the cancellation asking
   * again), so only the first refunds; the refund's key is the charge's, so even a crash
   * after the gateway call refunds once. False when the row was not 'void' (done already).
   */
  async function refundVoided(
    tx: Queryable,
    charge: { orderId: string; chargeKey: string; chargeId: string } & StoredChargeRequest,
    cause: EventEnvelope,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const [row] = await tx<{ status: PaymentStatus }[]>`
      select status from payments where order_id = ${charge.orderId} for update`;
    if (row?.status !== 'void') return false;
    const { refundId } = await gateway.refund({
      chargeId: charge.chargeId,
      amount: charge.amount,
      idempotencyKey: `refund:${charge.chargeKey}`,
      ...(signal ? { signal } : {}),
    });
    await tx`
      update payments set status = 'refunded', amount = ${charge.amount}, currency = ${charge.currency},
        charge_id = ${charge.chargeId}, refund_id = ${refundId}, updated_at = now()
      where order_id = ${charge.orderId}`;
    const data: PaymentRefundedData = {
      orderId: charge.orderId,
      paymentId: charge.chargeId,
      refundId,
      amount: charge.amount,
    };
    await enqueueOutbox(tx, [{ stream: ORDERS_STREAM, event: follow(cause, OrderEventType.paymentRefunded, data) }]);
    return true;
  }

  return {
    group,
    stream: ORDERS_STREAM,
    types: [OrderEventType.inventoryReserved, OrderEventType.cancelled],
    handler: async (event, context) => {
      if (await isProcessed(sql, group, event.id)) return;
      if (event.type === OrderEventType.inventoryReserved) {
        await onReserved(event as EventEnvelope<string, InventoryReservedData>, context);
      } else if (event.type === OrderEventType.cancelled) {
        await onCancelled(event as EventEnvelope<string, OrderCancelledData>, context);
      }
    },
  };
}
