import { randomUUID } from 'node:crypto';
import {
  fieldsToRecord,
  GroupPauses,
  infoList,
  isNoGroupError,
  lastFailureOfRound,
  RetryPolicy,
} from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf, adminAuth } from '../http/admin-auth';
import { queryInteger } from '../http/integers';
import { withExample } from '../http/openapi';
import { ApiProblem, problemResponses } from '../http/problem';
import { limitedBy, type RouteContext } from '../route-context';
import { actorHeaders, adminProblems, adminSecurity, jobIdSchema, nameSchema } from './admin-schemas';

const consumerSchema = z.object({
  name: z.string(),
  pending: z.number().int(),
  idleMs: z.number().int().meta({ description: 'Milliseconds since the consumer last read or was attempted' }),
});

const groupSchema = z.object({
  group: z.string(),
  consumers: z.array(consumerSchema),
  pending: z.number().int().meta({ description: 'Delivered but not yet acknowledged' }),
  lag: z
    .number()
    .int()
    .nullable()
    .meta({ description: 'Entries not yet delivered to the group; null when Redis cannot tell' }),
  lastDeliveredId: z.string(),
  retrying: z.number().int().meta({ description: 'Retry jobs waiting, delayed or running' }),
  deadLettered: z.number().int().meta({ description: 'Entries of this group in the dead-letter stream' }),
  paused: z.boolean().meta({ description: 'Paused by an operator: its consumers read nothing new' }),
});

const streamSchema = z.object({
  stream: z.string(),
  length: z.number().int(),
  groups: z.array(groupSchema),
});

const count = (description: string) => z.number().int().meta({ description });

/**
 * What each number means. `completed` is not a success count: the retry worker, not BullMQ,
 * decides that attempts are exhausted, writes the dead letter and then completes the job.
 */
const retryCountsSchema = z.object({
  waiting: count('Due now, waiting for a retry worker'),
  delayed: count('Backing off until their next attempt is due'),
  active: count('Being attempted by a retry worker right now'),
  retrying: count(
    'waiting + delayed + active: events of the group neither handled nor dead-lettered yet (the `retrying` of ' +
      '/admin/groups)',
  ),
  failed: count(
    'Jobs BullMQ itself gave up on (runs that died with their worker past its backstop); their events are ' +
      'dead-lettered as max-deliveries. Normally 0: exhausted attempts do not end here.',
  ),
  completed: count(
    'Jobs finished within the retention window (24 h by default, how long a re-delivery is recognised), ' +
      'however they ended: handled on a retry, or dead-lettered (exhausted or non-retryable: the retry worker ' +
      'writes the dead letter, then completes the job). Not a success count; see `deadLettered`.',
  ),
  deadLettered: count(
    'Entries of the group in the dead-letter stream now, from any path (also first deliveries that never ' +
      'became retry jobs, e.g. invalid-event); not limited to the retention window, and replayed or discarded ' +
      'entries no longer count. The `deadLettered` of /admin/groups.',
  ),
});

const groupCountsSchema = z.object({ group: z.string() }).extend(retryCountsSchema.shape);

const retryingStateSchema = z
  .enum(['active', 'waiting', 'delayed'])
  .meta({ description: 'active: being attempted; waiting: due; delayed: backing off until `nextRunAt`' });

const retryJobSchema = z
  .object({
    jobId: z.string(),
    state: retryingStateSchema,
    eventId: z.string(),
    type: z.string(),
    aggregateId: z.string().optional(),
    stream: z.string(),
    entryId: z.string().meta({ description: 'Source stream entry id' }),
    attemptsMade: count('Attempts made so far, the first delivery included'),
    maxAttempts: count('Attempts allowed (see the top-level `maxAttempts`)'),
    nextRunAt: z.string().optional().meta({ description: 'When a delayed job’s next attempt is due (ISO 8601)' }),
    startedAt: z.string().optional().meta({ description: 'When this job’s current or last attempt started' }),
    addedAt: z.string().meta({ description: 'When the retry job was added: after the first failure, or by a replay' }),
    replayCount: count('How often the event was replayed from the dead-letter stream (0: never)'),
    firstFailedAt: z.string().meta({ description: 'First failure of this round (a replay starts a new round)' }),
    lastError: z
      .object({ attempt: z.number().int(), at: z.string(), name: z.string(), message: z.string() })
      .optional()
      .meta({ description: 'The latest failed attempt; absent for a replay that has not failed yet' }),
    deadLetterPending: z.object({ reason: z.string() }).optional().meta({
      description: 'A run decided to dead-letter the event but could not write the dead letter; the next run will',
    }),
  })
  .meta({ description: 'An event being retried by its group' });

const MAX_RETRY_PAGE = 500;

const runNowSkipSchema = z.object({
  jobId: z.string(),
  reason: z
    .enum(['not-delayed', 'not-found'])
    .meta({ description: 'not-delayed: already due or running; not-found: not retrying (never was, or finished)' }),
});

const EXAMPLE_EVENT_ID = '0193a6f2-6c1e-7f6a-9d2b-6f1c2e3d4a5b';
const EXAMPLE_JOB_ID = `payment.${EXAMPLE_EVENT_ID}`;
const retryCountsExample = {
  waiting: 0,
  delayed: 2,
  active: 1,
  retrying: 3,
  failed: 0,
  completed: 57,
  deadLettered: 3,
};

const retryingPageSchema = withExample(
  z.object({
    group: z.string(),
    maxAttempts: count(
      'Attempts allowed per event, the first delivery included, as this API’s RETRY_MAX_ATTEMPTS and ' +
        'RETRY_OVERRIDES set it (the worker running the group applies its own configuration)',
    ),
    counts: retryCountsSchema,
    total: count('Jobs in the listed states when the page was read'),
    items: z.array(retryJobSchema),
    nextOffset: z.number().int().optional().meta({ description: 'Absent on the last page' }),
  }),
  {
    group: 'payment',
    maxAttempts: 3,
    counts: retryCountsExample,
    total: 3,
    items: [
      {
        jobId: EXAMPLE_JOB_ID,
        state: 'delayed',
        eventId: EXAMPLE_EVENT_ID,
        type: 'order.created',
        aggregateId: 'ord-42',
        stream: 'orders',
        entryId: '1732459990000-3',
        attemptsMade: 2,
        maxAttempts: 3,
        nextRunAt: '2024-11-24T14:53:13.000Z',
        startedAt: '2024-11-24T14:53:11.100Z',
        addedAt: '2024-11-24T14:53:10.150Z',
        replayCount: 0,
        firstFailedAt: '2024-11-24T14:53:10.120Z',
        lastError: {
          attempt: 2,
          at: '2024-11-24T14:53:11.140Z',
          name: 'Error',
          message: 'payment gateway answered 503',
        },
      },
    ],
    nextOffset: 1,
  },
);

const groupsResultSchema = withExample(z.object({ streams: z.array(streamSchema) }), {
  streams: [
    {
      stream: 'orders',
      length: 1200,
      groups: [
        {
          group: 'payment',
          consumers: [{ name: 'worker-7f3a-payment', pending: 2, idleMs: 120 }],
          pending: 2,
          lag: 0,
          lastDeliveredId: '1732460000000-0',
          retrying: 3,
          deadLettered: 3,
          paused: false,
        },
      ],
    },
  ],
});

const retryCountsResultSchema = withExample(z.object({ groups: z.array(groupCountsSchema) }), {
  groups: [{ group: 'payment', ...retryCountsExample }],
});

const runNowResultSchema = withExample(
  z.object({
    batchId: z.string().meta({ description: 'Groups this call’s audit records (one `run-now` per job made due)' }),
    group: z.string(),
    promoted: count('Jobs made due now'),
    promotedIds: z.array(z.string()),
    skipped: z.array(runNowSkipSchema),
  }),
  {
    batchId: '6f1c2e3d-4a5b-4c6d-8e7f-0a1b2c3d4e5f',
    group: 'payment',
    promoted: 1,
    promotedIds: [EXAMPLE_JOB_ID],
    skipped: [{ jobId: 'payment.0193a6f2-7000-7abc-8def-000000000001', reason: 'not-delayed' }],
  },
);

const runOneNowResultSchema = withExample(
  z.object({ group: z.string(), jobId: z.string(), state: z.literal('waiting') }),
  { group: 'payment', jobId: EXAMPLE_JOB_ID, state: 'waiting' },
);

const deadLetterNowResultSchema = withExample(
  z.object({
    batchId: z.string().meta({
      description: 'Groups the `dead-letter` audit records of this call’s jobs, made as their dead letters are written',
    }),
    group: z.string(),
    marked: count('Jobs to be dead-lettered instead of retried'),
    markedIds: z.array(z.string()),
    skipped: z.array(
      z.object({
        jobId: z.string(),
        reason: z.enum(['running', 'not-found']).meta({
          description:
            'running: an attempt is running now and decides; not-found: not retrying (never was, or finished)',
        }),
      }),
    ),
  }),
  {
    batchId: '6f1c2e3d-4a5b-4c6d-8e7f-0a1b2c3d4e5f',
    group: 'payment',
    marked: 1,
    markedIds: [EXAMPLE_JOB_ID],
    skipped: [{ jobId: 'payment.0193a6f2-7000-7abc-8def-000000000001', reason: 'running' }],
  },
);

const deadLetterOneNowResultSchema = withExample(
  z.object({
    group: z.string(),
    jobId: z.string(),
    state: z.literal('waiting'),
    deadLetterPending: z.object({ reason: z.literal('operator') }),
  }),
  { group: 'payment', jobId: EXAMPLE_JOB_ID, state: 'waiting', deadLetterPending: { reason: 'operator' } },
);

/** The body of a bulk retry action: job ids, or none for `all`. */
const jobIdsBody = (all: string) =>
  z
    .strictObject({
      ids: z
        .array(jobIdSchema)
        .min(1)
        .max(MAX_RETRY_PAGE)
        .optional()
        .meta({ description: `Job ids, 1-${MAX_RETRY_PAGE}; omit for ${all}` }),
    })
    .meta({ example: { ids: [EXAMPLE_JOB_ID] } });

const notRetrying = (group: string, jobId: string) =>
  new ApiProblem(404, 'NOT_FOUND', `group "${group}" is not retrying a job "${jobId}"`, {
    errors: [{ field: 'params.jobId', message: 'not a retrying job of this group' }],
  });

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);

/** Consumer groups per stream (XINFO GROUPS / CONSUMERS) and retry queue counts. */
export const adminGroupsRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const { redis, retryQueues, deadLetters } = ctx.deps;
  // preParsing: after the rate limiter (onRequest), so token guessing is limited too; before any body is read.
  app.addHook('preParsing', adminAuth(ctx.config.adminToken));
  const config = limitedBy(ctx.limits.admin);
  const pauses = new GroupPauses(redis, ctx.keys, retryQueues);

  const streamNames = async () => (await redis.smembers(ctx.keys.streams)).sort();

  const groupsOf = async (stream: string) => {
    try {
      return infoList(await redis.call('XINFO', 'GROUPS', ctx.keys.stream(stream)));
    } catch (err) {
      // The stream was deleted (or never written) after it was registered.
      if (err instanceof Error && /no such key/i.test(err.message)) return [];
      throw err;
    }
  };

  const consumersOf = async (stream: string, group: string) => {
    try {
      return infoList(await redis.call('XINFO', 'CONSUMERS', ctx.keys.stream(stream), group));
    } catch (err) {
      if (isNoGroupError(err) || (err instanceof Error && /no such key/i.test(err.message))) return [];
      throw err;
    }
  };

  app.get(
    '/admin/groups',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Consumer groups with consumers, pending, lag, retrying and dead-lettered counts',
        description: 'One item per stream that has consumer groups; lag is what KEDA’s redis-streams scaler reads.',
        security: adminSecurity,
        response: { 200: groupsResultSchema, ...adminProblems },
      },
    },
    async () => {
      const [deadByGroup, paused] = await Promise.all([deadLetters.countsByGroup(), pauses.paused()]);
      const streams = await Promise.all(
        (await streamNames()).map(async (stream) => {
          const infos = await groupsOf(stream);
          const length = await redis.xlen(ctx.keys.stream(stream));
          const groups = await Promise.all(
            infos.map(async (info) => {
              const group = String(info.name ?? '');
              const [consumers, retry] = await Promise.all([consumersOf(stream, group), retryQueues.counts(group)]);
              return {
                group,
                consumers: consumers.map((c) => ({
                  name: String(c.name ?? ''),
                  pending: num(c.pending),
                  idleMs: num(c.idle),
                })),
                pending: num(info.pending),
                lag: info.lag === null || info.lag === undefined ? null : num(info.lag),
                lastDeliveredId: String(info['last-delivered-id'] ?? ''),
                retrying: retry.waiting + retry.delayed + retry.active,
                deadLettered: deadByGroup[group] ?? 0,
                paused: paused.has(group),
              };
            }),
          );
          return { stream, length, groups: groups.sort((a, b) => a.group.localeCompare(b.group)) };
        }),
      );
      return { streams };
    },
  );

  /** Every group the fleet knows of: consumer groups of registered streams, and groups with dead letters. */
  const knownGroups = async (): Promise<Set<string>> => {
    const names = new Set<string>(Object.keys(await deadLetters.countsByGroup()));
    for (const stream of await streamNames()) {
      for (const info of await groupsOf(stream)) names.add(String(info.name ?? ''));
    }
    return names;
  };

  /** Refuses a group nobody has heard of: not a consumer group, no dead letters, no retry queue. */
  const checkGroup = async (group: string, field: string, status: 400 | 404) => {
    const known = await knownGroups();
    if (known.has(group) || (await retryQueues.exists(group))) return;
    const list = [...known].sort().join(', ') || 'none';
    const message = `unknown consumer group "${group}"; known groups: ${list}`;
    throw new ApiProblem(status, status === 400 ? 'VALIDATION_ERROR' : 'NOT_FOUND', message, {
      errors: [{ field, message: 'unknown consumer group' }],
    });
  };

  const countsOf = async (group: string, deadByGroup: Record<string, number>) => {
    const c = await retryQueues.counts(group);
    return { ...c, retrying: c.waiting + c.delayed + c.active, deadLettered: deadByGroup[group] ?? 0 };
  };

  /** As this API's environment configures it (RETRY_MAX_ATTEMPTS, RETRY_OVERRIDES). */
  const maxAttemptsOf = (group: string) =>
    RetryPolicy.forGroup(ctx.config.retry, ctx.config.retry.overrides, group).maxAttempts;

  const pauseResult = z.object({
    group: z.string(),
    paused: z.boolean(),
    changed: z
      .boolean()
      .meta({ description: 'false when the group already was in that state: nothing changed, nothing audited' }),
  });
  const pauseActions = {
    pause: {
      summary: 'Pause a consumer group, in every worker',
      description:
        'Its consumers read and claim nothing new (each notices within a second); handlers already running finish ' +
        'and are acked; its retry queue is paused too, so no retry starts and due ones wait. New events wait in ' +
        'the stream (see `lag` in /admin/groups), and other groups of the stream go on. For when what the group ' +
        'calls is down: its events wait instead of using up their attempts. Audited (/admin/audit) when it ' +
        'changes the group’s state. 404 if no such group is known.',
      paused: true,
    },
    resume: {
      summary: 'Resume a paused consumer group',
      description:
        'Its consumers read again, from where they stopped, and its retry queue runs. Audited (/admin/audit) when ' +
        'it changes the group’s state. 404 if no such group is known.',
      paused: false,
    },
  } as const;
  for (const [action, { summary, description, paused }] of Object.entries(pauseActions)) {
    app.post(
      `/admin/groups/:group/${action}`,
      {
        config,
        schema: {
          tags: ['groups'],
          summary,
          description,
          security: adminSecurity,
          headers: actorHeaders,
          params: z.strictObject({ group: nameSchema }),
          response: {
            200: withExample(pauseResult, { group: 'payment', paused, changed: true }),
            ...adminProblems,
            ...problemResponses(404),
          },
        },
      },
      async (request) => {
        const { group } = request.params;
        await checkGroup(group, 'params.group', 404);
        const actor = actorOf(request);
        const changed = paused ? await pauses.pause(group, { actor }) : await pauses.resume(group, { actor });
        request.log.info({ group, actor, changed }, paused ? 'group paused' : 'group resumed');
        return { group, paused, changed };
      },
    );
  }

  app.get(
    '/admin/retries',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Retry queue counts per consumer group',
        description:
          'Counts of each group’s retry queue, for every group that has a stream or dead letters, or for the one ' +
          'named by `group` (400 if no such group is known). `completed` counts dead-lettered jobs too: see each ' +
          'field. List the events themselves with /admin/retries/{group}.',
        security: adminSecurity,
        querystring: z.strictObject({
          group: nameSchema.optional().meta({ description: 'Only this consumer group', example: 'payment' }),
        }),
        response: { 200: retryCountsResultSchema, ...adminProblems },
      },
    },
    async (request) => {
      const { group } = request.query;
      let names: string[];
      if (group !== undefined) {
        await checkGroup(group, 'query.group', 400);
        names = [group];
      } else {
        names = [...(await knownGroups())].sort();
      }
      const deadByGroup = await deadLetters.countsByGroup();
      const groups = await Promise.all(names.map(async (g) => ({ group: g, ...(await countsOf(g, deadByGroup)) })));
      return { groups };
    },
  );

  app.get(
    '/admin/retries/:group',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Events a consumer group is retrying',
        description:
          'The group’s retry jobs, in the order they will run: active, then waiting, then delayed (soonest first). ' +
          'Each with its event, attempts made and allowed, next run time, replay count and last error. Paginate ' +
          'by passing `nextOffset` back as `offset`; jobs change state while they are read, so a busy queue can ' +
          'show a job twice or skip one across pages. 404 if no such group is known.',
        security: adminSecurity,
        params: z.strictObject({ group: nameSchema }),
        querystring: z.strictObject({
          state: retryingStateSchema.optional().meta({ description: 'Only jobs in this state (default: all three)' }),
          offset: queryInteger({
            min: 0,
            max: 1_000_000_000,
            default: 0,
            description: 'Jobs to skip, from a previous page’s `nextOffset`',
          }),
          limit: queryInteger({
            min: 1,
            max: MAX_RETRY_PAGE,
            default: 50,
            description: `Page size, 1-${MAX_RETRY_PAGE}`,
          }),
        }),
        response: {
          200: retryingPageSchema,
          ...adminProblems,
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      const { group } = request.params;
      const { state, offset, limit } = request.query;
      await checkGroup(group, 'params.group', 404);
      const maxAttempts = maxAttemptsOf(group);
      const [counts, page] = await Promise.all([
        countsOf(group, await deadLetters.countsByGroup()),
        retryQueues.list(group, { offset, limit, ...(state ? { states: [state] } : {}) }),
      ]);
      const items = page.items.map((job) => {
        const { data } = job;
        const aggregateId = fieldsToRecord(data.fields).aggregateId;
        // The job carries the earlier rounds' failures too (each naming its round): this round's last.
        const last = lastFailureOfRound(data);
        return {
          jobId: job.jobId,
          state: job.state,
          eventId: data.eventId,
          type: data.type,
          ...(aggregateId ? { aggregateId } : {}),
          stream: data.stream,
          entryId: data.entryId,
          attemptsMade: job.attemptsMade,
          maxAttempts,
          ...(job.nextRunAt ? { nextRunAt: job.nextRunAt } : {}),
          ...(job.startedAt ? { startedAt: job.startedAt } : {}),
          addedAt: job.addedAt,
          replayCount: data.replayCount,
          firstFailedAt: data.firstFailedAt,
          ...(last
            ? { lastError: { attempt: last.attempt, at: last.at, name: last.name, message: last.message } }
            : {}),
          ...(data.deadLetter ? { deadLetterPending: { reason: data.deadLetter.reason } } : {}),
        };
      });
      return {
        group,
        maxAttempts,
        counts,
        total: page.total,
        items,
        ...(page.nextOffset === undefined ? {} : { nextOffset: page.nextOffset }),
      };
    },
  );

  const runNowDescription =
    'Its attempt counts stay as they are; in a paused group due jobs wait for the resume. For when what the ' +
    'group calls is back and nothing should wait out its backoff. Each job made due is audited (`run-now` in ' +
    '/admin/audit). 404 if no such group is known.';

  app.post(
    '/admin/retries/:group/run-now',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Run a group’s delayed retries now',
        description:
          'Makes the delayed jobs named by `ids` (job ids from /admin/retries/{group}), or with `{}` every job of the ' +
          `group delayed when the call starts, due now: the next free retry worker runs them. ${runNowDescription} ` +
          'Jobs already due or running, and ids that are not retrying, are listed in `skipped`.',
        security: adminSecurity,
        headers: actorHeaders,
        params: z.strictObject({ group: nameSchema }),
        body: jobIdsBody('every delayed job of the group'),
        response: {
          200: runNowResultSchema,
          ...adminProblems,
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      const { group } = request.params;
      await checkGroup(group, 'params.group', 404);
      const actor = actorOf(request);
      const batchId = randomUUID();
      const { promoted, skipped } = await retryQueues.runNow(group, request.body.ids, { actor, batchId });
      request.log.info(
        { group, actor, batchId, promoted: promoted.length, skipped: skipped.length },
        'retries run now',
      );
      return { batchId, group, promoted: promoted.length, promotedIds: promoted, skipped };
    },
  );

  app.post(
    '/admin/retries/:group/:jobId/run-now',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Run one delayed retry now',
        description:
          `Makes the job due now: the next free retry worker runs it. ${runNowDescription} 404 if the job is not ` +
          'retrying (never was, finished or dead-lettered), 409 if it is already due or running.',
        security: adminSecurity,
        headers: actorHeaders,
        params: z.strictObject({ group: nameSchema, jobId: jobIdSchema }),
        response: {
          200: runOneNowResultSchema,
          ...adminProblems,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      const { group, jobId } = request.params;
      await checkGroup(group, 'params.group', 404);
      const actor = actorOf(request);
      const [skip] = (await retryQueues.runNow(group, [jobId], { actor })).skipped;
      if (skip?.reason === 'not-found') throw notRetrying(group, jobId);
      if (skip) {
        throw new ApiProblem(409, 'RETRY_NOT_DELAYED', `job "${jobId}" is already due or running`, {
          errors: [{ field: 'params.jobId', message: 'already due or running' }],
        });
      }
      request.log.info({ group, jobId, actor }, 'retry run now');
      return { group, jobId, state: 'waiting' as const };
    },
  );
  const deadLetterNowDescription =
    'The dead letter (reason `operator`) keeps the event, its failures and its last error; replay it from ' +
    '/admin/dlq once the cause is fixed. The group’s retry worker writes it without running the handler, at ' +
    'once (in a paused group, at the resume), as for any dead letter; until then the job is listed with ' +
    '`deadLetterPending`. Audited (`dead-letter` in /admin/audit, with the dead letter’s id) when the dead ' +
    'letter is written. Sidekiq’s "Kill". 404 if no such group is known.';

  app.post(
    '/admin/retries/:group/dead-letter',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Dead-letter a group’s retrying events now',
        description:
          'The jobs named by `ids` (job ids from /admin/retries/{group}), or with `{}` every job of the group ' +
          'waiting to run when the call starts (delayed, or due but not started, as in a paused group), are ' +
          `dead-lettered instead of retried. ${deadLetterNowDescription} ` +
          'Jobs whose attempt is running, and ids that are not retrying, are listed in `skipped`.',
        security: adminSecurity,
        headers: actorHeaders,
        params: z.strictObject({ group: nameSchema }),
        body: jobIdsBody('every job of the group waiting to run'),
        response: {
          200: deadLetterNowResultSchema,
          ...adminProblems,
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      const { group } = request.params;
      await checkGroup(group, 'params.group', 404);
      const actor = actorOf(request);
      const batchId = randomUUID();
      const { marked, skipped } = await retryQueues.deadLetterNow(group, request.body.ids, { actor, batchId });
      request.log.info(
        { group, actor, batchId, marked: marked.length, skipped: skipped.length },
        'retries dead-lettered by an operator',
      );
      return { batchId, group, marked: marked.length, markedIds: marked, skipped };
    },
  );

  app.post(
    '/admin/retries/:group/:jobId/dead-letter',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Dead-letter one retrying event now',
        description:
          `The job is dead-lettered instead of retried. ${deadLetterNowDescription} 404 if the job is not ` +
          'retrying (never was, finished or dead-lettered), 409 if its attempt is running now (that attempt decides).',
        security: adminSecurity,
        headers: actorHeaders,
        params: z.strictObject({ group: nameSchema, jobId: jobIdSchema }),
        response: {
          200: deadLetterOneNowResultSchema,
          ...adminProblems,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      const { group, jobId } = request.params;
      await checkGroup(group, 'params.group', 404);
      const actor = actorOf(request);
      const [skip] = (await retryQueues.deadLetterNow(group, [jobId], { actor })).skipped;
      if (skip?.reason === 'not-found') throw notRetrying(group, jobId);
      if (skip) {
        throw new ApiProblem(409, 'RETRY_RUNNING', `job "${jobId}" is running an attempt now; that attempt decides`, {
          errors: [{ field: 'params.jobId', message: 'running now' }],
        });
      }
      request.log.info({ group, jobId, actor }, 'retry dead-lettered by an operator');
      return { group, jobId, state: 'waiting' as const, deadLetterPending: { reason: 'operator' as const } };
    },
  );
};
