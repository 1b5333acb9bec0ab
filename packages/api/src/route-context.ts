import type { Config, StreamfleetKeys } from '@streamfleet/core';
import type { FastifyContextConfig } from 'fastify';
import type { ApiDeps } from './deps';
import type { ApiMetrics } from './http/metrics';

/** Passed to route plugins: what they need beyond the deps. */
export interface RouteContext {
  config: Config;
  deps: ApiDeps;
  keys: StreamfleetKeys;
  metrics: ApiMetrics;
  /** Route-level `config.rateLimit` values, or `false` when rate limiting is off. */
  limits: { ingest: RouteRateLimit | false; admin: RouteRateLimit | false };
  lifecycle: { shuttingDown: boolean };
}

export interface RouteRateLimit {
  max: number;
  timeWindow: number;
  /**
   * Routes with the same `groupId` share one budget per client (as in `@fastify/rate-limit`);
   * without one, each route counts on its own. Routes of a group must carry the same limit.
   */
  groupId?: string;
}

/** Route `config` applying a rate limit (or none). */
export function limitedBy(limit: RouteRateLimit | false): FastifyContextConfig {
  return limit ? { rateLimit: limit } : {};
}
