import { z } from 'zod';
import type { EventCatalog } from '../events/catalog';

/** Stream the order domain publishes to. */
export const ORDERS_STREAM = 'orders';

/** How a SKU is spelled everywhere: `/v1/inventory/:sku`, order lines (API), stock events. */
export const SKU_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const SKU_RULE = 'letters, digits, . _ - only; starts with a letter or digit';
/** The longest cancellation reason `order.cancelled` holds. */
export const MAX_REASON_LENGTH = 500;

const money = z.number().int().nonnegative().describe('amount in cents');
const item = z
  .object({ sku: z.string().min(1).max(64), quantity: z.number().int().positive(), unitPrice: money })
  .strict();
const orderId = z.string().min(1).max(200);
const customerId = z.string().min(1).max(128);
const currency = z.string().length(3);
const stockLine = z.object({ sku: z.string().min(1).max(64), quantity: z.number().int().positive() }).strict();

export const orderCreatedData = z
  .object({
    orderId,
    customerId,
    items: z.array(item).min(1).max(100),
    total: money,
    currency: currency.default('EUR'),
    shippingAddress: z
      .object({
        line1: z.string().min(1),
        city: z.string().min(1),
        postalCode: z.string().min(1),
        country: z.string().length(2),
      })
      .strict()
      .optional(),
  })
  .strict();

export const orderConfirmedData = z.object({ orderId, customerId }).strict();
export const orderPaidData = z.object({ orderId, paymentId: z.string().min(1), amount: money }).strict();
export const orderCancelledData = z
  .object({
    orderId,
    customerId,
    reason: z.string().min(1).max(MAX_REASON_LENGTH),
    cancelledBy: z.string().min(1).max(128),
    /** Status the order had when it was cancelled: says which compensations apply. */
    previousStatus: z.string().min(1),
  })
  .strict();
export const orderShippedData = z
  .object({ orderId, carrier: z.string().min(1).max(64).optional(), trackingNumber: z.string().max(128).optional() })
  .strict();
export const orderDeliveredData = z.object({ orderId }).strict();

export const inventoryReservedData = z
  .object({ orderId, customerId, items: z.array(stockLine).min(1), total: money, currency })
  .strict();
export const inventoryReservationFailedData = z
  .object({
    orderId,
    reason: z.string().min(1),
    unavailable: z.array(
      z.object({ sku: z.string(), requested: z.number().int(), available: z.number().int() }).strict(),
    ),
  })
  .strict();
export const inventoryReleasedData = z.object({ orderId, items: z.array(stockLine) }).strict();
export const stockReceivedData = z
  .object({
    /** Spelled as `/v1/inventory/:sku` accepts it, so the stock can be read back there. */
    sku: z.string().min(1).max(64).regex(SKU_PATTERN, SKU_RULE),
    // Range first, and stop there: 1e300 is one "too big" naming 1000000, not also the safe-integer bound.
    quantity: z.number().positive({ abort: true }).max(1_000_000, { abort: true }).int(),
    /** The warehouse's own reference for the delivery (goods receipt), for the record. */
    receiptId: z.string().min(1).max(128).optional(),
  })
  .strict();

export const paymentSucceededData = z
  .object({ orderId, paymentId: z.string().min(1), amount: money, currency })
  .strict();
export const paymentFailedData = z.object({ orderId, amount: money, reason: z.string().min(1) }).strict();
export const paymentRefundedData = z
  .object({ orderId, paymentId: z.string().min(1), refundId: z.string().min(1), amount: money })
  .strict();

export type OrderCreatedData = z.output<typeof orderCreatedData>;
export type OrderConfirmedData = z.output<typeof orderConfirmedData>;
export type OrderPaidData = z.output<typeof orderPaidData>;
export type OrderCancelledData = z.output<typeof orderCancelledData>;
export type OrderShippedData = z.output<typeof orderShippedData>;
export type OrderDeliveredData = z.output<typeof orderDeliveredData>;
export type InventoryReservedData = z.output<typeof inventoryReservedData>;
export type InventoryReservationFailedData = z.output<typeof inventoryReservationFailedData>;
export type InventoryReleasedData = z.output<typeof inventoryReleasedData>;
export type StockReceivedData = z.output<typeof stockReceivedData>;
export type PaymentSucceededData = z.output<typeof paymentSucceededData>;
export type PaymentFailedData = z.output<typeof paymentFailedData>;
export type PaymentRefundedData = z.output<typeof paymentRefundedData>;

/** Every event type of the order domain, by name. */
export const OrderEventType = {
  created: 'order.created',
  confirmed: 'order.confirmed',
  paid: 'order.paid',
  cancelled: 'order.cancelled',
  shipped: 'order.shipped',
  delivered: 'order.delivered',
  inventoryReserved: 'inventory.reserved',
  inventoryReservationFailed: 'inventory.reservation_failed',
  inventoryReleased: 'inventory.released',
  paymentSucceeded: 'payment.succeeded',
  paymentFailed: 'payment.failed',
  paymentRefunded: 'payment.refunded',
  stockReceived: 'warehouse.stock_received',
} as const;

const ID = '0191f0b2-7c1e-7000-8000-000000000001';

/**
 * Registers the order domain's event types (all on the `orders` stream). Each is published
 * by its service through the outbox (`order.*` by the order service, `inventory.*` by
 * inventory, `payment.*` by payment), never posted from outside, except
 * `warehouse.stock_received`: the warehouse's system posts it to `POST /v1/events` when
 * goods arrive, and the inventory service adds them to the SKU's available stock.
 */
export function registerOrderEvents(catalog: EventCatalog): EventCatalog {
  const on = (type: string, schema: z.ZodType, description: string, example: unknown) =>
    catalog.register({
      type,
      schemaVersion: 1,
      stream: ORDERS_STREAM,
      schema,
      description,
      example,
      producedBy: type.slice(0, type.indexOf('.')),
    });
  on('order.created', orderCreatedData, 'A customer placed an order.', {
    orderId: ID,
    customerId: 'cust-42',
    items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }],
    total: 2500,
    currency: 'EUR',
  });
  on('order.confirmed', orderConfirmedData, 'The order was confirmed (stock reserved, payment accepted or by hand).', {
    orderId: ID,
    customerId: 'cust-42',
  });
  on('order.paid', orderPaidData, 'Payment for the order was captured.', {
    orderId: ID,
    paymentId: 'ch_123',
    amount: 2500,
  });
  on('order.cancelled', orderCancelledData, 'The order was cancelled; compensations follow.', {
    orderId: ID,
    customerId: 'cust-42',
    reason: 'out_of_stock',
    cancelledBy: 'saga',
    previousStatus: 'PENDING',
  });
  on('order.shipped', orderShippedData, 'The order left the warehouse.', { orderId: ID, carrier: 'dhl' });
  on('order.delivered', orderDeliveredData, 'The order reached the customer.', { orderId: ID });
  on('inventory.reserved', inventoryReservedData, 'Stock for every line of the order was reserved.', {
    orderId: ID,
    customerId: 'cust-42',
    items: [{ sku: 'SKU-1', quantity: 2 }],
    total: 2500,
    currency: 'EUR',
  });
  on(
    'inventory.reservation_failed',
    inventoryReservationFailedData,
    'Not enough stock for at least one line: nothing was reserved (a business outcome, not an error).',
    { orderId: ID, reason: 'out_of_stock', unavailable: [{ sku: 'SKU-1', requested: 2, available: 1 }] },
  );
  on('inventory.released', inventoryReleasedData, 'Reserved stock was returned (order cancelled).', {
    orderId: ID,
    items: [{ sku: 'SKU-1', quantity: 2 }],
  });
  on('payment.succeeded', paymentSucceededData, 'The payment gateway charged the customer.', {
    orderId: ID,
    paymentId: 'ch_123',
    amount: 2500,
    currency: 'EUR',
  });
  on('payment.failed', paymentFailedData, 'The payment gateway declined the charge.', {
    orderId: ID,
    amount: 2500,
    reason: 'card_declined',
  });
  on('payment.refunded', paymentRefundedData, 'A captured payment was refunded (order cancelled after payment).', {
    orderId: ID,
    paymentId: 'ch_123',
    refundId: 're_123',
    amount: 2500,
  });
  catalog.register({
    type: OrderEventType.stockReceived,
    schemaVersion: 1,
    stream: ORDERS_STREAM,
    schema: stockReceivedData,
    description: "Goods arrived at the warehouse: their quantity is added to the SKU's available stock.",
    example: { sku: 'SKU-1', quantity: 24, receiptId: 'GR-2026-0042' },
  });
  return catalog;
}
