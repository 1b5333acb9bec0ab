import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { KnownRoutes, MatchedRoute } from './allowed-methods';
import { errorHandler, validationFields } from './error-handler';
import { ApiProblem, type ProblemField } from './problem';

/**
 * Fastify's `frameworkErrors`: what its router refuses before any route is matched, which
 * would otherwise bypass the error handler and answer plain `application/json`.
 * - `FST_ERR_MAX_PARAM_LENGTH`, a path parameter longer than `maxParamLength`: every route's
 *   params schema allows at most that many characters, so this is the 400 the schema would
 *   have answered, naming the parameter (`params.sku`). Only for a parameter its schema
 *   would take (a plugin's route) is it 414: then the URL, not the value, is at fault.
 * - `FST_ERR_BAD_URL`, a path that does not percent-decode: 400 naming the parameter.
 * Anything else goes through the error handler as thrown.
 */
export function routerErrorHandler(routes: KnownRoutes, maxParamLength: number) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    // No route matched, so no onRequest hook ran: echo the request id here.
    reply.header('x-request-id', request.id);
    const path = request.url.split('?')[0] ?? request.url;
    const problem =
      err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? paramTooLong(routes.match(request.method, path), maxParamLength)
        : err.code === 'FST_ERR_BAD_URL'
          ? malformedUrl(routes.match(request.method, path))
          : err;
    errorHandler(problem, request, reply);
  };
}

function paramTooLong(matched: MatchedRoute[], maxParamLength: number): ApiProblem {
  for (const route of matched) {
    const params = Object.fromEntries(
      Object.entries(route.rawParams).map(([name, raw]) => [name, decoded(raw) ?? raw]),
    );
    const tooLong = Object.keys(params).filter((name) => (params[name] ?? '').length > maxParamLength);
    if (tooLong.length === 0) continue;
    const errors = schemaFields(route.paramsSchema, params);
    if (errors.length > 0) {
      return new ApiProblem(400, 'VALIDATION_ERROR', errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
        errors,
      });
    }
    return uriTooLong(
      tooLong.map((name) => ({ field: `params.${name}`, message: `longer than ${maxParamLength} characters` })),
      maxParamLength,
    );
  }
  return uriTooLong(
    [{ field: 'path', message: `a segment is longer than ${maxParamLength} characters` }],
    maxParamLength,
  );
}

function uriTooLong(errors: ProblemField[], maxParamLength: number): ApiProblem {
  return new ApiProblem(
    414,
    'URI_TOO_LONG',
    `path parameters are read up to ${maxParamLength} characters; ${errors.map((e) => e.field).join(', ')} is longer`,
    { errors },
  );
}

function malformedUrl(matched: MatchedRoute[]): ApiProblem {
  const message = 'not valid percent-encoding (%XX escapes of UTF-8 bytes)';
  for (const route of matched) {
    const bad = Object.entries(route.rawParams).filter(([, raw]) => decoded(raw) === undefined);
    if (bad.length > 0) {
      return new ApiProblem(400, 'MALFORMED_URL', `the path is not valid percent-encoding`, {
        errors: bad.map(([name]) => ({ field: `params.${name}`, message })),
      });
    }
  }
  return new ApiProblem(400, 'MALFORMED_URL', 'the path is not valid percent-encoding', {
    errors: [{ field: 'path', message }],
  });
}

function decoded(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** The route's params schema applied to `params`, its issues named as validation names them. */
function schemaFields(schema: unknown, params: Record<string, string>): ProblemField[] {
  if (!(schema instanceof z.ZodType)) return [];
  const result = schema.safeParse(params);
  if (result.success) return [];
  return validationFields(
    result.error.issues.map((issue) => ({
      instancePath: `/${issue.path.join('/')}`,
      message: issue.message,
      keyword: issue.code,
      params: issue as unknown as Record<string, unknown>,
    })),
    'params',
  );
}
