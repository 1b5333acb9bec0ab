import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { createJsonSchemaTransform } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { NO_BODY, NO_QUERY } from './route-input';

type Transform = NonNullable<FastifyDynamicSwaggerOptions['transform']>;

const zodTransform = createJsonSchemaTransform({
  skipList: ['/docs', '/docs/', '/docs/*', '/docs/json', '/docs/yaml'],
});

/**
 * Route schemas to OpenAPI (the zod type provider's transform). The empty query and body put
 * on routes that declare none (`route-input.ts`) only refuse input: an operation without
 * parameters or request body says so already.
 */
export const openApiTransform: Transform = (input) => {
  const schema = input.schema as Record<string, unknown> | undefined;
  if (schema?.querystring !== NO_QUERY && schema?.body !== NO_BODY) return zodTransform(input);
  const { querystring, body, ...rest } = schema;
  return zodTransform({
    ...input,
    schema: {
      ...rest,
      ...(querystring === NO_QUERY ? {} : { querystring }),
      ...(body === NO_BODY ? {} : { body }),
    },
  } as Parameters<Transform>[0]);
};

/** The headers responses carry, described once and referenced from each response. */
const RESPONSE_HEADERS = {
  RequestId: {
    description:
      'The request’s `x-request-id` when it is sane (at most 128 characters from `[A-Za-z0-9_.:@-]`), otherwise a ' +
      'generated UUID. Also in every problem document (`requestId`) and log line of the request.',
    schema: { type: 'string', maxLength: 128 },
    example: '5f0c6a2e-3b1d-4c55-9a57-0e0a6f3f9b1c',
  },
  RateLimitLimit: {
    description:
      'Requests allowed per client (IP) per window: per route for ingestion, one budget across all admin routes',
    schema: { type: 'integer' },
    example: 600,
  },
  RateLimitRemaining: {
    description: 'Requests left in the current window',
    schema: { type: 'integer' },
    example: 599,
  },
  RateLimitReset: {
    description: 'Seconds until the current window ends',
    schema: { type: 'integer' },
    example: 42,
  },
  RetryAfter: {
    description: 'Seconds to wait before trying again',
    schema: { type: 'integer' },
    example: 42,
  },
} as const;

const ref = (name: keyof typeof RESPONSE_HEADERS) => ({ $ref: `#/components/headers/${name}` });

interface OpenApiResponse {
  content?: Record<string, unknown>;
  headers?: Record<string, unknown>;
}

export interface OpenApiLike {
  paths?: Record<string, Record<string, { responses?: Record<string, OpenApiResponse> }>>;
  components?: Record<string, unknown>;
}

/**
 * The finishing touches on the whole document: error responses are served as
 * `application/problem+json`, and every response names the headers it carries (rate-limit
 * headers on the operations that can answer 429, as exactly those are limited).
 */
export function openApiObjectTransform({ openapiObject }: { openapiObject: Partial<OpenApiLike> }): OpenApiLike {
  for (const operations of Object.values(openapiObject.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      const responses = operation.responses ?? {};
      const limited = '429' in responses;
      for (const [status, response] of Object.entries(responses)) {
        problemContentType(status, response);
        response.headers = {
          ...response.headers,
          'x-request-id': ref('RequestId'),
          ...(limited
            ? {
                'x-ratelimit-limit': ref('RateLimitLimit'),
                'x-ratelimit-remaining': ref('RateLimitRemaining'),
                'x-ratelimit-reset': ref('RateLimitReset'),
              }
            : {}),
          // A 503 problem is a store out of reach (/readyz's 503 is its report, not a problem).
          ...(status === '429' || (status === '503' && PROBLEM_CONTENT_TYPE in (response.content ?? {}))
            ? { 'retry-after': ref('RetryAfter') }
            : {}),
        };
      }
    }
  }
  openapiObject.components = { ...openapiObject.components, headers: RESPONSE_HEADERS };
  return openapiObject;
}

/**
 * Error responses are served as `application/problem+json`, whatever the route otherwise
 * produces (`/metrics` answers text/plain); say so in the document.
 */
function problemContentType(status: string, response: OpenApiResponse): void {
  if (Number(status) < 400) return;
  for (const media of Object.values(response.content ?? {})) {
    const { schema } = media as { schema?: { description?: string } };
    if (schema?.description?.startsWith('RFC 9457')) {
      response.content = { [PROBLEM_CONTENT_TYPE]: media };
      return;
    }
  }
}

/**
 * `schema`, shown in the document with `example` (checked against the schema's output type by
 * the compiler, so the example cannot drift from what the route answers).
 */
export function withExample<T extends z.ZodType>(schema: T, example: z.output<T>): T {
  return schema.meta({ example }) as T;
}
