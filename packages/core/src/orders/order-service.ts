import type { EventEnvelope } from '../events/envelope';
import { getOrderView, type ListOrdersQuery, listOrders, type OrderPage } from '../projection/order-projection';
import { getSaga, type OrderSaga } from '../saga/order-saga';
import type { Sql } from '../store/client';
import { loadEvents } from '../store/event-store';
import {
  type CommandOptions,
  type CommandResult,
  cancelOrder,
  confirmOrder,
  createOrder,
  deliverOrder,
  loadOrder,
  markOrderPaid,
  shipOrder,
} from './commands';
import type { CreateOrderInput, Order } from './order';

/**
 * The order domain's entry point for callers (the API): commands go to the event store
 * (each appends with the loaded version; a concurrent change is a ConcurrencyError, 409),
 * queries read the `orders_view` read model, history reads the event store.
 */
export class OrderService {
  constructor(private readonly sql: Sql) {}

  create(input: CreateOrderInput, options: Omit<CommandOptions, 'expectedVersion'> = {}): Promise<CommandResult> {
    return createOrder(this.sql, input, options);
  }

  confirm(orderId: string, options?: CommandOptions): Promise<CommandResult> {
    return confirmOrder(this.sql, orderId, options);
  }

  markPaid(orderId: string, payment: { paymentId: string; amount: number }, options?: CommandOptions) {
    return markOrderPaid(this.sql, orderId, payment, options);
  }

  cancel(orderId: string, reason: string, cancelledBy: string, options?: CommandOptions): Promise<CommandResult> {
    return cancelOrder(this.sql, orderId, reason, cancelledBy, options);
  }

  ship(orderId: string, shipment?: { carrier?: string; trackingNumber?: string }, options?: CommandOptions) {
    return shipOrder(this.sql, orderId, shipment, options);
  }

  deliver(orderId: string, options?: CommandOptions): Promise<CommandResult> {
    return deliverOrder(this.sql, orderId, options);
  }

  /** The order as its events say now (strongly consistent). */
  load(orderId: string): Promise<Order | undefined> {
    return loadOrder(this.sql, orderId);
  }

  /** The order from the read model (eventually consistent). */
  get(orderId: string): Promise<Order | undefined> {
    return getOrderView(this.sql, orderId);
  }

  list(query?: ListOrdersQuery): Promise<OrderPage> {
    return listOrders(this.sql, query);
  }

  /** The order-processing saga of the order (state, data, history); undefined before it started. */
  saga(orderId: string): Promise<OrderSaga | undefined> {
    return getSaga(this.sql, orderId);
  }

  /** The order's events in version order (empty when the order does not exist). */
  history(orderId: string, fromVersion?: number): Promise<EventEnvelope[]> {
    return loadEvents(this.sql, orderId, fromVersion);
  }
}
