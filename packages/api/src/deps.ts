import type {
  DeadLetterStream,
  EventCatalog,
  Logger,
  ReadinessCheck,
  RedisClient,
  RetryQueues,
  StreamProducer,
} from '@streamfleet/core';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteContext } from './route-context';

export type { ReadinessCheck };

export interface RateLimitOptions {
  /** Requests allowed per client (IP) per window. */
  max: number;
  /** Window length in milliseconds. */
  timeWindowMs: number;
}

/**
 * A route plugin added next to the built-in ones (e.g. `/v1/orders`). It runs inside the
 * app's error handling, so it throws core errors (`NotFoundError`, `DomainError`,
 * `ConcurrencyError`...) or `ApiProblem`s and gets problem+json responses for free. Its
 * options are the app's `RouteContext`: `limitedBy(ctx.limits.ingest)` puts a route under
 * the ingest rate limit, as the built-in write routes are.
 */
export interface ApiRoutePlugin {
  name: string;
  plugin: FastifyPluginAsyncZod<RouteContext>;
  /** URL prefix, e.g. `/v1`. */
  prefix?: string;
  /** OpenAPI tag shown for the plugin's routes, with its description. */
  tag?: { name: string; description: string };
}

/** Everything the HTTP app talks to. Built by `server.ts` (or by tests); the app never connects itself. */
export interface ApiDeps {
  /** A connection for reads, the idempotency store and the readiness ping. */
  redis: RedisClient;
  catalog: EventCatalog;
  producer: StreamProducer;
  deadLetters: DeadLetterStream;
  retryQueues: RetryQueues;
  /** Extra readiness checks by name, e.g. `{ postgres: () => sql\`select 1\` }`. */
  readinessChecks?: Record<string, ReadinessCheck>;
  /** Extra route plugins, e.g. the orders API. */
  plugins?: ApiRoutePlugin[];
  /**
   * Per-client limits, overriding the config's `RATE_LIMIT_*_PER_MIN` for each kind given;
   * `false` turns one kind, or all rate limiting, off.
   */
  rateLimit?: { ingest?: RateLimitOptions | false; admin?: RateLimitOptions | false } | false;
  /** Largest accepted request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** How long an `Idempotency-Key` answer is kept (default 24 h). */
  idempotencyTtlSeconds?: number;
  /** Request logger; default: none. */
  logger?: Logger;
}
