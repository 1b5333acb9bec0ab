import { DEAD_LETTER_REASONS, type DeadLetterDecoding, type DeadLetterEntry } from '@streamfleet/core';
import { z } from 'zod';
import { problemResponses } from '../http/problem';
import { wellFormedString } from '../http/text';

/**
 * Both halves required: Redis reads a bare `1700000000000` as a range over that whole
 * millisecond, so an id without its sequence would name some other entry.
 */
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const NAME = /^[\w.:-]{1,200}$/;
/** Both halves of a stream id are unsigned 64-bit; Redis refuses anything larger with an error. */
const U64_MAX = 18_446_744_073_709_551_615n;

// The regex check aborts before this runs; the shape is checked again so that `BigInt` never throws.
const inU64 = (id: string) => !STREAM_ID.test(id) || id.split('-').every((part) => BigInt(part) <= U64_MAX);

/**
 * Each check stops the ones after it (`abort`): zod runs every check otherwise, so a value
 * that is no id at all got one message per check (and `inU64` met what `BigInt` cannot read).
 */
export const streamIdSchema = z
  .string()
  .regex(STREAM_ID, { message: 'must be a stream entry id like 1732460000000-0', abort: true })
  .refine(inU64, { message: 'each part of a stream entry id must be at most 18446744073709551615', abort: true })
  .meta({ example: '1732460000000-0' });

/**
 * A page cursor: an entry id handed out as `nextCursor`. `0-0` is never one (no entry can
 * have it), and Redis refuses it as an exclusive bound, so it is refused here; only an id,
 * so a value that is none is told that alone.
 */
export const cursorSchema = streamIdSchema.refine((id) => /[1-9]/.test(id), 'must be after 0-0');

export const nameSchema = z.string().regex(NAME, 'letters, digits and . _ : - only (1-200)');
export const reasonSchema = z.enum(DEAD_LETTER_REASONS);
/** A retry job id as `/admin/retries` lists it (`retryJobId`: the group and the event id, escaped with `~`). */
export const jobIdSchema = z
  .string()
  .regex(/^[\w.~-]{1,3000}$/, 'a retry job id as /admin/retries lists it: letters, digits and . _ ~ - only')
  .meta({ example: 'payment.0193a6f2-7000-7abc-8def-000000000001' });
/**
 * Dead-letter ids are millisecond timestamps since 1970, so earlier times cannot be bounds.
 * A value that is no ISO time at all gets that one message, not also the 1970 one.
 */
export const isoDate = z.iso
  .datetime({ offset: true, abort: true })
  .refine((v) => Date.parse(v) >= 0, 'must be at or after 1970-01-01T00:00:00Z')
  .meta({ example: '2026-11-24T00:00:00Z' });

export const adminSecurity = [{ adminToken: [] }];

/** Problems every admin route can answer with. */
export const adminProblems = problemResponses(400, 401, 403, 429, 503);

/** An operator's name as `X-Actor` gives it and the audit log records it. */
export const actorSchema = z.string().regex(/^[\w.@:+-]{1,100}$/, 'letters, digits and . @ : + - _ only (1-100)');

export const actorHeaders = z.looseObject({
  'x-actor': actorSchema
    .optional()
    .meta({ description: 'Who is acting, recorded in the audit log (default `admin`)', example: 'alice@example.com' }),
});

export const filterSchema = z.strictObject({
  group: nameSchema.optional().meta({ description: 'Consumer group that failed the event', example: 'payment' }),
  type: nameSchema.optional().meta({ description: 'Event type', example: 'order.created' }),
  reason: reasonSchema.optional(),
  eventId: wellFormedString(1, 200).optional().meta({
    description: 'Event id: its dead letters in every group',
    example: '0191f0b2-7c1e-7000-8000-000000000001',
  }),
  aggregateId: wellFormedString(1, 200)
    .optional()
    .meta({ description: 'Aggregate id (e.g. an order id): every dead letter about it', example: 'ord-1001' }),
  from: isoDate.optional().meta({ description: 'Dead-lettered at or after (ISO 8601)' }),
  to: isoDate.optional().meta({ description: 'Dead-lettered at or before (ISO 8601)' }),
});

export type FilterInput = z.infer<typeof filterSchema>;

/** Refuses `from` later than `to` (a range that can match nothing is a caller's mistake). */
export function orderedTimeRange(value: { from?: string | undefined; to?: string | undefined }, ctx: z.RefinementCtx) {
  if (value.from && value.to && Date.parse(value.from) > Date.parse(value.to)) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be later than to' });
  }
}

const errorSummary = z.object({
  name: z.string(),
  message: z.string(),
  code: z.string().optional(),
  stack: z.string().optional(),
});

const entrySummaryShape = z.object({
  id: streamIdSchema.meta({ description: 'Dead-letter entry id (the handle for replay/discard)' }),
  group: z.string(),
  stream: z.string(),
  eventId: z.string(),
  type: z.string(),
  aggregateId: z.string().optional(),
  reason: reasonSchema,
  attempts: z.number().int(),
  lastError: z.string().meta({ description: 'Message of the last error' }),
  firstFailedAt: z.string().meta({ description: 'When the event first failed in this group, kept across replays' }),
  deadLetteredAt: z.string(),
  replayCount: z.number().int(),
});

/** Examples in the OpenAPI document: one dead letter, as the routes answer it. */
export const EXAMPLE_IDS = {
  deadLetter: '1732460000000-0',
  entry: '1732459990000-3',
  event: '0193a6f2-6c1e-7f6a-9d2b-6f1c2e3d4a5b',
  batch: 'b3c1d2e4-5f60-4a7b-8c9d-0e1f2a3b4c5d',
} as const;

export const entrySummaryExample: z.output<typeof entrySummaryShape> = {
  id: EXAMPLE_IDS.deadLetter,
  group: 'payment',
  stream: 'orders',
  eventId: EXAMPLE_IDS.event,
  type: 'order.created',
  aggregateId: 'ord-42',
  reason: 'retries-exhausted',
  attempts: 3,
  lastError: 'payment gateway answered 503',
  firstFailedAt: '2024-11-24T14:53:10.120Z',
  deadLetteredAt: '2024-11-24T14:53:20.000Z',
  replayCount: 0,
};

export const entrySummarySchema = entrySummaryShape.meta({
  description: 'A dead-lettered event, summarised',
  example: entrySummaryExample,
});

const fieldIssueSchema = z.object({ field: z.string(), message: z.string() });

/** An `EventEnvelope` as handlers receive it. */
export const envelopeSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    schemaVersion: z.number().int(),
    aggregateId: z.string().optional(),
    aggregateVersion: z.number().int().optional(),
    occurredAt: z.string(),
    data: z.unknown().meta({ description: 'Parsed and validated against the catalog schema of type and version' }),
    metadata: z.object({
      correlationId: z.string().optional(),
      causationId: z.string().optional(),
      traceparent: z.string().optional(),
    }),
  })
  .meta({ description: 'The event as consumers are handed it' });

const entryShape = z.object({
  id: streamIdSchema,
  group: z.string(),
  stream: z.string(),
  entryId: z.string().meta({ description: 'Source stream entry id' }),
  eventId: z.string(),
  type: z.string(),
  aggregateId: z.string().optional(),
  reason: reasonSchema,
  attempts: z.number().int(),
  replayCount: z.number().int(),
  lastError: errorSummary,
  failures: z
    .array(
      z.object({
        attempt: z.number().int().meta({ description: 'Attempt number within its round (1 after each replay)' }),
        at: z.string(),
        name: z.string(),
        message: z.string(),
        replay: z
          .number()
          .int()
          .optional()
          .meta({ description: 'The round: 0 for the original deliveries, n for the n-th replay' }),
      }),
    )
    .meta({
      description:
        'Every failed attempt of every round, the original deliveries and each replay, oldest first; the last ' +
        '50 are kept (`firstFailedAt` stays the first failure’s time)',
    }),
  firstFailedAt: z.string().meta({ description: 'When the event first failed in this group, kept across replays' }),
  deadLetteredAt: z.string(),
  event: z.record(z.string(), z.string()).meta({
    description:
      'The stream entry as it was, field by field, as Redis holds it (every value a string; `data` is JSON ' +
      'text). `envelope` is the same event decoded.',
  }),
  envelope: envelopeSchema.optional().meta({
    description:
      'The event decoded against today’s catalog, as a consumer (or a replay) would see it: `data` parsed, ' +
      'versions as numbers, metadata as an object. Absent when it does not decode (see `envelopeError`).',
  }),
  envelopeError: z
    .object({ message: z.string(), errors: z.array(fieldIssueSchema) })
    .optional()
    .meta({
      description:
        'Why the event does not decode against today’s catalog (a replay would come straight back as ' +
        '`invalid-event`; a bulk replay dry run lists it under `invalidToday`). Absent when it decodes.',
    }),
});

const entryExample: z.output<typeof entryShape> = {
  id: EXAMPLE_IDS.deadLetter,
  group: 'payment',
  stream: 'orders',
  entryId: EXAMPLE_IDS.entry,
  eventId: EXAMPLE_IDS.event,
  type: 'order.created',
  aggregateId: 'ord-42',
  reason: 'retries-exhausted',
  attempts: 3,
  replayCount: 0,
  lastError: { name: 'Error', message: 'payment gateway answered 503' },
  failures: [
    { attempt: 1, at: '2024-11-24T14:53:10.120Z', name: 'Error', message: 'payment gateway answered 503', replay: 0 },
    { attempt: 2, at: '2024-11-24T14:53:11.140Z', name: 'Error', message: 'payment gateway answered 503', replay: 0 },
    { attempt: 3, at: '2024-11-24T14:53:13.160Z', name: 'Error', message: 'payment gateway answered 503', replay: 0 },
  ],
  firstFailedAt: '2024-11-24T14:53:10.120Z',
  deadLetteredAt: '2024-11-24T14:53:20.000Z',
  event: {
    id: EXAMPLE_IDS.event,
    type: 'order.created',
    schemaVersion: '1',
    occurredAt: '2024-11-24T14:53:09.990Z',
    data: '{"orderId":"ord-42","customerId":"cust-7","total":2500}',
    aggregateId: 'ord-42',
    aggregateVersion: '1',
  },
  envelope: {
    id: EXAMPLE_IDS.event,
    type: 'order.created',
    schemaVersion: 1,
    aggregateId: 'ord-42',
    aggregateVersion: 1,
    occurredAt: '2024-11-24T14:53:09.990Z',
    data: { orderId: 'ord-42', customerId: 'cust-7', total: 2500 },
    metadata: {},
  },
};

export const entrySchema = entryShape.meta({
  description: 'A dead-lettered event with its whole failure history',
  example: entryExample,
});

/** The whole entry, with its event decoded next to the raw fields when it decodes. */
export function detail(entry: DeadLetterEntry, decoding: DeadLetterDecoding | undefined): z.infer<typeof entrySchema> {
  if (!decoding) return entry;
  if (decoding.ok) return { ...entry, envelope: decoding.envelope };
  return { ...entry, envelopeError: { message: decoding.error, errors: decoding.issues } };
}

export function summarise(entry: DeadLetterEntry): z.infer<typeof entrySummarySchema> {
  return {
    id: entry.id,
    group: entry.group,
    stream: entry.stream,
    eventId: entry.eventId,
    type: entry.type,
    ...(entry.aggregateId ? { aggregateId: entry.aggregateId } : {}),
    reason: entry.reason,
    attempts: entry.attempts,
    lastError: entry.lastError.message,
    firstFailedAt: entry.firstFailedAt,
    deadLetteredAt: entry.deadLetteredAt,
    replayCount: entry.replayCount,
  };
}

export function toFilter(input: FilterInput) {
  return {
    ...(input.group ? { group: input.group } : {}),
    ...(input.type ? { type: input.type } : {}),
    ...(input.reason ? { reason: input.reason } : {}),
    ...(input.eventId ? { eventId: input.eventId } : {}),
    ...(input.aggregateId ? { aggregateId: input.aggregateId } : {}),
    ...(input.from ? { from: new Date(input.from) } : {}),
    ...(input.to ? { to: new Date(input.to) } : {}),
  };
}
