import { infoList, isNoGroupError } from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { adminAuth } from '../http/admin-auth';
import { limitedBy, type RouteContext } from '../route-context';
import { adminProblems, adminSecurity } from './admin-schemas';

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
});

const streamSchema = z.object({
  stream: z.string(),
  length: z.number().int(),
  groups: z.array(groupSchema),
});

const retryCountsSchema = z.object({
  group: z.string(),
  waiting: z.number().int(),
  delayed: z.number().int(),
  active: z.number().int(),
  failed: z.number().int(),
  completed: z.number().int(),
});

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0) || 0);

/** Consumer groups per stream (XINFO GROUPS / CONSUMERS) and retry queue counts. */
export const adminGroupsRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  const { redis, retryQueues, deadLetters } = ctx.deps;
  // preParsing: after the rate limiter (onRequest), so token guessing is limited too; before any body is read.
  app.addHook('preParsing', adminAuth(ctx.config.adminToken));
  const config = limitedBy(ctx.limits.admin);

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
        response: { 200: z.object({ streams: z.array(streamSchema) }), ...adminProblems },
      },
    },
    async () => {
      const deadByGroup = await deadLetters.countsByGroup();
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
              };
            }),
          );
          return { stream, length, groups: groups.sort((a, b) => a.group.localeCompare(b.group)) };
        }),
      );
      return { streams };
    },
  );

  app.get(
    '/admin/retries',
    {
      config,
      schema: {
        tags: ['groups'],
        summary: 'Retry queue counts per consumer group',
        description:
          'BullMQ job counts of each group’s retry queue (waiting, delayed, active, failed, completed), for every ' +
          'group that has a stream or dead letters.',
        security: adminSecurity,
        response: { 200: z.object({ groups: z.array(retryCountsSchema) }), ...adminProblems },
      },
    },
    async () => {
      const names = new Set<string>(Object.keys(await deadLetters.countsByGroup()));
      for (const stream of await streamNames()) {
        for (const info of await groupsOf(stream)) names.add(String(info.name ?? ''));
      }
      const groups = await Promise.all(
        [...names].sort().map(async (group) => ({ group, ...(await retryQueues.counts(group)) })),
      );
      return { groups };
    },
  );
};
