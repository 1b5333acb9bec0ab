import { createCatalog } from '../catalog';
import { ConcurrencyError, NotFoundError } from '../errors/index';
import type { EventEnvelope, EventMetadata } from '../events/envelope';
import type { Queryable } from '../store/client';
import { appendToStream, loadEvents, type PendingEvent } from '../store/event-store';
import { ORDERS_STREAM } from './events';
import {
  type CreateOrderInput,
  decideCancel,
  decideConfirm,
  decideCreate,
  decideDeliver,
  decidePay,
  decideShip,
  evolve,
  foldOrder,
  type Order,
} from './order';

export interface CommandOptions {
  /** When set, the command fails with a ConcurrencyError unless the order is at this version. */
  expectedVersion?: number;
  /** Copied onto every event (correlation and causation ids). */
  metadata?: EventMetadata;
}

export interface CommandResult {
  order: Order;
  events: EventEnvelope[];
}

/** Loads an order by replaying its events; undefined when it does not exist. */
export async function loadOrder(sql: Queryable, orderId: string): Promise<Order | undefined> {
  return foldOrder(await loadEvents(sql, orderId));
}

export async function getOrderOrThrow(sql: Queryable, orderId: string): Promise<Order> {
  const order = await loadOrder(sql, orderId);
  if (!order) throw new NotFoundError(`order ${orderId} not found`, { orderId });
  return order;
}

/** Places an order. An order id that already exists is a ConcurrencyError. */
export async function createOrder(
  sql: Queryable,
  input: CreateOrderInput,
  options: Omit<CommandOptions, 'expectedVersion'> = {},
): Promise<CommandResult> {
  const events = withMetadata(decideCreate(input), options.metadata);
  return commit(sql, input.orderId, undefined, 0, events);
}

export function confirmOrder(sql: Queryable, orderId: string, options: CommandOptions = {}): Promise<CommandResult> {
  return execute(sql, orderId, options, (order) => decideConfirm(order));
}

export function markOrderPaid(
  sql: Queryable,
  orderId: string,
  payment: { paymentId: string; amount: number },
  options: CommandOptions = {},
): Promise<CommandResult> {
  return execute(sql, orderId, options, (order) => decidePay(order, payment));
}

export function cancelOrder(
  sql: Queryable,
  orderId: string,
  reason: string,
  cancelledBy: string,
  options: CommandOptions = {},
): Promise<CommandResult> {
  return execute(sql, orderId, options, (order) => decideCancel(order, reason, cancelledBy));
}

export function shipOrder(
  sql: Queryable,
  orderId: string,
  shipment: { carrier?: string; trackingNumber?: string } = {},
  options: CommandOptions = {},
): Promise<CommandResult> {
  return execute(sql, orderId, options, (order) => decideShip(order, shipment));
}

export function deliverOrder(sql: Queryable, orderId: string, options: CommandOptions = {}): Promise<CommandResult> {
  return execute(sql, orderId, options, (order) => decideDeliver(order));
}

/** Load, decide, append with the loaded version as expected version. */
async function execute(
  sql: Queryable,
  orderId: string,
  options: CommandOptions,
  decide: (order: Order) => PendingEvent[],
): Promise<CommandResult> {
  const order = await getOrderOrThrow(sql, orderId);
  if (options.expectedVersion !== undefined && options.expectedVersion !== order.version) {
    throw new ConcurrencyError(`order ${orderId} is at version ${order.version}, expected ${options.expectedVersion}`, {
      aggregateId: orderId,
      expectedVersion: options.expectedVersion,
      actualVersion: order.version,
    });
  }
  return commit(sql, orderId, order, order.version, withMetadata(decide(order), options.metadata));
}

/** The order domain's schemas: what the relay and every consumer will check these events against. */
const catalog = createCatalog();

async function commit(
  sql: Queryable,
  orderId: string,
  order: Order | undefined,
  expectedVersion: number,
  events: PendingEvent[],
): Promise<CommandResult> {
  // An event the catalog refuses would be stored, then parked by the relay: the order would
  // wait for ever on an event no group ever reads. Refuse it before anything is written.
  for (const e of events) catalog.validate(e.type, e.schemaVersion ?? 1, e.data);
  const result = await appendToStream(sql, orderId, expectedVersion, events, { stream: ORDERS_STREAM });
  const state = result.events.reduce<Order | undefined>((s, e) => evolve(s, e), order);
  if (!state) throw new Error(`order ${orderId} has no state after append`);
  return { order: state, events: result.events };
}

function withMetadata(events: PendingEvent[], metadata: EventMetadata | undefined): PendingEvent[] {
  return metadata ? events.map((e) => ({ ...e, metadata })) : events;
}
