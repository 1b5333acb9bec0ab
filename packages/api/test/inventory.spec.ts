import SwaggerParser from '@apidevtools/swagger-parser';
import { createPostgres, getStock, migrate, type Sql } from '@streamfleet/core';
import { createTestDatabase, type TestDatabase } from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryPlugin } from '../src/routes/inventory';
import { createHarness, type Harness } from './harness';

let db: TestDatabase;
let sql: Sql;
let h: Harness;

beforeAll(async () => {
  db = await createTestDatabase('sf_api_inventory');
  sql = createPostgres(db.url, { max: 5 });
  await migrate(sql);
  h = await createHarness({ deps: { plugins: [inventoryPlugin(sql)] } });
});

afterAll(async () => {
  await h?.close();
  await sql?.end();
  await db?.drop();
});

const put = (sku: string, payload: unknown) =>
  h.app.inject({ method: 'PUT', url: `/v1/inventory/${sku}`, payload: payload as Record<string, unknown> });

describe('/v1/inventory/:sku', () => {
  it('sets stock, reads it back, and replaces it on a second PUT', async () => {
    const created = await put('SKU-inv.1_a', { available: 12 });
    expect(created.statusCode).toBe(200);
    expect(created.json()).toEqual({ sku: 'SKU-inv.1_a', available: 12, reserved: 0 });

    const read = await h.app.inject({ method: 'GET', url: '/v1/inventory/SKU-inv.1_a' });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ sku: 'SKU-inv.1_a', available: 12, reserved: 0 });

    const zero = await put('SKU-inv.1_a', { available: 0 });
    expect(zero.statusCode).toBe(200);
    expect(zero.json()).toMatchObject({ available: 0 });
    expect(await getStock(sql, 'SKU-inv.1_a')).toMatchObject({ available: 0, reserved: 0 });
  });

  it('refuses a count that, with the units held by orders, would not fit: a release must always fit back', async () => {
    expect((await put('SKU-inv-held', { available: 10 })).statusCode).toBe(200);
    // An order holds 4 of them.
    await sql`update inventory set available = available - 4, reserved = reserved + 4 where sku = 'SKU-inv-held'`;
    const res = await put('SKU-inv-held', { available: 2_147_483_647 });
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({
      code: 'STOCK_OUT_OF_RANGE',
      details: { field: 'available', max: 2_147_483_643 },
    });
    expect(await getStock(sql, 'SKU-inv-held')).toMatchObject({ available: 6, reserved: 4 });
    expect((await put('SKU-inv-held', { available: 2_147_483_643 })).statusCode).toBe(200);
  });

  it('answers 404 problem for an unknown SKU', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/inventory/SKU-missing' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 404 });
  });

  it.each([
    ['negative', 'SKU-bad', { available: -1 }],
    ['non-integer', 'SKU-bad', { available: 1.5 }],
    ['a string', 'SKU-bad', { available: '3' }],
    ['missing', 'SKU-bad', {}],
    ['an unknown field', 'SKU-bad', { available: 1, reserved: 2 }],
    ['bad SKU chars', 'bad*sku', { available: 1 }],
    ['a SKU with a space', 'bad%20sku', { available: 1 }],
    ['a too long SKU', 'S'.repeat(65), { available: 1 }],
  ])('rejects %s with a 400 problem and stores nothing', async (_name, sku, payload) => {
    const res = await put(sku, payload);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
    expect(await getStock(sql, decodeURIComponent(sku))).toBeUndefined();
  });

  it('answers a SKU over the router limit (200 characters) as one over 64: 400 naming params.sku', async () => {
    const over64 = await put('S'.repeat(65), { available: 1 });
    for (const res of [
      await put('S'.repeat(300), { available: 1 }),
      await h.app.inject({ method: 'GET', url: `/v1/inventory/${'S'.repeat(300)}` }),
    ]) {
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.headers['x-request-id']).toBeTruthy();
      const problem = res.json();
      expect(problem).toMatchObject({ status: 400, title: 'Bad Request', code: 'VALIDATION_ERROR' });
      expect(problem.errors).toEqual(over64.json().errors);
      expect(problem.errors.map((e: { field: string }) => e.field)).toEqual(['params.sku']);
    }
    expect(await getStock(sql, 'S'.repeat(300))).toBeUndefined();
  });

  it('answers a text/plain body 415 naming headers.content-type, storing nothing', async () => {
    const res = await h.app.inject({
      method: 'PUT',
      url: '/v1/inventory/SKU-text',
      headers: { 'content-type': 'text/plain' },
      body: '{"available":5}',
    });
    expect(res.statusCode).toBe(415);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.json()).toMatchObject({
      status: 415,
      title: 'Unsupported Media Type',
      errors: [{ field: 'headers.content-type' }],
    });
    expect(await getStock(sql, 'SKU-text')).toBeUndefined();
  });

  it('names a count far past its maximum once, with the maximum', async () => {
    const res = await put('SKU-huge', { available: 1e300 });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ field: 'available', message: 'Too big: expected number to be <=2147483647' }]);
    expect(await getStock(sql, 'SKU-huge')).toBeUndefined();
  });

  it('rejects a bad SKU on GET with a 400 problem', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/inventory/bad*sku' });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('documents the routes in a valid OpenAPI document', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const path = doc.paths['/v1/inventory/{sku}'];
    expect(Object.keys(path ?? {}).sort()).toEqual(['get', 'put']);
    expect(path.put.tags).toEqual(['inventory']);
    expect(JSON.stringify(path.put.requestBody)).toContain('"example"');
    expect(Object.keys(path.put.responses)).toEqual(expect.arrayContaining(['413', '415']));
    // Both read or write Postgres: each documents the 503 of an outage.
    for (const method of ['get', 'put']) {
      expect(Object.keys(path[method].responses['503']?.content ?? {}), method).toEqual(['application/problem+json']);
    }
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });
});

describe('PUT /v1/inventory/:sku under the ingest rate limit', () => {
  it('refuses a client past its budget with a 429 problem, and leaves the stock as it was', async () => {
    const limited = await createHarness({
      env: { RATE_LIMIT_INGEST_PER_MIN: '2' },
      deps: { plugins: [inventoryPlugin(sql)] },
    });
    try {
      const set = (available: number) =>
        limited.app.inject({ method: 'PUT', url: '/v1/inventory/SKU-limit', payload: { available } });
      expect((await set(5)).statusCode).toBe(200);
      expect((await set(6)).statusCode).toBe(200);
      const refused = await set(7);
      expect(refused.statusCode).toBe(429);
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(await getStock(sql, 'SKU-limit')).toMatchObject({ available: 6 });
    } finally {
      await limited.close();
    }
  });
});
