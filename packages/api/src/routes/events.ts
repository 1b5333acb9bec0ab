import {
  createEvent,
  describeIssues,
  type EventCatalog,
  type FieldIssue,
  type NewEvent,
  type PublishTarget,
  ValidationError,
} from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { onePerField } from '../http/error-handler';
import { idempotencyKeyHeader } from '../http/idempotency';
import { jsonInteger } from '../http/integers';
import { withExample } from '../http/openapi';
import { problemResponses } from '../http/problem';
import { wellFormedString } from '../http/text';
import { limitedBy, type RouteContext } from '../route-context';

/** Most events one batch request may carry. */
export const MAX_BATCH_SIZE = 500;

const TYPE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** An id-like string stored as is on the stream entry. */
function idText() {
  return wellFormedString(1, 200);
}

const metadataSchema = z
  .strictObject({
    correlationId: idText().optional().meta({ example: 'req-7f3a' }),
    causationId: idText().optional(),
    traceparent: z
      .string()
      .regex(TRACEPARENT, 'must be a W3C traceparent')
      .optional()
      .meta({ example: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }),
  })
  .meta({ description: 'Tracing metadata carried on the stream entry' });

/** The body of one event; `open` is the catalog's types anyone may post. */
function eventInputSchema(catalog: EventCatalog, open: readonly string[]) {
  // The example is an event anyone may post: never one a service publishes through its outbox.
  const first = catalog.definitionsList().find((d) => d.producedBy === undefined);
  return z
    .strictObject({
      type: z
        .string()
        .max(200)
        .regex(TYPE_PATTERN, 'must be a dotted lower-case event type, e.g. order.created')
        .meta({
          description: `Event type. Accepted types: ${open.join(', ') || 'none registered'}`,
          example: first?.type,
        }),
      schemaVersion: jsonInteger(1, 1000)
        .optional()
        .meta({ description: 'Schema version of `data`; default: the latest version of the type' }),
      aggregateId: idText().optional(),
      aggregateVersion: jsonInteger(0).optional(),
      data: z
        .record(z.string(), z.unknown())
        .meta({ description: 'Event payload, validated against the type schema', example: first?.example }),
      metadata: metadataSchema.optional(),
    })
    .meta({ description: 'An event to publish' });
}

const acceptedSchema = z
  .object({
    eventId: z.string().meta({ description: 'Event id (UUID v7)', example: '0191f0b2-7c1e-7000-8000-000000000001' }),
    entryId: z.string().meta({ description: 'Stream entry id', example: '1732460000000-0' }),
    stream: z.string().meta({ description: 'Stream the event was appended to', example: 'orders' }),
  })
  .meta({ description: 'Where an accepted event was written' });

const acceptedExample = {
  eventId: '0191f0b2-7c1e-7000-8000-000000000001',
  entryId: '1732460000000-0',
  stream: 'orders',
};
const acceptedResultSchema = withExample(acceptedSchema, acceptedExample);

const batchAcceptedSchema = withExample(
  z.object({
    count: z.number().int(),
    events: z.array(acceptedSchema).meta({ description: 'One result per event, in request order' }),
  }),
  {
    count: 2,
    events: [
      acceptedExample,
      { eventId: '0191f0b2-7c1e-7000-8000-000000000002', entryId: '1732460000000-1', stream: 'orders' },
    ],
  },
);

const ingestHeaders = z.looseObject({
  traceparent: z.string().optional().meta({
    description:
      'Optional W3C Trace Context. Events without `metadata.traceparent` carry it onto the stream (an invalid one is ignored)',
    example: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  }),
  'idempotency-key': idempotencyKeyHeader,
});

type EventInput = z.infer<ReturnType<typeof eventInputSchema>>;
type Accepted = z.infer<typeof acceptedSchema>;

/**
 * The request's W3C `traceparent` header, when valid: events that bring none of their own
 * carry it, so a trace goes on from the HTTP call to every handler. An invalid one is
 * ignored, as Trace Context asks.
 */
function requestTraceparent(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers.traceparent;
  return typeof value === 'string' && TRACEPARENT.test(value) ? value : undefined;
}

/** `data`, or `events.3.data` for the fourth event of a batch. */
function fieldPath(index: number | undefined, field: string): string {
  return index === undefined ? field : `events.${index}.${field}`;
}

function singleAnswer(results: Accepted[]): Accepted | undefined {
  return results[0];
}

function batchAnswer(results: Accepted[]) {
  return { count: results.length, events: results };
}

/** `POST /v1/events` and `POST /v1/events/batch`. */
export const eventsRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const { catalog, producer } = ctx.deps;
  const open = catalog.openTypes();
  const input = eventInputSchema(catalog, open);
  const routeConfig = limitedBy(ctx.limits.ingest);
  const acceptedTypes = () =>
    open.length > 0 ? `accepted types: ${open.join(', ')}` : 'this server accepts no event types from outside';

  /**
   * Validates one event against the catalog; returns where it goes, or the issues, named
   * under `events.<index>` for a batch item. (No closures here: this runs once per event.)
   */
  const prepare = (body: EventInput, traceparent: string | undefined, index?: number): PublishTarget | FieldIssue[] => {
    const definition = catalog.get(body.type, body.schemaVersion);
    if (!definition) {
      const known = catalog.has(body.type);
      return [
        known
          ? {
              field: fieldPath(index, 'schemaVersion'),
              message: `event type ${body.type} has no schema version ${body.schemaVersion}`,
            }
          : {
              field: fieldPath(index, 'type'),
              message: `unknown event type ${body.type}; ${acceptedTypes()}`,
            },
      ];
    }
    if (definition.producedBy !== undefined) {
      return [
        {
          field: fieldPath(index, 'type'),
          message:
            `${body.type} is published by the ${definition.producedBy} service (through its outbox) ` +
            `and cannot be posted; ${acceptedTypes()}`,
        },
      ];
    }
    let data: unknown;
    try {
      data = catalog.validate(definition.type, definition.schemaVersion, body.data);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return index === undefined ? err.issues : err.issues.map((i) => ({ ...i, field: fieldPath(index, i.field) }));
    }
    const init: NewEvent = { type: definition.type, schemaVersion: definition.schemaVersion, data };
    if (body.aggregateId !== undefined) init.aggregateId = body.aggregateId;
    if (body.aggregateVersion !== undefined) init.aggregateVersion = body.aggregateVersion;
    if (traceparent && !body.metadata?.traceparent) init.metadata = { ...body.metadata, traceparent };
    else if (body.metadata) init.metadata = body.metadata;
    return { stream: definition.stream, event: createEvent(init) };
  };

  /** One counter increment per run of same-type events, not one per event. */
  const countIngested = (targets: readonly PublishTarget[]) => {
    let run = 0;
    for (let i = 0; i < targets.length; i++) {
      run++;
      const { event, stream } = targets[i] as PublishTarget;
      const next = targets[i + 1];
      if (next === undefined || next.event.type !== event.type || next.stream !== stream) {
        ctx.metrics.eventsIngested.inc({ type: event.type, stream }, run);
        run = 0;
      }
    }
  };

  const refuse = (all: FieldIssue[]): never => {
    const issues = onePerField(all);
    throw new ValidationError(`event rejected: ${describeIssues(issues)}`, issues);
  };

  /** Writes the events (one pipeline) and shapes the 202 answer. */
  const publish = async (targets: PublishTarget[], shape: (results: Accepted[]) => unknown) => {
    const entryIds = await producer.publishMany(targets);
    countIngested(targets);
    const results: Accepted[] = new Array(targets.length);
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as PublishTarget;
      results[i] = { eventId: t.event.id, entryId: entryIds[i] ?? '', stream: t.stream };
    }
    return { status: 202, body: shape(results) };
  };

  app.post(
    '/v1/events',
    {
      config: routeConfig,
      schema: {
        tags: ['events'],
        summary: 'Publish one event',
        description:
          'Validates `data` against the catalog schema of `type` and appends the event to the stream of its type. ' +
          'Unknown types are refused with the list of accepted ones, and so are types a service publishes ' +
          'through its outbox (e.g. `payment.succeeded`): consumers trust those as facts.',
        headers: ingestHeaders,
        body: input,
        response: { 202: acceptedResultSchema, ...problemResponses(400, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const prepared = prepare(request.body, requestTraceparent(request.headers));
      if (Array.isArray(prepared)) return refuse(prepared);
      const answer = await app.idempotency.answer(request, reply, () => publish([prepared], singleAnswer));
      return reply.code(202).send(answer.body as z.infer<typeof acceptedSchema>);
    },
  );

  app.post(
    '/v1/events/batch',
    {
      config: routeConfig,
      schema: {
        tags: ['events'],
        summary: `Publish up to ${MAX_BATCH_SIZE} events`,
        description:
          'All or nothing: every event is validated first, and if any is invalid nothing is written and the ' +
          'problem lists each bad event by index (`events.<i>.<field>`): while any event is malformed, the ' +
          'malformed ones; once all are well-formed, those whose type or data the catalog refuses. Valid batches ' +
          'are written in one transaction.',
        headers: ingestHeaders,
        body: z.strictObject({
          events: z
            .array(input)
            .min(1)
            .max(MAX_BATCH_SIZE)
            .meta({ description: `1 to ${MAX_BATCH_SIZE} events` }),
        }),
        response: { 202: batchAcceptedSchema, ...problemResponses(400, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const targets: PublishTarget[] = [];
      const issues: FieldIssue[] = [];
      const traceparent = requestTraceparent(request.headers);
      request.body.events.forEach((event, i) => {
        const prepared = prepare(event, traceparent, i);
        if (Array.isArray(prepared)) issues.push(...prepared);
        else targets.push(prepared);
      });
      if (issues.length > 0) return refuse(issues);
      const answer = await app.idempotency.answer(request, reply, () => publish(targets, batchAnswer));
      return reply.code(202).send(answer.body as z.infer<typeof batchAcceptedSchema>);
    },
  );
};
