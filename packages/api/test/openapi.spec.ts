import SwaggerParser from '@apidevtools/swagger-parser';
import { EventCatalog } from '@streamfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from './harness';

/** Every route the API serves; the doc must describe each, and describe nothing else. */
const ROUTES = [
  ['get', '/healthz'],
  ['get', '/readyz'],
  ['get', '/metrics'],
  ['post', '/v1/events'],
  ['post', '/v1/events/batch'],
  ['get', '/admin/dlq'],
  ['get', '/admin/dlq/{id}'],
  ['post', '/admin/dlq/{id}/replay'],
  ['delete', '/admin/dlq/{id}'],
  ['post', '/admin/dlq/replay'],
  ['post', '/admin/dlq/discard'],
  ['get', '/admin/audit'],
  ['get', '/admin/groups'],
  ['post', '/admin/groups/{group}/pause'],
  ['post', '/admin/groups/{group}/resume'],
  ['get', '/admin/retries'],
  ['get', '/admin/retries/{group}'],
  ['post', '/admin/retries/{group}/run-now'],
  ['post', '/admin/retries/{group}/{jobId}/run-now'],
  ['post', '/admin/retries/{group}/dead-letter'],
  ['post', '/admin/retries/{group}/{jobId}/dead-letter'],
] as const;

// A fixed catalog, so the snapshot does not move when the domain adds event types.
function docCatalog(): EventCatalog {
  return new EventCatalog().register({
    type: 'test.thing',
    schemaVersion: 1,
    stream: 'things',
    schema: z.strictObject({ name: z.string() }),
    example: { name: 'widget' },
  });
}

interface OpenApiDoc {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        tags?: string[];
        summary?: string;
        description?: string;
        security?: unknown[];
        requestBody?: unknown;
        responses: Record<string, OpenApiResponse>;
      }
    >
  >;
  components: { securitySchemes: Record<string, unknown>; headers?: Record<string, unknown> };
}

interface OpenApiResponse {
  content?: Record<string, { schema?: { example?: unknown } }>;
  headers?: Record<string, unknown>;
}

const operations = (doc: OpenApiDoc) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ where: `${method} ${path}`, path, op })),
  );

describe('OpenAPI document', () => {
  let h: Harness;
  let doc: OpenApiDoc;

  beforeAll(async () => {
    h = await createHarness({ catalog: docCatalog() });
    const res = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(async () => {
    await h.close();
  });

  it('describes every route, and only those', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map(([m, p]) => `${m} ${p}`).sort());
    for (const [method, path] of ROUTES) {
      const url = path.replace(/\{(\w+)\}/g, ':$1');
      expect(h.app.hasRoute({ method: method.toUpperCase() as 'GET', url }), `${method} ${url}`).toBe(true);
    }
  });

  it('tags every operation and puts admin operations behind the bearer scheme', () => {
    expect(doc.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const op of Object.values(ops)) {
        expect(op.tags?.length, path).toBeGreaterThan(0);
        if (path.startsWith('/admin')) {
          expect(op.security, path).toEqual([{ adminToken: [] }]);
          expect(Object.keys(op.responses), path).toContain('401');
        }
      }
    }
  });

  it('describes every operation, gives its bodies and 2xx answers examples and documents the batch maximum', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        expect(op.summary, where).toEqual(expect.any(String));
        expect(op.description, where).toEqual(expect.any(String));
        if (op.requestBody) expect(JSON.stringify(op.requestBody), where).toContain('"example"');
        for (const [status, response] of Object.entries(op.responses)) {
          const types = Object.keys(response.content ?? {});
          if (Number(status) >= 400 && path !== '/readyz')
            expect(types, `${where} ${status}`).toEqual(['application/problem+json']);
          if (status.startsWith('2')) {
            expect(types.length, `${where} ${status}`).toBeGreaterThan(0);
            for (const type of types) {
              expect(response.content?.[type]?.schema?.example, `${where} ${status} ${type} example`).toBeDefined();
            }
          }
        }
      }
    }
    const batch = JSON.stringify(doc.paths['/v1/events/batch']?.post?.requestBody);
    expect(batch).toContain('"maxItems":500');
  });

  it('documents 413 and 415 on every operation that takes a JSON body', () => {
    const withBody = operations(doc).filter(({ op }) => op.requestBody);
    expect(withBody.map((o) => o.where).sort()).toEqual([
      'post /admin/dlq/discard',
      'post /admin/dlq/replay',
      'post /admin/retries/{group}/dead-letter',
      'post /admin/retries/{group}/run-now',
      'post /v1/events',
      'post /v1/events/batch',
    ]);
    for (const { where, op } of withBody) {
      for (const status of ['413', '415']) {
        expect(Object.keys(op.responses[status]?.content ?? {}), `${where} ${status}`).toEqual([
          'application/problem+json',
        ]);
      }
    }
  });

  it('documents x-request-id on every response, and the rate-limit headers on the limited operations', () => {
    expect(Object.keys(doc.components.headers ?? {}).sort()).toEqual([
      'RateLimitLimit',
      'RateLimitRemaining',
      'RateLimitReset',
      'RequestId',
      'RetryAfter',
    ]);
    const ref = (name: string) => ({ $ref: `#/components/headers/${name}` });
    for (const { where, path, op } of operations(doc)) {
      // Ingestion and admin routes are rate limited; health probes and metrics are not.
      const limited = path.startsWith('/admin') || path.startsWith('/v1/events');
      expect(Object.keys(op.responses).includes('429'), where).toBe(limited);
      for (const [status, response] of Object.entries(op.responses)) {
        const headers = response.headers ?? {};
        expect(headers['x-request-id'], `${where} ${status}`).toEqual(ref('RequestId'));
        for (const [name, component] of [
          ['x-ratelimit-limit', 'RateLimitLimit'],
          ['x-ratelimit-remaining', 'RateLimitRemaining'],
          ['x-ratelimit-reset', 'RateLimitReset'],
        ] as const) {
          expect(headers[name], `${where} ${status} ${name}`).toEqual(limited ? ref(component) : undefined);
        }
        // 429 and the 503 of a store out of reach say when to retry; /readyz's 503 is its report.
        const retries = status === '429' || (status === '503' && path !== '/readyz');
        expect(headers['retry-after'], `${where} ${status} retry-after`).toEqual(
          retries ? ref('RetryAfter') : undefined,
        );
      }
    }
  });

  it('documents the 503 problem (Redis or Postgres unavailable) on every operation that uses Redis', () => {
    for (const { where, path, op } of operations(doc)) {
      // Liveness and the API's own metrics never touch Redis; /readyz's 503 is its readiness report.
      if (path === '/healthz' || path === '/metrics' || path === '/readyz') {
        if (path !== '/readyz') expect(op.responses['503'], where).toBeUndefined();
        continue;
      }
      const unavailable = op.responses['503'];
      expect(Object.keys(unavailable?.content ?? {}), where).toEqual(['application/problem+json']);
      const schema = unavailable?.content?.['application/problem+json']?.schema as { description?: string };
      expect(schema.description, where).toMatch(/REDIS_UNAVAILABLE.*POSTGRES_UNAVAILABLE/);
    }
  });

  it('passes swagger-parser validation', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('matches the stored snapshot', async () => {
    await expect(`${JSON.stringify(doc, null, 2)}\n`).toMatchFileSnapshot('./__snapshots__/openapi.snapshot.json');
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/docs' });
    const page =
      res.statusCode === 302 ? await h.app.inject({ method: 'GET', url: String(res.headers.location) }) : res;
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('swagger');
  });
});
