import {
  ConcurrencyError,
  MAX_REASON_LENGTH,
  NotFoundError,
  newEventId,
  ORDER_STATUSES,
  type Order,
  type OrderItem,
  type OrderService,
  SAGA_STATES,
  SKU_PATTERN,
  SKU_RULE,
  ValidationError,
} from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { v5 as uuidv5 } from 'uuid';
import { z } from 'zod';
import type { ApiRoutePlugin } from '../deps';
import { idempotencyKeyHeader } from '../http/idempotency';
import { jsonInteger, queryInteger } from '../http/integers';
import { problemResponses } from '../http/problem';
import { storableString } from '../http/text';
import { limitedBy, type RouteContext } from '../route-context';

/**
 * Upper bounds of an order line. With at most 100 lines, the largest total is
 * 100 x 10,000 x 1,000,000,000 = 1e15 cents: a safe integer, and well inside Postgres bigint.
 */
const MAX_QUANTITY = 10_000;
const MAX_UNIT_PRICE = 1_000_000_000;
const MAX_ITEMS = 100;
/** Aggregate versions are Postgres `integer`s. */
const MAX_VERSION = 2_147_483_647;

/** ISO codes (currency, country): ASCII letters only, so upper-casing keeps their length. */
function asciiLetters(length: number) {
  return z
    .string()
    .regex(new RegExp(`^[A-Za-z]{${length}}$`), `must be ${length} letters A-Z`)
    .transform((s) => s.toUpperCase());
}

const itemSchema = z.strictObject({
  sku: z
    .string()
    .min(1)
    .max(64)
    .regex(SKU_PATTERN, SKU_RULE)
    .meta({ description: 'Spelled as `/v1/inventory/:sku` takes it', example: 'SKU-1' }),
  quantity: jsonInteger(1, MAX_QUANTITY).meta({ description: `At most ${MAX_QUANTITY}`, example: 2 }),
  unitPrice: jsonInteger(0, MAX_UNIT_PRICE).meta({
    description: `Cents, at most ${MAX_UNIT_PRICE} (10 million in currency units)`,
    example: 1250,
  }),
});

const createOrderSchema = z
  .strictObject({
    orderId: storableString(1, 200)
      .refine((id) => id !== '.' && id !== '..', 'must not be "." or ".." (not usable in a URL path)')
      .optional()
      .meta({ description: 'Client-chosen id (makes retries safe: a repeat is 409); default a new UUID v7' }),
    customerId: storableString(1, 128).meta({ example: 'cust-42' }),
    items: z.array(itemSchema).min(1).max(MAX_ITEMS),
    currency: asciiLetters(3).optional().meta({ description: 'ISO 4217 code; default EUR', example: 'EUR' }),
    total: jsonInteger(0)
      .optional()
      .meta({ description: 'When given, must equal the sum of the lines (else 422 ORDER_TOTAL_MISMATCH)' }),
    shippingAddress: z
      .strictObject({
        line1: storableString(1, 200),
        city: storableString(1, 100),
        postalCode: storableString(1, 20),
        country: asciiLetters(2),
      })
      .optional(),
  })
  .meta({
    description: 'A new order',
    example: { customerId: 'cust-42', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }], currency: 'EUR' },
  });

const EXAMPLE_ID = '0191f0b2-7c1e-7000-8000-000000000001';

const orderExample = {
  id: EXAMPLE_ID,
  customerId: 'cust-42',
  status: 'PAID',
  items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }],
  total: 2500,
  currency: 'EUR',
  paymentId: 'ch_123',
  version: 3,
  createdAt: '2026-01-15T10:00:00.000Z',
  updatedAt: '2026-01-15T10:00:01.250Z',
} as const;

const orderSchema = z
  .object({
    id: z.string(),
    customerId: z.string(),
    status: z.enum(ORDER_STATUSES),
    items: z.array(z.object({ sku: z.string(), quantity: z.number().int(), unitPrice: z.number().int() })),
    total: z.number().int().meta({ description: 'Cents' }),
    currency: z.string(),
    paymentId: z.string().optional(),
    cancellationReason: z.string().optional(),
    cancelledBy: z.string().optional(),
    version: z.number().int().meta({ description: 'Aggregate version; send it as expectedVersion to guard a command' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ description: 'An order', example: orderExample });

const sagaSchema = z
  .object({
    state: z.enum(SAGA_STATES),
    data: z
      .record(z.string(), z.unknown())
      .meta({ description: 'What the saga learned (paymentId, cancelReason, ...)' }),
    history: z.array(
      z.object({
        event: z.string().meta({ description: 'Event (or timeout) that moved the saga' }),
        eventId: z.string(),
        state: z.enum(SAGA_STATES),
        at: z.string(),
      }),
    ),
  })
  .meta({ description: 'The order-processing saga: reserve stock, take payment, confirm; or compensate' });

const sagaExample = {
  state: 'completed',
  data: { reserved: true, paymentId: 'ch_123' },
  history: [
    {
      event: 'order.created',
      eventId: '0191f0b2-7c1e-7000-8000-00000000000a',
      state: 'awaiting_reservation',
      at: '2026-01-15T10:00:00.100Z',
    },
    {
      event: 'inventory.reserved',
      eventId: '0191f0b2-7c1e-7000-8000-00000000000b',
      state: 'awaiting_payment',
      at: '2026-01-15T10:00:00.400Z',
    },
    {
      event: 'payment.succeeded',
      eventId: '0191f0b2-7c1e-7000-8000-00000000000c',
      state: 'completed',
      at: '2026-01-15T10:00:01.200Z',
    },
  ],
} as const;

const orderWithSagaSchema = orderSchema
  .extend({
    saga: sagaSchema.optional().meta({ description: 'Absent until the saga has seen `order.created`' }),
  })
  .meta({
    description: 'An order from the read model, with its saga',
    example: { ...orderExample, saga: sagaExample },
  });

const eventSchema = z.object({
  id: z.string(),
  type: z.string(),
  schemaVersion: z.number().int(),
  aggregateId: z.string().optional(),
  aggregateVersion: z.number().int().optional(),
  occurredAt: z.string(),
  data: z.unknown(),
  metadata: z.record(z.string(), z.string()),
});

const historyExample = {
  orderId: EXAMPLE_ID,
  events: [
    {
      id: '0191f0b2-7c1e-7000-8000-00000000000a',
      type: 'order.created',
      schemaVersion: 1,
      aggregateId: EXAMPLE_ID,
      aggregateVersion: 1,
      occurredAt: '2026-01-15T10:00:00.000Z',
      data: {
        orderId: EXAMPLE_ID,
        customerId: 'cust-42',
        items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 1250 }],
        total: 2500,
        currency: 'EUR',
      },
      metadata: {},
    },
  ],
};

const idParams = z.strictObject({ id: storableString(1, 200) });
const expectedVersion = jsonInteger(1, MAX_VERSION)
  .optional()
  .meta({ description: 'Fail with 409 unless the order is still at this version', example: 1 });

/** The command's optimistic-concurrency guard, when the request sent one. */
function guardedBy(version: number | undefined): { expectedVersion?: number } {
  return version === undefined ? {} : { expectedVersion: version };
}

/** Core names a list parameter (`cursor`); the API names where it came from (`query.cursor`). */
function inQuery(err: unknown): unknown {
  if (!(err instanceof ValidationError)) return err;
  return new ValidationError(
    err.message,
    err.issues.map((issue) => ({ ...issue, field: `query.${issue.field}` })),
  );
}

/** Namespace of the order ids derived from an Idempotency-Key (UUID v5). */
const ORDER_ID_NAMESPACE = '6f1c2b7e-4d0a-5e8b-9c3f-2a7d1e0b4c59';

function sameItems(a: readonly OrderItem[], b: readonly OrderItem[]): boolean {
  const line = (i: OrderItem) => `${i.sku}|${i.quantity}|${i.unitPrice}`;
  return a.length === b.length && a.every((item, n) => line(item) === line(b[n] as OrderItem));
}

function present(order: Order): z.infer<typeof orderSchema> {
  return { ...order, items: [...order.items] };
}

/**
 * `/v1/orders`: commands append to the event store (409 on a concurrent change, 422 when
 * a rule refuses: ORDER_NOT_PENDING, CANNOT_CANCEL_SHIPPED, ...); reads come from the read
 * model, falling back to the event store for an order the projection has not reached yet.
 */
export function ordersRoutes(orders: OrderService): FastifyPluginAsyncZod<RouteContext> {
  return async (app, ctx) => {
    // Order commands write to Postgres: one ingest budget per client across all of them.
    const ingest = ctx.limits.ingest;
    const commands = limitedBy(ingest && { ...ingest, groupId: 'order-commands' });
    const find = async (id: string): Promise<Order> => {
      const order = (await orders.get(id)) ?? (await orders.load(id));
      if (!order) throw new NotFoundError(`order ${id} not found`, { orderId: id });
      return order;
    };

    app.post(
      '/orders',
      {
        config: commands,
        schema: {
          tags: ['orders'],
          summary: 'Place an order',
          description:
            'Appends `order.created` (and its outbox row) in one transaction; the saga then reserves stock, ' +
            'charges and confirms it, or cancels it with a reason. With an `Idempotency-Key`, a repeat of the ' +
            'request returns the first answer (the same order) and places nothing.',
          headers: z.looseObject({ 'idempotency-key': idempotencyKeyHeader }),
          body: createOrderSchema,
          response: { 201: orderSchema, ...problemResponses(400, 409, 415, 422, 429, 503) },
        },
      },
      async (request, reply) => {
        const b = request.body;
        const key = request.headers['idempotency-key'];
        // With a key and no id, the id comes from the key: a repeat whose first answer was lost
        // (Postgres or Redis failed after the commit, and the key was freed) finds that order.
        const keyed = b.orderId === undefined && typeof key === 'string';
        const orderId = b.orderId ?? (keyed ? uuidv5(key as string, ORDER_ID_NAMESPACE) : newEventId());
        const answer = await app.idempotency.answer(request, reply, async () => {
          try {
            const { order } = await orders.create({
              orderId,
              customerId: b.customerId,
              items: b.items,
              ...(b.currency ? { currency: b.currency } : {}),
              ...(b.total === undefined ? {} : { total: b.total }),
              ...(b.shippingAddress ? { shippingAddress: b.shippingAddress } : {}),
            });
            return { status: 201, body: present(order) };
          } catch (err) {
            const placed = keyed && err instanceof ConcurrencyError ? await orders.load(orderId) : undefined;
            if (placed && placed.customerId === b.customerId && sameItems(placed.items, b.items)) {
              return { status: 201, body: present(placed) };
            }
            throw err;
          }
        });
        const order = answer.body as z.infer<typeof orderSchema>;
        reply.header('location', `/v1/orders/${encodeURIComponent(order.id)}`);
        return reply.code(201).send(order);
      },
    );

    app.post(
      '/orders/:id/confirm',
      {
        config: commands,
        schema: {
          tags: ['orders'],
          summary: 'Confirm a pending order',
          params: idParams,
          body: z.strictObject({ expectedVersion }).nullish(),
          response: { 200: orderSchema, ...problemResponses(400, 404, 409, 422, 429, 503) },
        },
      },
      async (request) => {
        const { order } = await orders.confirm(request.params.id, guardedBy(request.body?.expectedVersion));
        return present(order);
      },
    );

    app.post(
      '/orders/:id/cancel',
      {
        config: commands,
        schema: {
          tags: ['orders'],
          summary: 'Cancel an order',
          description: 'Refused (422) once shipped. Stock is released and a captured payment refunded.',
          params: idParams,
          body: z.strictObject({
            reason: storableString(1, MAX_REASON_LENGTH).meta({ example: 'changed my mind' }),
            cancelledBy: storableString(1, 128).optional().meta({ description: 'Default: customer' }),
            expectedVersion,
          }),
          response: { 200: orderSchema, ...problemResponses(400, 404, 409, 422, 429, 503) },
        },
      },
      async (request) => {
        const b = request.body;
        const { order } = await orders.cancel(
          request.params.id,
          b.reason,
          b.cancelledBy ?? 'customer',
          guardedBy(b.expectedVersion),
        );
        return present(order);
      },
    );

    app.post(
      '/orders/:id/ship',
      {
        config: commands,
        schema: {
          tags: ['orders'],
          summary: 'Mark a paid order shipped',
          description: 'Only a PAID order ships (422 otherwise); after this it can no longer be cancelled.',
          params: idParams,
          body: z
            .strictObject({
              carrier: storableString(1, 64).optional().meta({ example: 'dhl' }),
              trackingNumber: storableString(1, 128).optional().meta({ example: 'JD014600003SE' }),
              expectedVersion,
            })
            .nullish(),
          response: { 200: orderSchema, ...problemResponses(400, 404, 409, 422, 429, 503) },
        },
      },
      async (request) => {
        const b = request.body ?? {};
        const { order } = await orders.ship(
          request.params.id,
          {
            ...(b.carrier ? { carrier: b.carrier } : {}),
            ...(b.trackingNumber ? { trackingNumber: b.trackingNumber } : {}),
          },
          guardedBy(b.expectedVersion),
        );
        return present(order);
      },
    );

    app.post(
      '/orders/:id/deliver',
      {
        config: commands,
        schema: {
          tags: ['orders'],
          summary: 'Mark a shipped order delivered',
          description: 'Only a SHIPPED order can be delivered (422 otherwise).',
          params: idParams,
          body: z.strictObject({ expectedVersion }).nullish(),
          response: { 200: orderSchema, ...problemResponses(400, 404, 409, 422, 429, 503) },
        },
      },
      async (request) => {
        const { order } = await orders.deliver(request.params.id, guardedBy(request.body?.expectedVersion));
        return present(order);
      },
    );

    app.get(
      '/orders/:id',
      {
        schema: {
          tags: ['orders'],
          summary: 'One order, with its saga',
          description:
            'From the read model (eventually consistent), or from the event store while the projection has ' +
            'not caught up; `saga` shows where the order-processing saga is.',
          params: idParams,
          response: { 200: orderWithSagaSchema, ...problemResponses(400, 404, 503) },
        },
      },
      async (request) => {
        const [order, saga] = await Promise.all([find(request.params.id), orders.saga(request.params.id)]);
        return {
          ...present(order),
          ...(saga ? { saga: { state: saga.state, data: saga.data, history: saga.history } } : {}),
        };
      },
    );

    app.get(
      '/orders',
      {
        schema: {
          tags: ['orders'],
          summary: 'Orders, newest first',
          querystring: z.strictObject({
            customerId: storableString(1, 128).optional(),
            status: z.enum(ORDER_STATUSES).optional(),
            limit: queryInteger({ min: 1, max: 200, description: 'Default 50' }),
            cursor: z
              .string()
              .max(500)
              .regex(/^[A-Za-z0-9_-]*$/, 'not a cursor from a previous page')
              .optional()
              .meta({ description: '`nextCursor` of the previous page (opaque; 400 when it is not one)' }),
          }),
          response: {
            200: z
              .object({ orders: z.array(orderSchema), nextCursor: z.string().optional() })
              .meta({ example: { orders: [orderExample], nextCursor: 'eyJjcmVhdGVkQXQiOiIyMDI2LTAxLTE1In0' } }),
            ...problemResponses(400, 503),
          },
        },
      },
      async (request) => {
        const q = request.query;
        const page = await orders
          .list({
            ...(q.customerId ? { customerId: q.customerId } : {}),
            ...(q.status ? { status: q.status } : {}),
            ...(q.limit ? { limit: q.limit } : {}),
            ...(q.cursor ? { cursor: q.cursor } : {}),
          })
          .catch((err: unknown) => {
            throw inQuery(err);
          });
        return { orders: page.orders.map(present), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
      },
    );

    app.get(
      '/orders/:id/events',
      {
        schema: {
          tags: ['orders'],
          summary: "An order's event history",
          params: idParams,
          querystring: z.strictObject({
            fromVersion: queryInteger({ min: 1, max: MAX_VERSION, description: 'Events from this version on' }),
          }),
          response: {
            200: z.object({ orderId: z.string(), events: z.array(eventSchema) }).meta({ example: historyExample }),
            ...problemResponses(400, 404, 503),
          },
        },
      },
      async (request) => {
        const { id } = request.params;
        const events = await orders.history(id, request.query.fromVersion);
        if (events.length === 0 && !(await orders.load(id))) throw new NotFoundError(`order ${id} not found`);
        return {
          orderId: id,
          events: events.map((e) => ({ ...e, metadata: { ...e.metadata } as Record<string, string> })),
        };
      },
    );
  };
}

/** The orders API as a plugin for `buildApp(config, { plugins: [...] })`. */
export function ordersPlugin(orders: OrderService): ApiRoutePlugin {
  return {
    name: 'orders',
    plugin: ordersRoutes(orders),
    prefix: '/v1',
    tag: { name: 'orders', description: 'Orders of the reference domain: commands and queries' },
  };
}
