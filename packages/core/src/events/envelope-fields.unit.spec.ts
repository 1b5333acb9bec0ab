import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from '../errors/index';
import { EventCatalog } from './catalog';
import { decodeEvent, encodeEvent, fieldsToRecord } from './codec';
import { createEvent } from './envelope';

const catalog = new EventCatalog().register({
  type: 'order.created',
  schemaVersion: 1,
  stream: 'orders',
  schema: z.object({ total: z.number().int().nonnegative(), lines: z.array(z.object({ sku: z.string() })) }),
});

const valid = () =>
  encodeEvent(createEvent({ type: 'order.created', data: { total: 1, lines: [{ sku: 'a' }] }, aggregateId: 'o-1' }));

/** The entry with one field replaced (or removed when `value` is undefined). */
function withField(field: string, value: string | undefined): string[] {
  const record = fieldsToRecord(valid());
  if (value === undefined) delete record[field];
  else record[field] = value;
  return Object.entries(record).flat();
}

function issueFields(fields: string[]): string[] {
  try {
    decodeEvent(fields, catalog);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).issues.map((i) => i.field);
  }
  throw new Error('decodeEvent accepted an invalid entry');
}

describe('decodeEvent names the offending field', () => {
  it('accepts the valid entry these cases start from', () => {
    expect(decodeEvent(valid(), catalog).type).toBe('order.created');
  });

  it.each(['id', 'type', 'schemaVersion', 'occurredAt', 'data'])('a missing %s', (field) => {
    expect(issueFields(withField(field, undefined))).toEqual([field]);
  });

  it.each([
    ['schemaVersion', '0'],
    ['schemaVersion', 'one'],
    ['occurredAt', 'yesterday'],
    ['aggregateVersion', '-1'],
    ['aggregateId', 'x'.repeat(201)],
    ['data', '{not json'],
  ])('a bad %s (%j)', (field, value) => {
    expect(issueFields(withField(field, value))).toEqual([field]);
  });

  it('an unknown schema version of a known type', () => {
    expect(issueFields(withField('schemaVersion', '2'))).toEqual(['schemaVersion']);
  });

  it('every missing field at once, not only the first', () => {
    expect(issueFields(['hello', 'world']).sort()).toEqual(['data', 'id', 'occurredAt', 'schemaVersion', 'type']);
  });

  it('the nested path inside data', () => {
    const fields = withField('data', JSON.stringify({ total: 1, lines: [{ sku: 'a' }, { sku: 3 }] }));
    expect(issueFields(fields)).toEqual(['data.lines.1.sku']);
  });
});
