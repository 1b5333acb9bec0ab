import { EventCatalog, fieldsToRecord } from '@streamfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from './harness';

type Entry = [string, string[]];

describe('POST /v1/events', () => {
  let h: Harness;
  const entries = async (stream: string) => (await h.redis.xrange(h.keys.stream(stream), '-', '+')) as Entry[];

  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('appends one event to the stream of its type and answers 202 with its ids', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'x-request-id': 'req-abc-123' },
      payload: {
        type: 'test.thing',
        aggregateId: 'thing-1',
        aggregateVersion: 3,
        data: { name: 'widget' },
        metadata: { correlationId: 'corr-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
      },
    });
    expect(res.statusCode).toBe(202);
    expect(res.headers['x-request-id']).toBe('req-abc-123');
    const body = res.json();
    expect(body).toEqual({
      eventId: expect.any(String),
      entryId: expect.stringMatching(/^\d+-\d+$/),
      stream: 'things',
    });
    const [entry] = await entries('things');
    expect(entry?.[0]).toBe(body.entryId);
    expect(fieldsToRecord(entry?.[1] ?? [])).toMatchObject({
      id: body.eventId,
      type: 'test.thing',
      schemaVersion: '1',
      aggregateId: 'thing-1',
      aggregateVersion: '3',
      data: JSON.stringify({ name: 'widget' }),
      correlationId: 'corr-1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    });
  });

  it("carries the request's traceparent header onto events that bring none of their own", async () => {
    const header = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const own = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const post = (metadata?: Record<string, string>, traceparent = header) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { traceparent },
        payload: { type: 'test.thing', data: { name: 'traced' }, ...(metadata ? { metadata } : {}) },
      });
    const traceOf = async (eventId: string) => {
      const entry = (await entries('things')).find(([, f]) => fieldsToRecord(f).id === eventId);
      return fieldsToRecord(entry?.[1] ?? []).traceparent;
    };
    const fromHeader = await post();
    expect(fromHeader.statusCode).toBe(202);
    expect(await traceOf(fromHeader.json().eventId)).toBe(header);
    const withCorrelation = await post({ correlationId: 'c-9' });
    expect(await traceOf(withCorrelation.json().eventId)).toBe(header);
    const ownWins = await post({ traceparent: own });
    expect(await traceOf(ownWins.json().eventId)).toBe(own);
    const invalidIgnored = await post(undefined, 'not-a-traceparent');
    expect(invalidIgnored.statusCode).toBe(202);
    expect(await traceOf(invalidIgnored.json().eventId)).toBeUndefined();
  });

  it('refuses ids with a lone surrogate, which would be stored as another id (U+FFFD)', async () => {
    const before = (await entries('things')).length;
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': 'application/json' },
      payload:
        '{"type":"test.thing","aggregateId":"order-\\ud800","data":{"name":"w"},"metadata":{"correlationId":"c-\\udc00"}}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json().errors.map((e: { field: string }) => e.field)).toEqual(
      expect.arrayContaining(['aggregateId', 'metadata.correlationId']),
    );
    expect(await entries('things')).toHaveLength(before);
  });

  it("applies the catalog's defaults to data before writing it", async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'test.note', data: { text: 'hi' } },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json().stream).toBe('notes');
    const record = fieldsToRecord((await entries('notes')).at(-1)?.[1] ?? []);
    expect(JSON.parse(record.data ?? '{}')).toEqual({ text: 'hi', lang: 'en' });
  });

  it('refuses a type a service publishes through its outbox: posting payment.succeeded must not pay an order', async () => {
    const before = await h.redis.xlen(h.keys.stream('orders'));
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: {
        type: 'payment.succeeded',
        aggregateId: 'o-1',
        data: { orderId: 'o-1', paymentId: 'ch_forged', amount: 900, currency: 'EUR' },
      },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const body = res.json();
    expect(body.errors).toEqual([
      { field: 'type', message: expect.stringContaining('published by the payment service') },
    ]);
    expect(await h.redis.xlen(h.keys.stream('orders'))).toBe(before);
  });

  it('reads a UTF-8 body whatever case its charset parameter is given in', async () => {
    for (const contentType of ['application/json; charset=utf-8', 'application/json;charset="UTF-8"']) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { 'content-type': contentType },
        payload: JSON.stringify({ type: 'test.thing', data: { name: 'ünïcødé ✓' } }),
      });
      expect(res.statusCode).toBe(202);
      const entry = (await entries('things')).find(([, f]) => fieldsToRecord(f).id === res.json().eventId);
      expect(JSON.parse(fieldsToRecord(entry?.[1] ?? []).data ?? '{}')).toEqual({ name: 'ünïcødé ✓' });
    }
  });

  it('refuses an unknown type listing the accepted ones', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { type: 'nope.never', data: {} } });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.code).toBe('VALIDATION_ERROR');
    expect(body.detail).toContain('accepted types: test.note, test.thing, warehouse.stock_received');
    expect(body.detail).not.toContain('order.created');
  });

  it("accepts the reference domain's one open type, warehouse.stock_received, onto the orders stream", async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'warehouse.stock_received', data: { sku: 'SKU-9', quantity: 12, receiptId: 'GR-7' } },
    });
    expect(res.statusCode).toBe(202);
    expect(res.json().stream).toBe('orders');
    const entry = (await entries('orders')).find(([id]) => id === res.json().entryId);
    expect(JSON.parse(fieldsToRecord(entry?.[1] ?? []).data ?? '{}')).toEqual({
      sku: 'SKU-9',
      quantity: 12,
      receiptId: 'GR-7',
    });

    const bad = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: { type: 'warehouse.stock_received', data: { sku: 'SKU 9', quantity: 0 } },
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .errors.map((e: { field: string }) => e.field)
        .sort(),
    ).toEqual(['data.quantity', 'data.sku']);
  });

  it('generates a request id when none (or a bad one) is sent', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id with spaces' },
    });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('POST /v1/events on a server whose every type is published by a service', () => {
  let h: Harness;
  beforeAll(async () => {
    const catalog = new EventCatalog().register({
      type: 'ledger.posted',
      schemaVersion: 1,
      stream: 'ledger',
      schema: z.strictObject({ amount: z.number() }),
      producedBy: 'ledger',
    });
    h = await createHarness({ catalog });
  });
  afterAll(async () => {
    await h.close();
  });

  it('says that no type is accepted instead of listing none', async () => {
    for (const type of ['nope.never', 'ledger.posted']) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/events', payload: { type, data: { amount: 1 } } });
      expect(res.statusCode).toBe(400);
      expect(res.json().errors).toEqual([
        { field: 'type', message: expect.stringMatching(/; this server accepts no event types from outside$/) },
      ]);
    }
  });
});

describe('POST /v1/events/batch', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('writes every event, in order, across streams', async () => {
    const events = [
      { type: 'test.thing', data: { name: 'a' } },
      { type: 'test.note', data: { text: 'n' } },
      { type: 'test.thing', data: { name: 'b' } },
    ];
    const res = await h.app.inject({ method: 'POST', url: '/v1/events/batch', payload: { events } });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body.count).toBe(3);
    expect(body.events.map((e: { stream: string }) => e.stream)).toEqual(['things', 'notes', 'things']);
    const things = (await h.redis.xrange(h.keys.stream('things'), '-', '+')) as Entry[];
    expect(things.map(([id]) => id)).toEqual([body.events[0].entryId, body.events[2].entryId]);
    expect(things.map(([, f]) => JSON.parse(fieldsToRecord(f).data ?? '{}').name)).toEqual(['a', 'b']);
  });

  it('is all or nothing and names each bad event by index', async () => {
    const before = await h.keyList();
    const lengthBefore = await h.redis.xlen(h.keys.stream('things'));
    const events = [
      { type: 'test.thing', data: { name: 'ok' } },
      { type: 'test.thing', data: { name: 5 } },
      { type: 'test.thing', data: { name: 'ok too' } },
      { type: 'nope.never', data: {} },
    ];
    const res = await h.app.inject({ method: 'POST', url: '/v1/events/batch', payload: { events } });
    expect(res.statusCode).toBe(400);
    const fields = res.json().errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(['events.1.data.name', 'events.3.type']);
    expect(await h.redis.xlen(h.keys.stream('things'))).toBe(lengthBefore);
    expect(await h.keyList()).toEqual(before);
  });

  it('accepts the documented maximum of 500 events', async () => {
    const events = Array.from({ length: 500 }, (_, i) => ({ type: 'test.thing', data: { name: `n${i}` } }));
    const before = await h.redis.xlen(h.keys.stream('things'));
    const res = await h.app.inject({ method: 'POST', url: '/v1/events/batch', payload: { events } });
    expect(res.statusCode).toBe(202);
    expect(await h.redis.xlen(h.keys.stream('things'))).toBe(before + 500);
  });
});

describe('Idempotency-Key', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  const send = (key: string, name: string, url = '/v1/events') =>
    h.app.inject({
      method: 'POST',
      url,
      headers: { 'idempotency-key': key },
      payload: url.endsWith('batch')
        ? { events: [{ type: 'test.thing', data: { name } }] }
        : { type: 'test.thing', data: { name } },
    });

  it('returns the first answer for a repeat and writes nothing new', async () => {
    const first = await send('key-1', 'a');
    const second = await send('key-1', 'a');
    expect(first.statusCode).toBe(202);
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual(first.json());
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(await h.redis.xlen(h.keys.stream('things'))).toBe(1);
    expect(await h.redis.ttl(h.keys.idempotency('key-1'))).toBeGreaterThan(23 * 3600);
  });

  it('refuses the same key with a different request (422)', async () => {
    await send('key-2', 'a');
    const other = await send('key-2', 'b');
    expect(other.statusCode).toBe(422);
    expect(other.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    const otherRoute = await send('key-2', 'a', '/v1/events/batch');
    expect(otherRoute.statusCode).toBe(422);
  });

  it('treats the same JSON with keys in another order as the same request', async () => {
    const post = (payload: string) =>
      h.app.inject({
        method: 'POST',
        url: '/v1/events/batch',
        headers: { 'idempotency-key': 'key-order', 'content-type': 'application/json' },
        payload,
      });
    const first = await post(
      '{"events":[{"type":"test.thing","data":{"name":"k","fail":false},"aggregateId":"a-1"},{"type":"test.thing","data":{"name":"l"}}]}',
    );
    const reordered = await post(
      '{"events":[{"aggregateId":"a-1","data":{"fail":false,"name":"k"},"type":"test.thing"},{"data":{"name":"l"},"type":"test.thing"}]}',
    );
    expect(first.statusCode).toBe(202);
    expect(reordered.statusCode).toBe(202);
    expect(reordered.headers['idempotent-replayed']).toBe('true');
    expect(reordered.body).toBe(first.body);
    // Array order is part of the request: the same events swapped are a different batch.
    const swapped = await post(
      '{"events":[{"type":"test.thing","data":{"name":"l"}},{"type":"test.thing","data":{"name":"k","fail":false},"aggregateId":"a-1"}]}',
    );
    expect(swapped.statusCode).toBe(422);
    expect(swapped.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('does not consume the key on a refused request', async () => {
    const bad = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'idempotency-key': 'key-3' },
      payload: { type: 'test.thing', data: {} },
    });
    expect(bad.statusCode).toBe(400);
    expect(await h.redis.exists(h.keys.idempotency('key-3'))).toBe(0);
    expect((await send('key-3', 'fixed')).statusCode).toBe(202);
  });

  it('writes once when concurrent requests race on one key', async () => {
    const before = await h.redis.xlen(h.keys.stream('things'));
    const results = await Promise.all(Array.from({ length: 20 }, () => send('race', 'r', '/v1/events/batch')));
    const accepted = results.filter((r) => r.statusCode === 202);
    const inProgress = results.filter((r) => r.statusCode === 409);
    expect(accepted.length + inProgress.length).toBe(20);
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    for (const r of inProgress) expect(r.json().code).toBe('IDEMPOTENCY_KEY_IN_PROGRESS');
    const bodies = new Set(accepted.map((r) => r.body));
    expect(bodies.size).toBe(1);
    expect(await h.redis.xlen(h.keys.stream('things'))).toBe(before + 1);
    // Once settled, every repeat gets the stored answer.
    const late = await send('race', 'r', '/v1/events/batch');
    expect(late.statusCode).toBe(202);
    expect(late.body).toBe(accepted[0]?.body);
  });

  it('counts ingested events in /metrics', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/streamfleet_events_ingested_total\{type="test.thing",stream="things"\} \d+/);
    expect(res.body).toMatch(/streamfleet_http_requests_total\{method="POST",route="\/v1\/events",status="202"\} \d+/);
    expect(res.body).toMatch(/streamfleet_http_request_duration_seconds_bucket/);
    expect(res.body).toMatch(/streamfleet_api_process_cpu_user_seconds_total/);
  });

  it('counts every event of a mixed batch under its own type', async () => {
    const count = async (type: string, stream: string) => {
      const res = await h.app.inject({ method: 'GET', url: '/metrics' });
      const line = new RegExp(`streamfleet_events_ingested_total\\{type="${type}",stream="${stream}"\\} (\\d+)`);
      return Number(line.exec(res.body)?.[1] ?? 0);
    };
    const note = { type: 'test.note', data: { text: 'counted' } };
    const thing = { type: 'test.thing', data: { name: 'counted' } };
    const before = { things: await count('test.thing', 'things'), notes: await count('test.note', 'notes') };
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      payload: { events: [thing, thing, note, thing] },
    });
    expect(res.statusCode).toBe(202);
    expect(await count('test.thing', 'things')).toBe(before.things + 3);
    expect(await count('test.note', 'notes')).toBe(before.notes + 1);
  });
});
