import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { problemResponses } from './problem';

/** The query of a route that declares none: nothing, each parameter sent refused by name. */
export const NO_QUERY = z.strictObject({});

/**
 * The body of a route that declares none: no body (Fastify hands validation `null`), or `{}`
 * as many clients send with every POST; each field in it is refused by name, and anything
 * but an object as "expected object".
 */
export const NO_BODY = z.strictObject({}).nullish();

/**
 * Every route takes only what its schema declares, whoever registered it (built-in routes and
 * `deps.plugins` alike), so that no route silently ignores a parameter or a body it was sent:
 * - a route without a `querystring` schema refuses any query parameter (400 `query.<name>`);
 * - a route without a `body` schema refuses a body with fields (400 naming each field). GET
 *   and HEAD bodies are never read (Fastify does not parse them), so they cannot be checked;
 * - a route with a `body` schema documents 413 and 415, which any JSON body can be answered
 *   with, and every route with a response map documents 400, which any of them can be.
 * Swagger UI's routes (`hide`) are left alone. Call before any route is registered.
 */
export function acceptDeclaredInputOnly(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema ?? {};
    if (schema.hide) return;
    const response = schema.response as Record<string, unknown> | undefined;
    const documented = schema.body === undefined ? problemResponses(400) : problemResponses(400, 413, 415);
    route.schema = {
      ...schema,
      querystring: schema.querystring ?? NO_QUERY,
      body: schema.body ?? NO_BODY,
      ...(response === undefined ? {} : { response: { ...response, ...missing(documented, response) } }),
    };
  });
}

/** The entries of `extra` whose status `response` does not have yet. */
function missing(extra: Record<number, unknown>, response: Record<string, unknown>): Record<number, unknown> {
  return Object.fromEntries(Object.entries(extra).filter(([status]) => !(status in response)));
}
