import {
  ConcurrencyError,
  ConflictError,
  DomainError,
  describeIssues,
  isPostgresUnavailable,
  isRedisUnavailable,
  NotFoundError,
  StreamfleetError,
  ValidationError,
} from '@streamfleet/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiProblem, defaultTitle, PROBLEM_CONTENT_TYPE, type ProblemField, problemDocument } from './problem';

/** Codes of Fastify's own 4xx errors, renamed to the API's vocabulary. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
};

/**
 * Statuses of core error codes. This table (with the classes below it) is the only place
 * where streamfleet's error codes meet HTTP.
 */
const CODE_STATUS: Record<string, number> = {
  VALIDATION_ERROR: 400,
  NOT_FOUND: 404,
  DLQ_ENTRY_REPLAYED: 409,
  DLQ_ENTRY_DISCARDED: 409,
  CONCURRENCY_CONFLICT: 409,
};

interface ValidationItem {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

/**
 * Normalises anything thrown while serving a request into a problem. `request`, when given,
 * lets a problem quote what was sent (the content-type of a 415).
 */
export function toProblem(err: unknown, request?: FastifyRequest): ApiProblem {
  if (err instanceof ApiProblem) return err;
  if (err instanceof ValidationError) {
    return new ApiProblem(400, err.code, err.message, { errors: onePerField(err.issues) });
  }
  if (err instanceof StreamfleetError) {
    const status =
      CODE_STATUS[err.code] ??
      (err instanceof NotFoundError
        ? 404
        : err instanceof ConflictError || err instanceof ConcurrencyError
          ? 409
          : err instanceof DomainError
            ? 422
            : 500);
    if (status >= 500) return internal();
    const extensions = err.details && !('issues' in err.details) ? { details: err.details } : {};
    return new ApiProblem(status, err.code, err.message, { extensions });
  }
  const fastifyError = err as Partial<FastifyError> & { validation?: ValidationItem[]; validationContext?: string };
  if (Array.isArray(fastifyError.validation)) {
    const errors = validationFields(fastifyError.validation, fastifyError.validationContext);
    const detail = describeIssues(errors) || 'request does not match its schema';
    return new ApiProblem(400, 'VALIDATION_ERROR', detail, { errors });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = fastifyError.message ?? defaultTitle(status);
    if (err instanceof SyntaxError || fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
      const forbidden = /prototype|constructor/i.test(message);
      return new ApiProblem(
        400,
        forbidden ? 'FORBIDDEN_KEY' : 'MALFORMED_JSON',
        forbidden ? `request body contains a forbidden key: ${message}` : `request body is not valid JSON: ${message}`,
        { errors: [{ field: 'body', message }] },
      );
    }
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return unsupportedMediaType(request?.headers['content-type']);
    }
    const code = (fastifyError.code && FASTIFY_CODES[fastifyError.code]) ?? defaultCode(status, fastifyError.code);
    const headers: Record<string, string> = {};
    return new ApiProblem(status, code, message, { headers });
  }
  if (isUnstorableText(err)) {
    return new ApiProblem(
      400,
      'UNSUPPORTED_CHARACTER',
      'the request holds text the database cannot store (a NUL character, U+0000, or a lone UTF-16 surrogate); nothing was written',
    );
  }
  // A read wrote nothing, whichever store is down.
  const read = request?.method === 'GET' || request?.method === 'HEAD';
  if (isPostgresUnavailable(err)) {
    return new ApiProblem(
      503,
      'POSTGRES_UNAVAILABLE',
      read
        ? 'Postgres is not reachable right now; retry later'
        : // The connection may have been lost during COMMIT, or after an earlier statement of
          // the request committed: whether it took effect is unknown.
          'Postgres is not reachable right now, so the request may or may not have been carried out; check before repeating it',
      { headers: { 'retry-after': '1' } },
    );
  }
  if (isRedisUnavailable(err)) {
    return new ApiProblem(
      503,
      'REDIS_UNAVAILABLE',
      `Redis is not reachable right now; ${read ? '' : 'nothing was written, '}retry later`,
      { headers: { 'retry-after': '1' } },
    );
  }
  return internal();
}

/**
 * A body sent without a content-type, or in one no parser takes (only JSON is): Fastify's
 * 415, naming the header as validation problems name theirs.
 */
function unsupportedMediaType(contentType: string | undefined): ApiProblem {
  const shown =
    contentType === undefined || contentType.length <= 100 ? contentType : `${contentType.slice(0, 100)}...`;
  return new ApiProblem(
    415,
    'UNSUPPORTED_MEDIA_TYPE',
    `request bodies must be application/json; ${shown === undefined ? 'this one has no content-type' : `this one is ${shown}`}`,
    {
      errors: [
        {
          field: 'headers.content-type',
          message:
            shown === undefined ? 'missing; send application/json' : `${shown} is not accepted; send application/json`,
        },
      ],
    },
  );
}

/**
 * Postgres refuses NUL in text (22021 character_not_in_repertoire, "invalid byte sequence") and
 * in jsonb (22P05 untranslatable_character), and a lone UTF-16 surrogate in jsonb (22P02
 * invalid_text_representation, whose detail names the surrogate; any other 22P02 is a query
 * the server got wrong). Routes refuse both in their schemas, naming the field; this is the
 * backstop for a string that reached a query without such a check: the client's input is at
 * fault, not the server. postgres.js errors carry the SQLSTATE as `code`.
 */
const UNSTORABLE_TEXT = new Set(['22021', '22P05']);

function isUnstorableText(err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== 'PostgresError') return false;
  const { code, detail } = err as { code?: unknown; detail?: unknown };
  return (
    UNSTORABLE_TEXT.has(String(code)) || (code === '22P02' && typeof detail === 'string' && /surrogate/i.test(detail))
  );
}

function defaultCode(status: number, fastifyCode: string | undefined): string {
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 415) return 'UNSUPPORTED_MEDIA_TYPE';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 404) return 'NOT_FOUND';
  return fastifyCode?.startsWith('FST_') ? 'BAD_REQUEST' : (fastifyCode ?? 'BAD_REQUEST');
}

function internal(): ApiProblem {
  return new ApiProblem(500, 'INTERNAL_ERROR', 'the server failed to handle the request; it has been logged');
}

const CONTEXT_PREFIX: Record<string, string> = { querystring: 'query', params: 'params', headers: 'headers' };

/** Maps zod (or ajv) issues to dotted field names; unknown keys are named one by one. */
export function validationFields(items: ValidationItem[], context?: string): ProblemField[] {
  const prefix = context ? CONTEXT_PREFIX[context] : undefined;
  const fields: ProblemField[] = [];
  for (const item of items) {
    const path = (item.instancePath ?? '').split('/').filter(Boolean).join('.');
    const base = prefix ? (path ? `${prefix}.${path}` : prefix) : path || 'body';
    const unknownKeys = item.keyword === 'unrecognized_keys' ? item.params?.keys : undefined;
    if (Array.isArray(unknownKeys) && unknownKeys.length > 0) {
      for (const key of unknownKeys) {
        fields.push({ field: base === 'body' ? String(key) : `${base}.${String(key)}`, message: 'unknown field' });
      }
      continue;
    }
    fields.push({ field: base, message: item.message ?? 'invalid' });
  }
  return onePerField(fields);
}

/**
 * The first complaint about each field. Schemas stop at their first failed check where it
 * matters (see `http/integers.ts`), and the first is the most basic one (type, then format,
 * then range); this keeps the answer to one message per field whatever schema produced it.
 */
export function onePerField(fields: readonly ProblemField[]): ProblemField[] {
  const seen = new Set<string>();
  const first: ProblemField[] = [];
  for (const issue of fields) {
    if (seen.has(issue.field)) continue;
    seen.add(issue.field);
    first.push(issue);
  }
  return first;
}

/** Sends a problem document; used by the error and not-found handlers. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: ApiProblem): FastifyReply {
  const body = problemDocument(problem, request.url.split('?')[0] ?? request.url, request.id);
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(body);
}

export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const problem = toProblem(err, request);
  // `ip` is the client's own behind a trusted proxy (TRUST_PROXY): who got the 429, say.
  if (problem.status >= 500) {
    request.log.error({ err, method: request.method, url: request.url, ip: request.ip }, 'request failed');
  } else {
    request.log.info(
      { code: problem.code, status: problem.status, method: request.method, url: request.url, ip: request.ip },
      'request refused',
    );
  }
  return sendProblem(request, reply, problem);
}
