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
    ['extra data fields', { total: 1, extra: true }, 'order.created', 'data'],
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
