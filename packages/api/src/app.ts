import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { type Config, StreamfleetKeys } from '@streamfleet/core';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController, type RawServerDefault } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps, RateLimitOptions } from './deps';
import { KnownRoutes } from './http/allowed-methods';
import { clientErrorHandler } from './http/client-errors';
import { errorHandler, sendProblem } from './http/error-handler';
import { IdempotencyStore } from './http/idempotency';
import { ApiMetrics } from './http/metrics';
import { type OpenApiLike, openApiObjectTransform, openApiTransform } from './http/openapi';
import { ApiProblem } from './http/problem';
import { installRateLimits } from './http/rate-limit';
import { acceptDeclaredInputOnly } from './http/route-input';
import { routerErrorHandler } from './http/router-errors';
import { parseJsonBody } from './http/safe-body';
import type { RouteContext, RouteRateLimit } from './route-context';
import { adminDlqRoutes } from './routes/admin-dlq';
import { adminGroupsRoutes } from './routes/admin-groups';
import { eventsRoutes } from './routes/events';
import { healthRoutes } from './routes/health';

export type ApiApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

declare module 'fastify' {
  interface FastifyInstance {
    /** Marks the app as shutting down: `/readyz` answers 503 from now on. */
    beginShutdown(): void;
    readonly metrics: ApiMetrics;
    /**
     * `Idempotency-Key` handling for POST routes, the built-in ones and plugins' alike:
     * `app.idempotency.answer(request, reply, work)`.
     */
    readonly idempotency: IdempotencyStore;
  }
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const REQUEST_ID = /^[\w.:@-]{1,128}$/;
/** Longest path parameter the router reads; every route's params schema allows at most this. */
const MAX_PARAM_LENGTH = 200;

const API_DESCRIPTION = `Event ingestion and dead-letter administration for a streamfleet Redis Streams fleet.

Errors are RFC 9457 problem documents (\`application/problem+json\`) with a stable \`code\` and field-level \`errors\`.
Request bodies are UTF-8 JSON, sent unencoded: any \`content-encoding\` but \`identity\` is a 415.
Admin routes need \`Authorization: Bearer <ADMIN_TOKEN>\`. Every response carries \`x-request-id\` (echoed when sent).`;

/**
 * Builds the HTTP app around its dependencies. Never listens and never connects: the
 * caller (`server.ts`, tests) owns connections and closes them after `app.close()`.
 */
export function buildApp(config: Config, deps: ApiDeps): ApiApp {
  const routes = new KnownRoutes();
  const keys = new StreamfleetKeys(config.prefix);
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger as FastifyBaseLogger } : { logger: false }),
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    return503OnClosing: true,
    // Unset unless a proxy is trusted: Fastify then gives requests a plain `ip` getter (the
    // socket's address) instead of one that parses X-Forwarded-For on every read.
    ...(config.trustProxy === false ? {} : { trustProxy: fastifyTrustProxy(config.trustProxy) }),
    // Fastify's two log lines per request (in, out) at info were most of the logging cost of
    // ingestion. Errors are logged once by the error handler; an access log is kept at debug.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // What the router and Node's HTTP parser refuse never reaches the error handler: both
    // are answered as problems too.
    frameworkErrors: routerErrorHandler(routes, MAX_PARAM_LENGTH),
    clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();

  // Same validation and serialization as the zod type provider's, on schemas compiled ahead
  // of time: ~3x faster on a valid batch body, ~4x on its 202 answer. Invalid input falls back
  // to zod's runtime parser, so problems name the same fields. Docs use the original schemas.
  app.setValidatorCompiler((route) => {
    const validate = validatorCompiler({ ...route, schema: compiledSchema(route.schema) as z.ZodType });
    if (route.httpPart !== 'headers') return validate;
    // Headers are checked, not replaced: once a route sets `request.headers`, Fastify's getter
    // copies every header into a new object on each later read. Header schemas therefore only
    // check (optional strings, no defaults or transforms).
    return (data: unknown) => {
      const result = validate(data) as { error?: Error };
      return result.error ? { error: result.error } : true;
    };
  });
  app.setSerializerCompiler((route) =>
    serializerCompiler({ ...route, schema: compiledSchema(route.schema) as z.ZodType }),
  );
  app.setErrorHandler(errorHandler);
  routes.track(app);
  acceptDeclaredInputOnly(app);
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = routes.allowedMethods(path);
    const problem =
      allowed.length > 0
        ? new ApiProblem(
            405,
            'METHOD_NOT_ALLOWED',
            `${path} does not answer ${request.method}; it answers ${allowed.join(', ')}`,
            {
              headers: { allow: allowed.join(', ') },
            },
          )
        : new ApiProblem(404, 'ROUTE_NOT_FOUND', `no route ${request.method} ${path}`);
    return sendProblem(request, reply, problem);
  });

  const metrics = new ApiMetrics();
  const lifecycle = { shuttingDown: false };
  app.decorate('metrics', metrics);
  app.decorate('idempotency', new IdempotencyStore(deps.redis, keys, deps.idempotencyTtlSeconds ?? 24 * 3600));
  app.decorate('beginShutdown', () => {
    lifecycle.shuttingDown = true;
  });
  app.addHook('onClose', async () => {
    lifecycle.shuttingDown = true;
  });
  metrics.install(app);

  // Callback-style hooks: an async hook costs a promise per request on every route.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  if (deps.logger?.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug(
        { method: request.method, url: request.url, ip: request.ip, status: reply.statusCode, ms: reply.elapsedTime },
        'request completed',
      );
      done();
    });
  }
  // JSON is the only body any route takes: Fastify's text/plain parser would hand a route a
  // string (then refused as "expected object"), where any other media type is a 415.
  app.removeAllContentTypeParsers();
  // As bytes: a body that is not UTF-8 is refused, not read with U+FFFD put in its place.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    try {
      refuseContentEncoding(request.headers['content-encoding']);
      done(null, parseJsonBody(jsonText(request.headers['content-type'], body as Buffer)));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  const limits = rateLimits(config, deps);
  installRateLimits(app);

  const extraTags = (deps.plugins ?? []).flatMap((p) => (p.tag ? [p.tag] : []));
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'streamfleet API', description: API_DESCRIPTION, version: '0.1.0' },
      tags: [
        { name: 'events', description: 'Publish events to the fleet streams' },
        { name: 'dead letters', description: 'Inspect, replay and discard dead-lettered events (admin)' },
        { name: 'groups', description: 'Consumer groups, lag and retries (admin)' },
        { name: 'audit', description: 'Who did what to dead letters, retries and groups, and when (admin)' },
        { name: 'health', description: 'Liveness, readiness and metrics' },
        ...extraTags,
      ],
      components: {
        securitySchemes: {
          adminToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'The ADMIN_TOKEN configured on the server',
          },
        },
      },
    },
    transform: openApiTransform,
    transformObject: (documentObject) => openApiObjectTransform(documentObject as { openapiObject: OpenApiLike }),
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });

  const context: RouteContext = {
    config,
    deps,
    keys,
    metrics,
    limits,
    lifecycle,
  };
  void app.register(healthRoutes, context);
  void app.register(eventsRoutes, context);
  void app.register(adminDlqRoutes, context);
  void app.register(adminGroupsRoutes, context);
  for (const extra of deps.plugins ?? []) {
    void app.register(extra.plugin, { ...context, ...(extra.prefix ? { prefix: extra.prefix } : {}) });
  }
  return app;
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;

/**
 * The text of a JSON body. JSON is UTF-8 (RFC 8259): a `charset` naming anything else is a
 * 415, and bytes that are not UTF-8 a 400, rather than text silently altered.
 */
function jsonText(contentType: string | undefined, body: Buffer): string {
  const charset = contentType?.includes(';') ? CHARSET.exec(contentType)?.[1]?.toLowerCase() : undefined;
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new ApiProblem(415, 'UNSUPPORTED_MEDIA_TYPE', `JSON bodies are UTF-8; charset=${charset} is not accepted`, {
      errors: [{ field: 'headers.content-type', message: `charset ${charset} is not accepted; send UTF-8` }],
    });
  }
  if (!isUtf8(body)) {
    throw new ApiProblem(400, 'MALFORMED_JSON', 'request body is not valid UTF-8', {
      errors: [{ field: 'body', message: 'not valid UTF-8' }],
    });
  }
  return body.toString('utf8');
}

/**
 * Bodies are read as sent: nothing decompresses them. A body in any content-coding but
 * `identity` is a 415 (RFC 9110 15.5.16, with `Accept-Encoding` saying what is taken), rather
 * than gzip read as "not valid UTF-8", or a `br` header on a plain body silently ignored.
 */
function refuseContentEncoding(contentEncoding: string | undefined): void {
  if (contentEncoding === undefined || /^\s*(identity)?\s*$/i.test(contentEncoding)) return;
  const shown = contentEncoding.length <= 100 ? contentEncoding : `${contentEncoding.slice(0, 100)}...`;
  throw new ApiProblem(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    `request bodies are not decoded; content-encoding ${shown} is not accepted`,
    {
      errors: [
        { field: 'headers.content-encoding', message: `${shown} is not accepted; send the body unencoded (identity)` },
      ],
      headers: { 'accept-encoding': 'identity' },
    },
  );
}

const compiledSchemas = new WeakMap<object, unknown>();

/** `z.compile(schema)`, once per schema; anything that is not a zod schema is returned as is. */
function compiledSchema<T>(schema: T): T {
  if (!(schema instanceof z.ZodType)) return schema;
  let compiled = compiledSchemas.get(schema);
  if (compiled === undefined) {
    compiled = z.compile(schema);
    compiledSchemas.set(schema, compiled);
  }
  return compiled as T;
}

/**
 * Per-client limits: the config's `RATE_LIMIT_*_PER_MIN` (0: none), unless `deps.rateLimit`
 * overrides them (embedders and tests), per kind or all off with `false`.
 */
function rateLimits(config: Config, deps: ApiDeps): RouteContext['limits'] {
  if (deps.rateLimit === false) return { ingest: false, admin: false };
  const perMinute = (max: number): RateLimitOptions | false => (max > 0 ? { max, timeWindowMs: 60_000 } : false);
  const toRoute = (o: RateLimitOptions | false): RouteRateLimit | false =>
    o === false ? false : { max: o.max, timeWindow: o.timeWindowMs };
  const admin = toRoute(deps.rateLimit?.admin ?? perMinute(config.rateLimit.adminPerMin));
  return {
    ingest: toRoute(deps.rateLimit?.ingest ?? perMinute(config.rateLimit.ingestPerMin)),
    // One budget per client across every admin route: a token guesser gets `max` tries, not
    // `max` per route.
    admin: admin === false ? false : { ...admin, groupId: 'admin' },
  };
}

/**
 * Fastify's `trustProxy` for `TRUST_PROXY`. A hop count becomes a function: Fastify 5.12 reads
 * a number as "trust no hop" (it cannot check the peer's address), which would leave every
 * client behind the proxy sharing the proxy's IP. A count trusts whichever peer is that many
 * hops in, like `true` trusts any: only for an API reachable through its proxies alone.
 */
function fastifyTrustProxy(
  trust: true | number | string[],
): true | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust !== 'number') return trust;
  return (_address, hop) => hop < trust;
}
