import { z } from 'zod';
import type { EventCatalog } from '../events/catalog';

/** Stream the order domain publishes to. */
export const ORDERS_STREAM = 'orders';

const money = z.number().int().nonnegative().describe('amount in cents');
const item = z
  .object({ sku: z.string().min(1).max(64), quantity: z.number().int().positive(), unitPrice: money })
  .strict();

export const orderCreatedData = z
  .object({
    orderId: z.string().min(1),
    customerId: z.string().min(1).max(128),
    items: z.array(item).min(1).max(100),
    total: money,
    currency: z.string().length(3).default('EUR'),
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

/** Registers the order domain's event types. The domain module extends this list. */
export function registerOrderEvents(catalog: EventCatalog): EventCatalog {
  return catalog.register({
    type: 'order.created',
    schemaVersion: 1,
    stream: ORDERS_STREAM,
    schema: orderCreatedData,
    description: 'A customer placed an order.',
    example: {
      orderId: '0191f0b2-7c1e-7000-8000-000000000001',
      customerId: 'cust-42',
      items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }],
      total: 2500,
      currency: 'EUR',
    },
  });
}
