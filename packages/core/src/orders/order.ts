import { DomainError } from '../errors/index';
import type { EventEnvelope } from '../events/envelope';
import type { PendingEvent } from '../store/event-store';
import {
  MAX_REASON_LENGTH,
  type OrderCancelledData,
  type OrderConfirmedData,
  type OrderCreatedData,
  type OrderDeliveredData,
  type OrderPaidData,
  type OrderShippedData,
} from './events';

/** Every status an order can be in, in lifecycle order (CANCELLED can follow PENDING, CONFIRMED or PAID). */
export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'PAID', 'SHIPPED', 'DELIVERED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface OrderItem {
  sku: string;
  quantity: number;
  unitPrice: number;
}

/** The order aggregate's state, folded from its events. */
export interface Order {
  readonly id: string;
  readonly customerId: string;
  readonly status: OrderStatus;
  readonly items: readonly OrderItem[];
  readonly total: number;
  readonly currency: string;
  readonly paymentId?: string;
  readonly cancellationReason?: string;
  readonly cancelledBy?: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Error codes of the order rules; the API maps them (all 409/422). */
export const OrderErrorCode = {
  notPending: 'ORDER_NOT_PENDING',
  notConfirmed: 'ORDER_NOT_CONFIRMED',
  notPaid: 'ORDER_NOT_PAID',
  notShipped: 'ORDER_NOT_SHIPPED',
  alreadyCancelled: 'ORDER_ALREADY_CANCELLED',
  cannotCancelShipped: 'CANNOT_CANCEL_SHIPPED',
  cannotCancelDelivered: 'CANNOT_CANCEL_DELIVERED',
  invalidTotal: 'ORDER_TOTAL_MISMATCH',
  totalOutOfRange: 'ORDER_TOTAL_OUT_OF_RANGE',
  emptyOrder: 'ORDER_EMPTY',
} as const;

type OrderEvent =
  | { type: 'order.created'; data: OrderCreatedData }
  | { type: 'order.confirmed'; data: OrderConfirmedData }
  | { type: 'order.paid'; data: OrderPaidData }
  | { type: 'order.cancelled'; data: OrderCancelledData }
  | { type: 'order.shipped'; data: OrderShippedData }
  | { type: 'order.delivered'; data: OrderDeliveredData };

const ORDER_EVENT_TYPES = new Set([
  'order.created',
  'order.confirmed',
  'order.paid',
  'order.cancelled',
  'order.shipped',
  'order.delivered',
]);

export function isOrderEvent(event: Pick<EventEnvelope, 'type'>): boolean {
  return ORDER_EVENT_TYPES.has(event.type);
}

/** Applies one event to the state. Pure; unknown types are ignored (forward compatibility). */
export function evolve(state: Order | undefined, event: EventEnvelope): Order | undefined {
  const e = event as unknown as OrderEvent & { aggregateVersion?: number; occurredAt: string };
  const version = event.aggregateVersion ?? (state?.version ?? 0) + 1;
  if (e.type === 'order.created') {
    return {
      id: e.data.orderId,
      customerId: e.data.customerId,
      status: 'PENDING',
      items: e.data.items,
      total: e.data.total,
      currency: e.data.currency ?? 'EUR',
      version,
      createdAt: event.occurredAt,
      updatedAt: event.occurredAt,
    };
  }
  if (!state) return state;
  const next = { ...state, version, updatedAt: event.occurredAt };
  switch (e.type) {
    case 'order.confirmed':
      return { ...next, status: 'CONFIRMED' };
    case 'order.paid':
      return { ...next, status: 'PAID', paymentId: e.data.paymentId };
    case 'order.cancelled':
      return { ...next, status: 'CANCELLED', cancellationReason: e.data.reason, cancelledBy: e.data.cancelledBy };
    case 'order.shipped':
      return { ...next, status: 'SHIPPED' };
    case 'order.delivered':
      return { ...next, status: 'DELIVERED' };
    default:
      return next;
  }
}

/** Folds events (in version order) into the state; undefined when there are none. */
export function foldOrder(events: readonly EventEnvelope[]): Order | undefined {
  let state: Order | undefined;
  for (const e of events) state = evolve(state, e);
  return state;
}

export interface CreateOrderInput {
  orderId: string;
  customerId: string;
  items: OrderItem[];
  currency?: string;
  /** When given, must equal the sum of the lines. */
  total?: number;
  shippingAddress?: OrderCreatedData['shippingAddress'];
}

// Deciders: state + command -> events, or a DomainError naming the broken rule.

export function decideCreate(input: CreateOrderInput): PendingEvent<'order.created', OrderCreatedData>[] {
  if (input.items.length === 0) throw new DomainError(OrderErrorCode.emptyOrder, 'an order needs at least one item');
  const total = orderTotal(input.items);
  if (input.total !== undefined && input.total !== total) {
    throw new DomainError(OrderErrorCode.invalidTotal, `total ${input.total} does not match the lines (${total})`, {
      details: { expected: total, actual: input.total },
    });
  }
  const data: OrderCreatedData = {
    orderId: input.orderId,
    customerId: input.customerId,
    items: input.items,
    total,
    currency: input.currency ?? 'EUR',
    ...(input.shippingAddress ? { shippingAddress: input.shippingAddress } : {}),
  };
  return [{ type: 'order.created', data }];
}

/**
 * The sum of the lines, in cents. Past 2^53 cents a sum is no longer exact, and neither
 * Postgres (bigint) nor the API's integers can hold it: an order stored with it could never
 * be read back. So every line, and the running sum, must be a safe, non-negative integer;
 * otherwise the command is refused before any event exists.
 */
function orderTotal(items: readonly OrderItem[]): number {
  let total = 0;
  for (const item of items) {
    const line = item.quantity * item.unitPrice;
    total += line;
    if (!Number.isSafeInteger(line) || !Number.isSafeInteger(total) || total < 0) {
      throw new DomainError(
        OrderErrorCode.totalOutOfRange,
        `the order total must be a whole number of cents from 0 to ${Number.MAX_SAFE_INTEGER}`,
        { details: { field: 'items', max: Number.MAX_SAFE_INTEGER } },
      );
    }
  }
  return total;
}

export function decideConfirm(order: Order): PendingEvent[] {
  if (order.status !== 'PENDING') {
    throw rule(
      OrderErrorCode.notPending,
      `order ${order.id} is ${order.status}; only a PENDING order can be confirmed`,
      order,
    );
  }
  return [{ type: 'order.confirmed', data: { orderId: order.id, customerId: order.customerId } }];
}

export function decidePay(order: Order, payment: { paymentId: string; amount: number }): PendingEvent[] {
  if (order.status !== 'CONFIRMED') {
    throw rule(
      OrderErrorCode.notConfirmed,
      `order ${order.id} is ${order.status}; only a CONFIRMED order can be paid`,
      order,
    );
  }
  return [{ type: 'order.paid', data: { orderId: order.id, paymentId: payment.paymentId, amount: payment.amount } }];
}

export function decideShip(order: Order, shipment: { carrier?: string; trackingNumber?: string } = {}): PendingEvent[] {
  if (order.status !== 'PAID') {
    throw rule(OrderErrorCode.notPaid, `order ${order.id} is ${order.status}; only a PAID order can be shipped`, order);
  }
  return [{ type: 'order.shipped', data: { orderId: order.id, ...shipment } }];
}

export function decideDeliver(order: Order): PendingEvent[] {
  if (order.status !== 'SHIPPED') {
    throw rule(
      OrderErrorCode.notShipped,
      `order ${order.id} is ${order.status}; only a SHIPPED order can be delivered`,
      order,
    );
  }
  return [{ type: 'order.delivered', data: { orderId: order.id } }];
}

/**
 * A cancellation reason cut to what `order.cancelled` holds (`MAX_REASON_LENGTH` UTF-16 units,
 * as the schema counts, the last an ellipsis; never half a surrogate pair), for reasons
 * composed from other events' data.
 */
export function fitReason(reason: string): string {
  if (reason.length <= MAX_REASON_LENGTH) return reason;
  let cut = MAX_REASON_LENGTH - 1;
  if (/[\uD800-\uDBFF]/.test(reason.charAt(cut - 1))) cut -= 1;
  return `${reason.slice(0, cut)}…`;
}

export function decideCancel(order: Order, reason: string, cancelledBy: string): PendingEvent[] {
  switch (order.status) {
    case 'CANCELLED':
      throw rule(OrderErrorCode.alreadyCancelled, `order ${order.id} is already cancelled`, order);
    case 'SHIPPED':
      throw rule(
        OrderErrorCode.cannotCancelShipped,
        `order ${order.id} has shipped and can no longer be cancelled`,
        order,
      );
    case 'DELIVERED':
      throw rule(
        OrderErrorCode.cannotCancelDelivered,
        `order ${order.id} was delivered and can no longer be cancelled`,
        order,
      );
    default:
      return [
        {
          type: 'order.cancelled',
          data: { orderId: order.id, customerId: order.customerId, reason, cancelledBy, previousStatus: order.status },
        },
      ];
  }
}

function rule(code: string, message: string, order: Order): DomainError {
  return new DomainError(code, message, { details: { orderId: order.id, status: order.status } });
}
