import { runReadinessChecks } from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { withExample } from '../http/openapi';
import type { RouteContext } from '../route-context';

const readinessSchema = z.object({
  status: z.enum(['ready', 'unavailable', 'shutting-down']),
  checks: z.record(z.string(), z.string()).meta({
    description: 'Each dependency: `ok`, or why it failed',
    example: { redis: 'ok' },
  }),
});

const METRICS_EXAMPLE = [
  '# HELP streamfleet_http_requests_total HTTP requests served, by method, route and status',
  '# TYPE streamfleet_http_requests_total counter',
  'streamfleet_http_requests_total{method="POST",route="/v1/events",status="202"} 1024',
  '# HELP streamfleet_events_ingested_total Events accepted by the ingestion API, by type and stream',
  '# TYPE streamfleet_events_ingested_total counter',
  'streamfleet_events_ingested_total{type="warehouse.stock_received",stream="inventory"} 1024',
  '',
].join('\n');

/** `/healthz` (the process is alive), `/readyz` (it can serve: Redis and other checks) and `/metrics`. */
export const healthRoutes: FastifyPluginAsyncZod<RouteContext> = async (app, ctx) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness',
        description: 'Answers while the process runs; checks no dependency.',
        response: { 200: withExample(z.object({ status: z.literal('ok') }), { status: 'ok' }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness',
        description: 'Pings Redis (and any extra checks, e.g. Postgres). 503 when one fails or while shutting down.',
        response: {
          200: withExample(readinessSchema, { status: 'ready', checks: { redis: 'ok', postgres: 'ok' } }),
          503: withExample(readinessSchema, {
            status: 'unavailable',
            checks: { redis: 'ok', postgres: 'connect ECONNREFUSED 127.0.0.1:5432' },
          }),
        },
      },
    },
    async (_request, reply) => {
      if (ctx.lifecycle.shuttingDown) {
        return reply.code(503).send({ status: 'shutting-down', checks: {} });
      }
      const report = await runReadinessChecks({
        redis: () => ctx.deps.redis.ping(),
        ...ctx.deps.readinessChecks,
      });
      const ok = Object.values(report).every((r) => r === 'ok');
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks: report });
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        description:
          'HTTP requests by route and status, events ingested, and process metrics (text exposition format).',
        produces: ['text/plain'],
        response: {
          200: z.string().meta({ description: 'Prometheus text exposition format', example: METRICS_EXAMPLE }),
        },
      },
    },
    async (_request, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );
};
