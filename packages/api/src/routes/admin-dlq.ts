import { randomUUID } from 'node:crypto';
import { AUDIT_ACTIONS, AuditLog, type BulkOptions, NotFoundError } from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf, adminAuth } from '../http/admin-auth';
import { jsonInteger, queryInteger } from '../http/integers';
import { withExample } from '../http/openapi';
import { problemResponses } from '../http/problem';
import { limitedBy, type RouteContext } from '../route-context';
import {
  actorHeaders,
  actorSchema,
  adminProblems,
  adminSecurity,
  cursorSchema,
  detail,
  EXAMPLE_IDS,
  entrySchema,
  entrySummaryExample,
  entrySummarySchema,
  filterSchema,
  nameSchema,
  orderedTimeRange,
  streamIdSchema,
  summarise,
  toFilter,
} from './admin-schemas';

const limitQuery = (max: number, fallback: number) =>
  queryInteger({ min: 1, max, default: fallback, description: `Page size, 1-${max}` });

const idParams = z.strictObject({ id: streamIdSchema });

/** What every audit record says, whatever its action. */
const auditBase = {
  id: z.string().meta({ description: 'Audit stream entry id: the records’ order (Redis’s clock)' }),
  actor: z.string().meta({ description: 'Who acted: their `X-Actor` header, or `admin`' }),
  at: z.string().meta({ description: 'When the action took effect (ISO 8601)' }),
  group: z.string().meta({ description: 'The consumer group acted on' }),
  batchId: z
    .string()
    .optional()
    .meta({ description: 'Groups the records of one bulk action (its answer’s `batchId`)' }),
};

/** One audit record; `action` says which fields it has. */
const auditRecordSchema = z.discriminatedUnion('action', [
  z
    .object({
      ...auditBase,
      action: z.enum(['replay', 'discard', 'dead-letter']).meta({
        description:
          '`replay`, `discard`: a dead letter replayed or discarded; `dead-letter`: an operator dead-lettered a ' +
          'retrying event (POST /admin/retries/{group}/dead-letter), recorded when its dead letter is written',
      }),
      deadLetterId: z.string(),
      eventId: z.string(),
      type: z.string(),
    })
    .meta({ title: 'Dead-letter action' }),
  z
    .object({
      ...auditBase,
      action: z.literal('run-now').meta({
        description: 'A delayed retry job made due now (POST /admin/retries/{group}/run-now): one record per job',
      }),
      jobId: z.string(),
      eventId: z.string(),
      type: z.string(),
    })
    .meta({ title: 'Retry run now' }),
  z
    .object({
      ...auditBase,
      action: z.enum(['pause', 'resume']).meta({
        description:
          'The group paused or resumed (POST /admin/groups/{group}/pause, /resume); only a change is recorded, ' +
          'not a call that found the group in that state already',
      }),
    })
    .meta({ title: 'Group paused or resumed' }),
]);

/** The body of a bulk replay or discard: which entries, how many at most, and whether only to say. */
const bulkSchema = z
  .strictObject({
    ids: z.array(streamIdSchema).min(1).max(10_000).optional(),
    filter: filterSchema.superRefine(orderedTimeRange).optional(),
    limit: jsonInteger(1, 10_000).default(100),
    dryRun: z.boolean().default(false),
  })
  .refine((b) => b.ids !== undefined || b.filter !== undefined, {
    message: 'give ids or a filter (an empty filter {} selects every entry)',
    path: ['filter'],
  })
  .meta({ example: { filter: { group: 'payment', reason: 'retries-exhausted' }, limit: 100, dryRun: true } });

/** What a bulk replay and a bulk discard both answer. */
const bulkResultShape = {
  dryRun: z.boolean(),
  matched: z
    .number()
    .int()
    .meta({
      description:
        'Entries picked: those `ids` names or `filter` selects, `limit` of them at most, plus, for a replay, ' +
        'those in `invalidToday`, which take no `limit` slot: so a replay can match more than `limit`',
    }),
  more: z.boolean().meta({ description: 'More entries matched than `limit`: they were left alone (ask again)' }),
  matchedIds: z.array(z.string()).meta({
    description:
      'Ids of the picked entries (newest first by `filter`, in the order asked by `ids`): what a dry run would ' +
      'act on. A replay leaves out those in `invalidToday`.',
  }),
  byGroup: z.record(z.string(), z.number().int()),
  byReason: z.record(z.string(), z.number().int()),
  missing: z.array(z.string()).meta({ description: 'Asked-for ids not in the dead-letter stream' }),
  notMatching: z.array(z.string()).meta({
    description: 'Asked-for ids in the dead-letter stream that `filter` leaves out (group, type, reason or time)',
  }),
};

const OTHER_ID = '1732460000000-1';
const bulkResultExample = {
  dryRun: false,
  matched: 2,
  more: false,
  matchedIds: [EXAMPLE_IDS.deadLetter, OTHER_ID],
  byGroup: { payment: 2 },
  byReason: { 'retries-exhausted': 2 },
  missing: [],
  notMatching: [],
};

const listResultSchema = withExample(
  z.object({
    items: z.array(entrySummarySchema),
    nextCursor: streamIdSchema.optional().meta({
      description: 'Absent on the last page; present on a page cut short by the 5,000-entry read, even an empty one',
    }),
  }),
  { items: [entrySummaryExample], nextCursor: EXAMPLE_IDS.deadLetter },
);

const replayResultSchema = withExample(
  z.object({ id: z.string(), group: z.string(), eventId: z.string(), jobId: z.string() }),
  {
    id: EXAMPLE_IDS.deadLetter,
    group: 'payment',
    eventId: EXAMPLE_IDS.event,
    jobId: `payment.${EXAMPLE_IDS.event}~r1`,
  },
);

const discardResultSchema = withExample(z.object({ discarded: z.literal(true), entry: entrySummarySchema }), {
  discarded: true,
  entry: entrySummaryExample,
});

const bulkReplayResultSchema = withExample(
  z.object({
    batchId: z.string().meta({ description: 'Groups this replay’s audit records' }),
    ...bulkResultShape,
    replayed: z.number().int(),
    invalidToday: z.array(z.object({ id: z.string(), error: z.string() })).meta({
      description:
        'Picked entries whose event fails today’s schema: not replayed, dry run or not (they would come ' +
        'straight back as `invalid-event`), and left in the dead-letter stream, unaudited',
    }),
    replayedIds: z.array(z.string()),
  }),
  {
    batchId: EXAMPLE_IDS.batch,
    ...bulkResultExample,
    replayed: 2,
    invalidToday: [],
    replayedIds: [EXAMPLE_IDS.deadLetter, OTHER_ID],
  },
);

const bulkDiscardResultSchema = withExample(
  z.object({
    batchId: z.string().meta({ description: 'Groups this discard’s audit records' }),
    ...bulkResultShape,
    discarded: z.number().int(),
    discardedIds: z.array(z.string()),
  }),
  { batchId: EXAMPLE_IDS.batch, ...bulkResultExample, discarded: 2, discardedIds: [EXAMPLE_IDS.deadLetter, OTHER_ID] },
);

const auditPageSchema = withExample(
  z.object({ items: z.array(auditRecordSchema), nextCursor: z.string().optional() }),
  {
    items: [
      {
        id: '1732460100000-0',
        action: 'resume',
        actor: 'bob@example.com',
        at: '2024-11-24T14:55:00.000Z',
        group: 'payment',
      },
      {
        id: '1732460050000-0',
        action: 'replay',
        actor: 'alice@example.com',
        at: '2024-11-24T14:54:10.000Z',
        deadLetterId: EXAMPLE_IDS.deadLetter,
        group: 'payment',
        eventId: EXAMPLE_IDS.event,
        type: 'order.created',
        batchId: EXAMPLE_IDS.batch,
      },
      {
        id: '1732460020000-0',
        action: 'run-now',
        actor: 'alice@example.com',
        at: '2024-11-24T14:53:40.000Z',
        group: 'payment',
        jobId: `payment.${EXAMPLE_IDS.event}`,
        eventId: EXAMPLE_IDS.event,
        type: 'order.created',
      },
      {
        id: '1732460000000-0',
        action: 'pause',
        actor: 'alice@example.com',
        at: '2024-11-24T14:53:20.000Z',
        group: 'payment',
      },
    ],
    nextCursor: '1732460000000-0',
  },
);

function bulkOptions(body: z.output<typeof bulkSchema>, actor: string, batchId: string): BulkOptions {
  const { ids, filter, limit, dryRun } = body;
  return { ...(ids ? { ids } : {}), ...(filter ? { filter: toFilter(filter) } : {}), limit, dryRun, actor, batchId };
}

/** Ids a bulk action's log line lists: the audit stream has them all under the line's `batchId`. */
const LOGGED_IDS = 100;

function loggedIds(ids: string[]): { ids: string[]; idsNotListed?: number } {
  return ids.length <= LOGGED_IDS ? { ids } : { ids: ids.slice(0, LOGGED_IDS), idsNotListed: ids.length - LOGGED_IDS };
}

/** Dead-letter administration: list, inspect, replay and discard (one or in bulk), audit log. */
export const adminDlqRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const { deadLetters } = ctx.deps;
  const auditLog = new AuditLog(ctx.deps.redis, ctx.keys);

  /**
   * The 404 for an id not in the dead-letter stream. One replayed or discarded in the last 7
   * days says by whom and when, as a second replay's or discard's 409 does (the same message
   * and `details`).
   */
  const notFound = async (id: string): Promise<NotFoundError> => {
    const removal = await deadLetters.removal(id);
    if (!removal) return new NotFoundError(`no dead-letter entry ${id}`, { id });
    const verb = removal.action === 'discard' ? 'discarded' : 'replayed';
    return new NotFoundError(`dead-letter entry ${id} was already ${verb} at ${removal.at} by ${removal.actor}`, {
      id,
      ...removal,
    });
  };
  // preParsing: after the rate limiter (onRequest), so token guessing is limited too; before any body is read.
  app.addHook('preParsing', adminAuth(ctx.config.adminToken));
  const config = limitedBy(ctx.limits.admin);

  app.get(
    '/admin/dlq',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'List dead-lettered events',
        description:
          'Newest first. Filters combine; pass `nextCursor` back as `cursor` for the next (older) page, until ' +
          'it is absent. A filtered page may hold fewer than `limit` items, or none, and still a `nextCursor`: ' +
          'one call reads at most 5,000 entries, so matches far apart take several calls. An empty page with ' +
          'a cursor does not mean nothing else matches.',
        security: adminSecurity,
        querystring: filterSchema
          .extend({
            cursor: cursorSchema.optional().meta({ description: 'From a previous page’s `nextCursor`' }),
            limit: limitQuery(1000, 50),
          })
          .superRefine(orderedTimeRange),
        response: {
          200: listResultSchema,
          ...adminProblems,
        },
      },
    },
    async (request) => {
      const { cursor, limit, ...filter } = request.query;
      const page = await deadLetters.list(toFilter(filter), { limit, ...(cursor ? { cursor } : {}) });
      return { items: page.items.map(summarise), ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) };
    },
  );

  app.get(
    '/admin/dlq/:id',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'Get one dead-lettered event',
        description:
          'The whole entry: the event, the last error and every failed attempt. The event comes twice: `event` ' +
          'as the stream held it, and `envelope` decoded against today’s catalog (or `envelopeError` saying why ' +
          'it does not decode).',
        security: adminSecurity,
        params: idParams,
        response: { 200: entrySchema, ...adminProblems, ...problemResponses(404) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const entry = await deadLetters.get(id);
      if (!entry) throw await notFound(id);
      return detail(entry, deadLetters.decode(entry));
    },
  );

  app.post(
    '/admin/dlq/:id/replay',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'Replay one dead-lettered event',
        description:
          'Sends the event back to the group that failed it, and only that group, with fresh attempts; the entry ' +
          'leaves the dead-letter stream and the replay is audited. If it fails again, its new entry keeps ' +
          '`firstFailedAt` and the earlier attempts. 409 if it was already replayed or discarded. 422 ' +
          '`DLQ_EVENT_INVALID` if its event fails today’s schema (a replay would come straight back as ' +
          '`invalid-event`): nothing changes, and `details.envelopeError` says why.',
        security: adminSecurity,
        headers: actorHeaders,
        params: idParams,
        response: {
          200: replayResultSchema,
          ...adminProblems,
          ...problemResponses(404, 409, 422),
        },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      const result = await deadLetters.replay(request.params.id, { actor });
      request.log.info({ actor, ...result }, 'dead letter replayed');
      return result;
    },
  );

  app.delete(
    '/admin/dlq/:id',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'Discard one dead-lettered event',
        description: 'Deletes the entry for good, with an audit record. 409 if it was already replayed or discarded.',
        security: adminSecurity,
        headers: actorHeaders,
        params: idParams,
        response: {
          200: discardResultSchema,
          ...adminProblems,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      const actor = actorOf(request);
      const entry = await deadLetters.discard(request.params.id, { actor });
      request.log.info({ actor, id: entry.id, group: entry.group, eventId: entry.eventId }, 'dead letter discarded');
      return { discarded: true as const, entry: summarise(entry) };
    },
  );

  app.post(
    '/admin/dlq/replay',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'Replay dead-lettered events in bulk',
        description:
          'By `ids` or by `filter` (use `{}` to mean every entry), at most `limit` entries (`more` says whether ' +
          'others matched). `ids` with a `filter` picks the ids the filter matches, time range included; the ' +
          'others are listed in `notMatching`. Entries whose event fails today’s schema are listed in ' +
          '`invalidToday` and never replayed (they would come straight back as `invalid-event`); they stay in ' +
          'the dead-letter stream and take no `limit` slot, so a call reaches the replayable entries behind ' +
          'them (up to 10,000 of them are passed over per call; discard them, or filter by `reason`, if more). ' +
          'With `dryRun` nothing changes: the answer says what would be replayed (`matchedIds` but `invalidToday`).',
        security: adminSecurity,
        headers: actorHeaders,
        body: bulkSchema,
        response: {
          200: bulkReplayResultSchema,
          ...adminProblems,
        },
      },
    },
    async (request) => {
      const batchId = randomUUID();
      const actor = actorOf(request);
      const result = await deadLetters.replayMany(bulkOptions(request.body, actor, batchId));
      if (!result.dryRun) {
        request.log.info(
          { actor, batchId, count: result.replayed, ...loggedIds(result.replayedIds), more: result.more },
          'dead letters replayed',
        );
      }
      return { batchId, ...result };
    },
  );

  app.post(
    '/admin/dlq/discard',
    {
      config,
      schema: {
        tags: ['dead letters'],
        summary: 'Discard dead-lettered events in bulk',
        description:
          'Deletes for good, with an audit record each, what the same body picks for a replay: by `ids` or by ' +
          '`filter` (`{}` is every entry), at most `limit` entries (`more` says whether others matched). `ids` ' +
          'with a `filter` picks the ids the filter matches, time range included; the others are listed in ' +
          '`notMatching`. Try it with `dryRun` first: nothing changes, and `matchedIds` says what would go.',
        security: adminSecurity,
        headers: actorHeaders,
        body: bulkSchema,
        response: {
          200: bulkDiscardResultSchema,
          ...adminProblems,
        },
      },
    },
    async (request) => {
      const batchId = randomUUID();
      const actor = actorOf(request);
      const result = await deadLetters.discardMany(bulkOptions(request.body, actor, batchId));
      if (!result.dryRun) {
        request.log.info(
          { actor, batchId, count: result.discarded, ...loggedIds(result.discardedIds), more: result.more },
          'dead letters discarded',
        );
      }
      return { batchId, ...result };
    },
  );

  app.get(
    '/admin/audit',
    {
      config,
      schema: {
        tags: ['audit'],
        summary: 'Audit log of operator actions',
        description:
          'Who did what, and when: dead letters replayed and discarded, retrying events dead-lettered by an operator, ' +
          'retry jobs run now, consumer groups paused and resumed. Newest first; pass `nextCursor` back as `cursor` ' +
          'for the next (older) page, until it is absent. Filters combine; a filtered page may be short, or empty, ' +
          'and still have a `nextCursor`: one call reads at most 5,000 records.',
        security: adminSecurity,
        querystring: z.strictObject({
          group: nameSchema.optional().meta({ description: 'Only records of this consumer group', example: 'payment' }),
          action: z.enum(AUDIT_ACTIONS).optional().meta({ description: 'Only records of this action' }),
          actor: actorSchema.optional().meta({ description: 'Only what this operator did' }),
          cursor: cursorSchema.optional(),
          limit: limitQuery(1000, 50),
        }),
        response: {
          200: auditPageSchema,
          ...adminProblems,
        },
      },
    },
    async (request) => {
      const { cursor, limit, group, action, actor } = request.query;
      const filter = { ...(group ? { group } : {}), ...(action ? { action } : {}), ...(actor ? { actor } : {}) };
      return auditLog.list({ limit, filter, ...(cursor ? { cursor } : {}) });
    },
  );
};
