import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../errors/index';
import { EventCatalog } from './catalog';
import { decodeEvent, encodeEvent } from './codec';
import { createEvent } from './envelope';

const catalog = new EventCatalog().register({
  type: 'order.created',
  schemaVersion: 1,
  stream: 'orders',
  schema: z.object({ total: z.number().int().nonnegative() }).strict(),
});

describe('event codec', () => {
  it('round-trips every envelope field', () => {
    const event = createEvent({
      type: 'order.created',
      data: { total: 10 },
      aggregateId: 'o-1',
      aggregateVersion: 3,
      metadata: { correlationId: 'c', causationId: 'x', traceparent: '00-abc-def-01' },
    });
    expect(decodeEvent(encodeEvent(event), catalog)).toEqual(event);
  });

  it.each([0, 1, 999_999_999_999_999, 1_000_000_000_000_000, Number.MAX_SAFE_INTEGER])(
    'round-trips aggregateVersion %d (every safe integer a producer may send)',
    (aggregateVersion) => {
      const event = createEvent({ type: 'order.created', data: { total: 1 }, aggregateVersion });
      expect(decodeEvent(encodeEvent(event), catalog).aggregateVersion).toBe(aggregateVersion);
    },
  );

  it('refuses an aggregateVersion past 2^53 - 1, which a number cannot hold exactly', () => {
    const fields = encodeEvent(createEvent({ type: 'order.created', data: { total: 1 }, aggregateVersion: 1 }));
    fields[fields.indexOf('aggregateVersion') + 1] = '9007199254740993';
    expect(() => decodeEvent(fields, catalog)).toThrow(/aggregateVersion: not a non-negative integer/);
  });

  it('creates time-ordered UUIDv7 ids', () => {
    const a = createEvent({ type: 'order.created', data: { total: 1 } });
    const b = createEvent({ type: 'order.created', data: { total: 1 } });
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(a.id < b.id).toBe(true);
  });

  it.each([
    ['data failing its schema', { total: -1 }, 'order.created', 'data.total'],
    ['extra data fields', { total: 1, extra: true }, 'order.created', 'data.extra'],
    ['unknown type', { total: 1 }, 'order.nope', 'type'],
  ])('rejects %s naming the field', (_label, data, type, field) => {
    const fields = encodeEvent({ ...createEvent({ type: 'order.created', data: { total: 1 } }), type, data });
    try {
      decodeEvent(fields, catalog);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.field)).toContain(field);
    }
  });

  it('rejects entries that are not events at all', () => {
    expect(() => decodeEvent(['hello', 'world'], catalog)).toThrow(ValidationError);
    const notJson = encodeEvent(createEvent({ type: 'order.created', data: { total: 1 } }));
    notJson[notJson.indexOf('data') + 1] = '{oops';
    expect(() => decodeEvent(notJson, catalog)).toThrow(/data: not valid JSON/);
  });
});

describe('event versions: upcasting on read', () => {
  // v1 { n }, v2 adds a unit, v3 renames n to count; v4 has no upcaster, so the chain ends at v3.
  const versioned = () =>
    new EventCatalog()
      .register({ type: 'thing.counted', schemaVersion: 1, stream: 's', schema: z.strictObject({ n: z.number() }) })
      .register({
        type: 'thing.counted',
        schemaVersion: 3,
        stream: 's',
        schema: z.strictObject({ count: z.number(), unit: z.string() }),
        upcast: (d) => {
          const { n, unit } = d as { n: number; unit: string };
          return { count: n, unit };
        },
      })
      .register({
        type: 'thing.counted',
        schemaVersion: 2,
        stream: 's',
        schema: z.strictObject({ n: z.number(), unit: z.string() }),
        upcast: (d) => ({ ...(d as object), unit: 'each' }),
      });
  const written = (schemaVersion: number, data: unknown) =>
    encodeEvent(createEvent({ type: 'thing.counted', schemaVersion, data, aggregateId: 'a-1' }));

  it('hands consumers every version brought up to the newest the upcasters reach, registered in any order', () => {
    const catalog = versioned();
    expect(decodeEvent(written(1, { n: 2 }), catalog)).toMatchObject({
      schemaVersion: 3,
      data: { count: 2, unit: 'each' },
      aggregateId: 'a-1',
    });
    expect(decodeEvent(written(2, { n: 2, unit: 'kg' }), catalog)).toMatchObject({
      schemaVersion: 3,
      data: { count: 2, unit: 'kg' },
    });
    expect(decodeEvent(written(3, { count: 5, unit: 'kg' }), catalog).data).toEqual({ count: 5, unit: 'kg' });

    catalog.register({
      type: 'thing.counted',
      schemaVersion: 4,
      stream: 's',
      schema: z.strictObject({ c: z.number() }),
    });
    expect(decodeEvent(written(1, { n: 2 }), catalog).schemaVersion).toBe(3);
    expect(decodeEvent(written(4, { c: 1 }), catalog)).toMatchObject({ schemaVersion: 4, data: { c: 1 } });
  });

  it('checks the written data against its own version first, and each upcaster’s result against the next', () => {
    const catalog = versioned();
    expect(() => decodeEvent(written(1, { n: 'two' }), catalog)).toThrow(/invalid data for thing.counted v1: data.n/);

    catalog.register({
      type: 'thing.counted',
      schemaVersion: 2,
      stream: 's',
      schema: z.strictObject({ n: z.number(), unit: z.string() }),
      upcast: (d) => ({ ...(d as object), unit: 7 }),
    });
    expect(() => decodeEvent(written(1, { n: 2 }), catalog)).toThrow(
      /upcasting thing.counted v1 to v2 gave invalid data for thing.counted v2: data.unit/,
    );

    catalog.register({
      type: 'thing.counted',
      schemaVersion: 2,
      stream: 's',
      schema: z.strictObject({ n: z.number(), unit: z.string() }),
      upcast: () => {
        throw new Error('no unit known');
      },
    });
    try {
      decodeEvent(written(1, { n: 2 }), catalog);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).message).toBe('upcasting thing.counted v1 to v2 failed: no unit known');
      expect((err as ValidationError).issues).toEqual([
        { field: 'data', message: 'upcasting thing.counted v1 to v2 failed' },
      ]);
    }
  });

  it('leaves producers alone: validate() checks the version written, without upcasting', () => {
    expect(versioned().validate('thing.counted', 1, { n: 2 })).toEqual({ n: 2 });
  });
});
