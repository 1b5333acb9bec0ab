import { gzipSync } from 'node:zlib';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness } from './harness';

interface BadRequest {
  name: string;
  request: InjectOptions;
  status: number;
  code?: string;
  /** A field the problem must name. */
  field?: string;
}

const json = { 'content-type': 'application/json' };
const thing = (data: unknown, extra: Record<string, unknown> = {}) => ({ type: 'test.thing', data, ...extra });
const post = (url: string, payload: unknown, headers: Record<string, string> = {}): InjectOptions => ({
  method: 'POST',
  url,
  payload: payload as InjectOptions['payload'],
  headers: { ...json, ...headers },
});
const raw = (url: string, body: string, headers: Record<string, string> = json): InjectOptions => ({
  method: 'POST',
  url,
  body,
  headers,
});
const admin = (method: InjectOptions['method'], url: string, payload?: unknown, headers = {}): InjectOptions => ({
  method,
  url,
  headers: { ...adminHeaders, ...(payload === undefined ? {} : json), ...headers },
  ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
});

const CASES: BadRequest[] = [
  // ingestion: body shape
  {
    name: 'malformed JSON',
    request: raw('/v1/events', '{"type": "test.thing", "data": '),
    status: 400,
    code: 'MALFORMED_JSON',
  },
  { name: 'empty JSON body', request: raw('/v1/events', ''), status: 400, code: 'MALFORMED_JSON' },
  {
    name: 'a body that is not UTF-8',
    request: {
      method: 'POST',
      url: '/v1/events',
      headers: json,
      // {"type":"test.thing","data":{"name":"<0xFF 0xFE>"}}
      body: Buffer.concat([
        Buffer.from('{"type":"test.thing","data":{"name":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}}'),
      ]),
    },
    status: 400,
    code: 'MALFORMED_JSON',
    field: 'body',
  },
  {
    name: 'a JSON body in another charset',
    request: raw('/v1/events', JSON.stringify(thing({ name: 'a' })), {
      'content-type': 'application/json; charset=utf-16',
    }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'text/plain body',
    request: raw('/v1/events', 'type=test.thing', { 'content-type': 'text/plain' }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'JSON text sent as text/plain',
    request: raw('/v1/events', JSON.stringify(thing({ name: 'a' })), { 'content-type': 'text/plain; charset=utf-8' }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'a body without a content-type',
    request: raw('/v1/events', JSON.stringify(thing({ name: 'a' })), {}),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'text/plain batch body',
    request: raw('/v1/events/batch', JSON.stringify({ events: [thing({ name: 'a' })] }), {
      'content-type': 'text/plain',
    }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  { name: 'JSON array body', request: raw('/v1/events', '[]'), status: 400, code: 'VALIDATION_ERROR' },
  { name: 'JSON string body', request: raw('/v1/events', '"order.created"'), status: 400 },
  { name: 'JSON null body', request: raw('/v1/events', 'null'), status: 400 },
  { name: 'missing type', request: post('/v1/events', { data: { name: 'a' } }), status: 400, field: 'type' },
  { name: 'missing data', request: post('/v1/events', { type: 'test.thing' }), status: 400, field: 'data' },
  { name: 'type is a number', request: post('/v1/events', { type: 42, data: {} }), status: 400, field: 'type' },
  {
    name: 'type not dotted',
    request: post('/v1/events', thing({ name: 'a' }, { type: 'Thing' })),
    status: 400,
    field: 'type',
  },
  {
    name: 'unknown event type',
    request: post('/v1/events', { type: 'nope.never', data: {} }),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'type',
  },
  { name: 'data is an array', request: post('/v1/events', thing([1, 2])), status: 400, field: 'data' },
  { name: 'data is a string', request: post('/v1/events', thing('x')), status: 400, field: 'data' },
  { name: 'data misses a required field', request: post('/v1/events', thing({})), status: 400, field: 'data.name' },
  {
    name: 'data field of wrong type',
    request: post('/v1/events', thing({ name: 7 })),
    status: 400,
    field: 'data.name',
  },
  { name: 'data with an unknown field', request: post('/v1/events', thing({ name: 'a', colour: 'red' })), status: 400 },
  {
    name: 'extra top-level field',
    request: post('/v1/events', thing({ name: 'a' }, { priority: 1 })),
    status: 400,
    field: 'priority',
  },
  {
    name: 'extra metadata field',
    request: post('/v1/events', thing({ name: 'a' }, { metadata: { correlationId: 'c', user: 'u' } })),
    status: 400,
    field: 'metadata.user',
  },
  {
    name: 'bad traceparent',
    request: post('/v1/events', thing({ name: 'a' }, { metadata: { traceparent: 'not-a-trace' } })),
    status: 400,
    field: 'metadata.traceparent',
  },
  { name: 'schemaVersion 0', request: post('/v1/events', thing({ name: 'a' }, { schemaVersion: 0 })), status: 400 },
  {
    name: 'unknown schemaVersion',
    request: post('/v1/events', thing({ name: 'a' }, { schemaVersion: 99 })),
    status: 400,
    field: 'schemaVersion',
  },
  {
    name: 'schemaVersion as string',
    request: post('/v1/events', thing({ name: 'a' }, { schemaVersion: '1' })),
    status: 400,
  },
  {
    name: 'negative aggregateVersion',
    request: post('/v1/events', thing({ name: 'a' }, { aggregateVersion: -1 })),
    status: 400,
  },
  {
    name: '__proto__ at top level',
    request: raw('/v1/events', '{"type":"test.thing","data":{"name":"a"},"__proto__":{"admin":true}}'),
    status: 400,
    code: 'FORBIDDEN_KEY',
  },
  {
    name: '__proto__ inside data',
    request: raw('/v1/events', '{"type":"test.thing","data":{"name":"a","__proto__":{"polluted":1}}}'),
    status: 400,
    code: 'FORBIDDEN_KEY',
  },
  {
    name: 'constructor.prototype inside data',
    request: raw('/v1/events', '{"type":"test.thing","data":{"name":"a","constructor":{"prototype":{"x":1}}}}'),
    status: 400,
    code: 'FORBIDDEN_KEY',
  },
  {
    name: '__proto__ spelled with unicode escapes',
    request: raw('/v1/events', '{"type":"test.thing","data":{"name":"a","\\u005f_proto\\u005f_":{"polluted":1}}}'),
    status: 400,
    code: 'FORBIDDEN_KEY',
  },
  {
    name: 'bare constructor key',
    request: raw('/v1/events', '{"type":"test.thing","data":{"name":"a","constructor":"x"}}'),
    status: 400,
    code: 'FORBIDDEN_KEY',
  },
  {
    name: 'body over 1 MiB',
    request: post('/v1/events', thing({ name: 'a', blob: 'x'.repeat(1024 * 1024 + 10) })),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'XML body',
    request: raw('/v1/events', '<event type="test.thing"/>', { 'content-type': 'application/xml' }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'Idempotency-Key too long',
    request: post('/v1/events', thing({ name: 'a' }), { 'idempotency-key': 'k'.repeat(300) }),
    status: 400,
    field: 'headers.idempotency-key',
  },
  // ingestion: batch
  { name: 'empty batch', request: post('/v1/events/batch', { events: [] }), status: 400, field: 'events' },
  {
    name: 'batch over 500 events',
    request: post('/v1/events/batch', { events: Array.from({ length: 501 }, () => thing({ name: 'a' })) }),
    status: 400,
    field: 'events',
  },
  {
    name: 'batch events not an array',
    request: post('/v1/events/batch', { events: thing({ name: 'a' }) }),
    status: 400,
  },
  {
    name: 'batch with extra key',
    request: post('/v1/events/batch', { events: [thing({ name: 'a' })], all: true }),
    status: 400,
  },
  {
    name: 'batch with one bad event among good ones',
    request: post('/v1/events/batch', { events: [thing({ name: 'a' }), thing({ name: 'b' }), thing({})] }),
    status: 400,
    field: 'events.2.data.name',
  },
  {
    name: 'batch with an unknown type',
    request: post('/v1/events/batch', { events: [thing({ name: 'a' }), { type: 'nope.never', data: {} }] }),
    status: 400,
    field: 'events.1.type',
  },
  // admin: list filters and pagination
  { name: 'negative limit', request: admin('GET', '/admin/dlq?limit=-1'), status: 400, field: 'query.limit' },
  { name: 'zero limit', request: admin('GET', '/admin/dlq?limit=0'), status: 400, field: 'query.limit' },
  {
    name: 'huge limit',
    request: admin('GET', '/admin/dlq?limit=99999999999999999999'),
    status: 400,
    field: 'query.limit',
  },
  { name: 'limit not a number', request: admin('GET', '/admin/dlq?limit=ten'), status: 400, field: 'query.limit' },
  { name: 'fractional limit', request: admin('GET', '/admin/dlq?limit=1.5'), status: 400, field: 'query.limit' },
  { name: 'hexadecimal limit', request: admin('GET', '/admin/dlq?limit=0x10'), status: 400, field: 'query.limit' },
  { name: 'limit with an exponent', request: admin('GET', '/admin/dlq?limit=1e1'), status: 400, field: 'query.limit' },
  { name: 'limit with a plus sign', request: admin('GET', '/admin/dlq?limit=%2B5'), status: 400, field: 'query.limit' },
  { name: 'limit with a space', request: admin('GET', '/admin/dlq?limit=%205'), status: 400, field: 'query.limit' },
  {
    name: 'audit limit in hexadecimal',
    request: admin('GET', '/admin/audit?limit=0x10'),
    status: 400,
    field: 'query.limit',
  },
  {
    name: 'empty retry offset',
    request: admin('GET', '/admin/retries/payment?offset='),
    status: 400,
    field: 'query.offset',
  },
  {
    name: 'retry limit with an exponent',
    request: admin('GET', '/admin/retries/payment?limit=1e2'),
    status: 400,
    field: 'query.limit',
  },
  {
    name: 'cursor not a stream id',
    request: admin('GET', '/admin/dlq?cursor=abc'),
    status: 400,
    field: 'query.cursor',
  },
  {
    name: 'SQL in cursor',
    request: admin('GET', `/admin/dlq?cursor=${encodeURIComponent("0-0'; DROP TABLE events;--")}`),
    status: 400,
    field: 'query.cursor',
  },
  { name: 'unknown reason', request: admin('GET', '/admin/dlq?reason=bored'), status: 400, field: 'query.reason' },
  { name: 'from not ISO', request: admin('GET', '/admin/dlq?from=yesterday'), status: 400, field: 'query.from' },
  { name: 'to not ISO', request: admin('GET', '/admin/dlq?to=2026-13-45'), status: 400, field: 'query.to' },
  {
    name: 'SQL in group filter',
    request: admin('GET', `/admin/dlq?group=${encodeURIComponent("' OR 1=1 --")}`),
    status: 400,
    field: 'query.group',
  },
  { name: 'Redis glob in type filter', request: admin('GET', '/admin/dlq?type=*'), status: 400, field: 'query.type' },
  {
    name: 'Redis command in group filter',
    request: admin('GET', `/admin/dlq?group=${encodeURIComponent('x\r\nFLUSHALL\r\n')}`),
    status: 400,
    field: 'query.group',
  },
  {
    name: 'repeated group filter',
    request: admin('GET', '/admin/dlq?group=a&group=b'),
    status: 400,
    field: 'query.group',
  },
  { name: 'unknown query parameter', request: admin('GET', '/admin/dlq?sort=desc'), status: 400, field: 'query.sort' },
  {
    name: 'cursor part past the 64-bit range',
    request: admin('GET', '/admin/dlq?cursor=18446744073709551616-0'),
    status: 400,
    field: 'query.cursor',
  },
  { name: 'cursor 0-0', request: admin('GET', '/admin/dlq?cursor=0-0'), status: 400, field: 'query.cursor' },
  {
    name: 'from before 1970',
    request: admin('GET', '/admin/dlq?from=1900-01-01T00:00:00Z'),
    status: 400,
    field: 'query.from',
  },
  {
    name: 'to before 1970',
    request: admin('GET', '/admin/dlq?to=0000-01-01T00:00:00Z'),
    status: 400,
    field: 'query.to',
  },
  {
    name: 'from after to',
    request: admin('GET', '/admin/dlq?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z'),
    status: 400,
    field: 'query.from',
  },

  {
    name: 'audit cursor not an id',
    request: admin('GET', '/admin/audit?cursor=%2B'),
    status: 400,
    field: 'query.cursor',
  },
  { name: 'audit cursor 0-0', request: admin('GET', '/admin/audit?cursor=0-0'), status: 400, field: 'query.cursor' },
  { name: 'audit limit too big', request: admin('GET', '/admin/audit?limit=1001'), status: 400, field: 'query.limit' },
  // admin: single entries
  { name: 'get with a bad id', request: admin('GET', '/admin/dlq/not-an-id'), status: 400, field: 'params.id' },
  {
    name: 'get with an id over the router limit (200 characters)',
    request: admin('GET', `/admin/dlq/${'1'.repeat(300)}-0`),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'params.id',
  },
  {
    name: 'a group name over the router limit (200 characters)',
    request: admin('POST', `/admin/retries/${'g'.repeat(300)}/run-now`, {}),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'params.group',
  },
  {
    name: 'an id that is not valid percent-encoding',
    request: admin('GET', '/admin/dlq/1-%zz'),
    status: 400,
    code: 'MALFORMED_URL',
    field: 'params.id',
  },
  {
    name: 'a job id that is not UTF-8 when decoded',
    request: admin('POST', '/admin/retries/payment/%FF/run-now', {}),
    status: 400,
    code: 'MALFORMED_URL',
    field: 'params.jobId',
  },
  {
    name: 'get an id past the 64-bit range',
    request: admin('GET', '/admin/dlq/99999999999999999999-0'),
    status: 400,
    field: 'params.id',
  },
  { name: 'get an id that is not there', request: admin('GET', '/admin/dlq/1-0'), status: 404, code: 'NOT_FOUND' },
  { name: 'replay with a bad id', request: admin('POST', '/admin/dlq/x-1/replay'), status: 400, field: 'params.id' },
  {
    name: 'replay an id that is not there',
    request: admin('POST', '/admin/dlq/1-0/replay'),
    status: 404,
    code: 'NOT_FOUND',
  },
  { name: 'discard with a bad id', request: admin('DELETE', '/admin/dlq/%2A'), status: 400, field: 'params.id' },
  {
    name: 'replay an id past the 64-bit range',
    request: admin('POST', '/admin/dlq/1-18446744073709551616/replay'),
    status: 400,
    field: 'params.id',
  },
  {
    name: 'discard an id past the 64-bit range',
    request: admin('DELETE', '/admin/dlq/99999999999999999999-99999999999999999999'),
    status: 400,
    field: 'params.id',
  },
  {
    name: 'discard an id that is not there',
    request: admin('DELETE', '/admin/dlq/1-0'),
    status: 404,
    code: 'NOT_FOUND',
  },
  {
    name: 'bad X-Actor',
    request: admin('DELETE', '/admin/dlq/1-0', undefined, { 'x-actor': 'eve; rm -rf /' }),
    status: 400,
    field: 'headers.x-actor',
  },
  // admin: bulk replay
  {
    name: 'bulk replay with neither ids nor filter',
    request: admin('POST', '/admin/dlq/replay', {}),
    status: 400,
    field: 'filter',
  },
  {
    name: 'bulk replay with bad ids',
    request: admin('POST', '/admin/dlq/replay', { ids: ['x'] }),
    status: 400,
    field: 'ids.0',
  },
  {
    name: 'bulk replay with an id past the 64-bit range',
    request: admin('POST', '/admin/dlq/replay', { ids: ['1-0', '99999999999999999999-0'], dryRun: true }),
    status: 400,
    field: 'ids.1',
  },
  {
    name: 'bulk replay with a filter before 1970',
    request: admin('POST', '/admin/dlq/replay', { filter: { from: '1969-12-31T23:59:59Z' }, dryRun: true }),
    status: 400,
    field: 'filter.from',
  },
  {
    name: 'bulk replay with from after to',
    request: admin('POST', '/admin/dlq/replay', {
      filter: { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
    }),
    status: 400,
    field: 'filter.from',
  },
  {
    name: 'bulk replay with empty ids',
    request: admin('POST', '/admin/dlq/replay', { ids: [] }),
    status: 400,
    field: 'ids',
  },
  {
    name: 'bulk replay with limit 0',
    request: admin('POST', '/admin/dlq/replay', { filter: {}, limit: 0 }),
    status: 400,
    field: 'limit',
  },
  {
    name: 'bulk replay with huge limit',
    request: admin('POST', '/admin/dlq/replay', { filter: {}, limit: 1e9 }),
    status: 400,
    field: 'limit',
  },
  {
    name: 'bulk replay with dryRun as string',
    request: admin('POST', '/admin/dlq/replay', { filter: {}, dryRun: 'yes' }),
    status: 400,
    field: 'dryRun',
  },
  {
    name: 'bulk replay with unknown filter key',
    request: admin('POST', '/admin/dlq/replay', { filter: { status: 'dead' } }),
    status: 400,
    field: 'filter.status',
  },
  {
    name: 'bulk replay with unknown reason',
    request: admin('POST', '/admin/dlq/replay', { filter: { reason: 'whatever' }, dryRun: true }),
    status: 400,
    field: 'filter.reason',
  },
  {
    name: 'text/plain bulk replay body',
    request: admin('POST', '/admin/dlq/replay', undefined, { 'content-type': 'text/plain' }),
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
    field: 'headers.content-type',
  },
  {
    name: 'bulk discard without ids or a filter',
    request: admin('POST', '/admin/dlq/discard', { dryRun: true }),
    status: 400,
    field: 'filter',
  },
  {
    name: 'bulk discard with an id that is not a stream id',
    request: admin('POST', '/admin/dlq/discard', { ids: ['everything'] }),
    status: 400,
    field: 'ids.0',
  },
  // routes that take no query refuse any parameter, and routes that take no body any field
  ...(
    [
      ['GET', '/healthz'],
      ['GET', '/readyz'],
      ['GET', '/metrics'],
      ['GET', '/admin/dlq/1-0'],
      ['DELETE', '/admin/dlq/1-0'],
      ['POST', '/admin/dlq/1-0/replay'],
      // Routes with a body are sent a valid one: the body is checked before the query.
      ['POST', '/admin/dlq/replay', { filter: {}, dryRun: true }],
      ['POST', '/admin/dlq/discard', { filter: {}, dryRun: true }],
      ['GET', '/admin/groups'],
      ['POST', '/admin/groups/payment/pause'],
      ['POST', '/admin/groups/payment/resume'],
      ['POST', '/admin/retries/payment/run-now', {}],
      ['POST', '/admin/retries/payment/job-1/run-now'],
      ['POST', '/v1/events', thing({ name: 'a' })],
    ] as const
  ).map(([method, url, payload]) => ({
    name: `${method} ${url} with a query parameter it does not take`,
    request: admin(method, `${url}?x=1`, payload),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'query.x',
  })),
  ...(
    [
      ['DELETE', '/admin/dlq/1-0'],
      ['POST', '/admin/dlq/1-0/replay'],
      ['POST', '/admin/groups/payment/pause'],
      ['POST', '/admin/groups/payment/resume'],
      ['POST', '/admin/retries/payment/job-1/run-now'],
    ] as const
  ).map(([method, url]) => ({
    name: `${method} ${url} with a body field it does not take`,
    request: admin(method, url, { x: 1 }),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'x',
  })),
  {
    name: 'a replay with a body that is not an object',
    request: admin('POST', '/admin/dlq/1-0/replay', [1]),
    status: 400,
    code: 'VALIDATION_ERROR',
    field: 'body',
  },
  // routing
  { name: 'unknown route', request: { method: 'GET', url: '/v2/events' }, status: 404, code: 'ROUTE_NOT_FOUND' },
  {
    name: 'wrong method',
    request: { method: 'PUT', url: '/v1/events', payload: {} },
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    name: 'wrong method on a path with a parameter',
    request: admin('PUT', '/admin/dlq/1-0/replay'),
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  { name: 'unknown admin route', request: admin('GET', '/admin/nothing'), status: 404 },
];

describe('bad requests', () => {
  let h: Harness;
  let keysBefore: string[];

  beforeAll(async () => {
    h = await createHarness();
    keysBefore = await h.keyList();
  });
  afterAll(async () => {
    await h.close();
  });

  it('has a table of at least 40 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(CASES)('$name -> $status problem', async ({ request, status, code, field }) => {
    const res = await h.app.inject(request);
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body).toMatchObject({ status, type: expect.stringMatching(/^\/problems\//), title: expect.any(String) });
    expect(body.code).toEqual(code ?? expect.any(String));
    expect(body.detail).toEqual(expect.any(String));
    expect(Array.isArray(body.errors)).toBe(true);
    if (field) expect(body.errors.map((e: { field: string }) => e.field)).toContain(field);
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it.each([
    ['empty', '/admin/dlq?limit=', 'query.limit', 'must not be empty: give a whole number'],
    ['hexadecimal', '/admin/dlq?limit=0x10', 'query.limit', 'must be a whole number in decimal digits, e.g. 50'],
    ['an exponent', '/admin/dlq?limit=1e1', 'query.limit', 'must be a whole number in decimal digits, e.g. 50'],
    ['a fraction', '/admin/dlq?limit=1.5', 'query.limit', 'must be a whole number in decimal digits, e.g. 50'],
    ['too big', '/admin/dlq?limit=99999999999999999999', 'query.limit', 'Too big: expected number to be <=1000'],
    ['an empty offset', '/admin/retries/payment?offset=', 'query.offset', 'must not be empty: give a whole number'],
    ['not a stream id', '/admin/dlq?cursor=abc', 'query.cursor', 'must be a stream entry id like 1732460000000-0'],
  ])('a query value that is %s is named once, with that mistake only', async (_what, url, field, message) => {
    const res = await h.app.inject(admin('GET', url));
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ field, message }]);
    expect(res.json().detail).toBe(`${field}: ${message}`);
  });

  it('a number far past its maximum in a body is one "too big" naming the maximum', async () => {
    for (const [url, body, field, max] of [
      ['/admin/dlq/replay', { filter: {}, limit: 1e300 }, 'limit', 10_000],
      ['/admin/dlq/discard', { filter: {}, limit: 1e300, dryRun: true }, 'limit', 10_000],
      ['/v1/events', thing({ name: 'a' }, { schemaVersion: 1e300 }), 'schemaVersion', 1000],
    ] as const) {
      const res = await h.app.inject(admin('POST', url, body));
      expect(res.statusCode, url).toBe(400);
      expect(res.json().errors, url).toEqual([{ field, message: `Too big: expected number to be <=${max}` }]);
    }
  });

  it('a field wrong in two ways is named once, with the first thing wrong', async () => {
    // Longer than 200 characters and not a dotted type: one message, the length.
    const res = await h.app.inject(post('/v1/events', thing({ name: 'a' }, { type: 'X'.repeat(201) })));
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([
      { field: 'type', message: 'Too big: expected string to have <=200 characters' },
    ]);
    expect(res.json().detail).toBe('type: Too big: expected string to have <=200 characters');
  });

  it('health probes refuse a query parameter, naming it, and answer without one as before', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      const refused = await h.app.inject({ method: 'GET', url: `${url}?probe=1` });
      expect(refused.statusCode, url).toBe(400);
      expect(refused.json().errors, url).toEqual([{ field: 'query.probe', message: 'unknown field' }]);
      expect((await h.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });

  it('a route without a body takes none, or {}, and refuses a field, naming it', async () => {
    for (const payload of [{ force: true }, undefined, {}]) {
      const pause = await h.app.inject(admin('POST', '/admin/groups/nobody/pause', payload));
      const replay = await h.app.inject(admin('POST', '/admin/dlq/1-0/replay', payload));
      if (payload?.force) {
        for (const res of [pause, replay]) {
          expect(res.statusCode).toBe(400);
          expect(res.json().errors).toEqual([{ field: 'force', message: 'unknown field' }]);
        }
        continue;
      }
      // The route itself answers (unknown group, no such entry): the body passed validation.
      expect(pause.statusCode).toBe(404);
      expect(pause.json().errors).toEqual([{ field: 'params.group', message: 'unknown consumer group' }]);
      expect(replay.statusCode).toBe(404);
    }
  });

  it('a time that is not ISO 8601 is named once, with that mistake only', async () => {
    const res = await h.app.inject(admin('GET', '/admin/dlq?from=yesterday'));
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ field: 'query.from', message: 'Invalid ISO datetime' }]);
  });

  it.each([
    ['unknown top-level keys', '/v1/events', (keys: string) => `{"type":"test.thing","data":{"name":"a"}${keys}}`],
    ['unknown keys in data', '/v1/events', (keys: string) => `{"type":"test.thing","data":{"name":"a"${keys}}}`],
    [
      'unknown keys in a batch event',
      '/v1/events/batch',
      (keys: string) => `{"events":[{"type":"test.thing","data":{"name":"a"}${keys}}]}`,
    ],
  ])(
    'a body with 60,000 %s gets a problem of bounded size: 100 errors, 20 in the detail, the rest counted',
    async (_what, url, bodyWith) => {
      const keys = Array.from({ length: 60_000 }, (_, i) => `,"k${i}":1`).join('');
      const res = await h.app.inject(raw(url, bodyWith(keys)));
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.length).toBeLessThan(16_000);
      const problem = res.json();
      expect(problem.code).toBe('VALIDATION_ERROR');
      expect(problem.errors).toHaveLength(100);
      expect(problem.moreErrors).toBe(59_900);
      expect(problem.errors[0].field).toMatch(/k0$/);
      expect(problem.errors[0].message).toBe('unknown field');
      expect(problem.detail.split('; ')).toHaveLength(21);
      expect(problem.detail).toMatch(/; and 59980 more$/);
    },
  );

  it('a problem with few errors lists them all and has no moreErrors', async () => {
    const res = await h.app.inject(raw('/v1/events', '{"type":"test.thing","data":{"name":"a"},"a":1,"b":2}'));
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([
      { field: 'a', message: 'unknown field' },
      { field: 'b', message: 'unknown field' },
    ]);
    expect(res.json()).not.toHaveProperty('moreErrors');
    expect(res.json().detail).toBe('a: unknown field; b: unknown field');
  });

  it.each([
    ['gzip, with a gzipped body', 'gzip', gzipSync(JSON.stringify(thing({ name: 'a' })))],
    ['br, with a plain body', 'br', Buffer.from(JSON.stringify(thing({ name: 'a' })))],
    ['a list of codings', 'identity, gzip', Buffer.from(JSON.stringify(thing({ name: 'a' })))],
  ])('a body in content-encoding %s is 415 naming headers.content-encoding', async (_what, encoding, body) => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { ...json, 'content-encoding': encoding },
      body,
    });
    expect(res.statusCode).toBe(415);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    // RFC 9110 15.5.16: say which codings are accepted.
    expect(res.headers['accept-encoding']).toBe('identity');
    expect(res.json()).toMatchObject({
      code: 'UNSUPPORTED_MEDIA_TYPE',
      errors: [{ field: 'headers.content-encoding', message: expect.stringContaining('send the body unencoded') }],
    });
  });

  it('wrote nothing to Redis for any of them', async () => {
    expect(await h.keyList()).toEqual(keysBefore);
  });

  // After the check above: this one writes.
  it('takes a body whose content-encoding is identity, as one without', async () => {
    for (const encoding of ['identity', 'Identity']) {
      const res = await h.app.inject(post('/v1/events', thing({ name: 'a' }), { 'content-encoding': encoding }));
      expect(res.statusCode, encoding).toBe(202);
    }
  });
});
