import { z } from 'zod';

/** One field-level complaint inside a problem document. */
export interface ProblemField {
  field: string;
  message: string;
}

/** Most field errors a problem lists; `moreErrors` counts the rest, so a problem stays small. */
export const MAX_PROBLEM_ERRORS = 100;

/**
 * An RFC 9457 problem the API answers with. Routes throw it (or a core `StreamfleetError`);
 * the error handler is the only place that turns errors into HTTP responses.
 */
export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly errors: ProblemField[];
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    detail: string,
    options: {
      title?: string;
      errors?: ProblemField[];
      extensions?: Record<string, unknown>;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(detail);
    this.name = 'ApiProblem';
    this.status = status;
    this.code = code;
    this.title = options.title ?? defaultTitle(status);
    const errors = options.errors ?? [];
    this.errors = errors.length > MAX_PROBLEM_ERRORS ? errors.slice(0, MAX_PROBLEM_ERRORS) : errors;
    this.extensions =
      errors.length > MAX_PROBLEM_ERRORS
        ? { ...options.extensions, moreErrors: errors.length - MAX_PROBLEM_ERRORS }
        : (options.extensions ?? {});
    this.headers = options.headers ?? {};
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function defaultTitle(status: number): string {
  return TITLES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request');
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Problem type URIs are stable, relative and derived from the code, e.g. `/problems/validation-error`. */
export function problemType(code: string): string {
  return `/problems/${code.toLowerCase().replaceAll('_', '-')}`;
}

export const problemSchema = z
  .looseObject({
    type: z
      .string()
      .meta({ description: 'URI reference naming the kind of problem', example: '/problems/validation-error' }),
    title: z.string().meta({ example: 'Bad Request' }),
    status: z.number().int().meta({ example: 400 }),
    detail: z.string().meta({ example: 'data.total: Invalid input: expected number, received string' }),
    code: z.string().meta({ description: 'Stable machine-readable error code', example: 'VALIDATION_ERROR' }),
    errors: z
      .array(z.object({ field: z.string(), message: z.string() }))
      .meta({ description: `Field-level details (dotted paths), the first ${MAX_PROBLEM_ERRORS}` }),
    moreErrors: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({
        description: `How many more field errors there were than the ${MAX_PROBLEM_ERRORS} listed in \`errors\``,
        example: 42,
      }),
    instance: z.string().optional(),
    requestId: z.string().optional(),
  })
  .meta({ description: 'RFC 9457 problem details (served as application/problem+json)' });

export type ProblemBody = z.infer<typeof problemSchema>;

/** A route's 503: what it reads or writes is out of reach. */
const unavailableSchema = problemSchema.meta({
  description:
    'RFC 9457 problem details (served as application/problem+json): a store the route needs is not reachable ' +
    'right now, `REDIS_UNAVAILABLE` or `POSTGRES_UNAVAILABLE` (for a write, Postgres’ says that the request may ' +
    'or may not have been carried out); retry after `retry-after` seconds',
});

/** The document a problem is answered with; `instance` is the request's path, when there is one. */
export function problemDocument(problem: ApiProblem, instance: string | undefined, requestId: string): ProblemBody {
  return {
    ...problem.extensions,
    type: problemType(problem.code),
    title: problem.title,
    status: problem.status,
    detail: problem.message,
    code: problem.code,
    errors: problem.errors,
    ...(instance === undefined ? {} : { instance }),
    requestId,
  };
}

/**
 * Response map of problem documents for the given statuses, for route schemas. Every route
 * that reads or writes Redis or Postgres can answer 503 (`REDIS_UNAVAILABLE`,
 * `POSTGRES_UNAVAILABLE`): give it 503 too.
 */
export function problemResponses<S extends number>(...statuses: S[]): Record<S, typeof problemSchema> {
  return Object.fromEntries(statuses.map((s) => [s, s === 503 ? unavailableSchema : problemSchema])) as Record<
    S,
    typeof problemSchema
  >;
}
