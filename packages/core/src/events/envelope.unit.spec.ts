import { describe, expect, it } from 'vitest';
import { createEvent, newEventId } from './envelope';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newEventId', () => {
  it('is a UUID v7 carrying the current time', () => {
    const before = Date.now();
    const id = newEventId();
    const after = Date.now();
    expect(id).toMatch(UUID_V7);
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it('sorts in creation order, also within one millisecond, and never repeats', () => {
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });

  it('has random bits that differ between ids', () => {
    const tails = new Set(Array.from({ length: 1000 }, () => newEventId().slice(-10)));
    expect(tails.size).toBeGreaterThan(990);
  });
});

describe('createEvent', () => {
  it('lays out the envelope in one key order, optional fields only when given', () => {
    const full = createEvent({
      type: 'order.created',
      data: {},
      aggregateId: 'o-1',
      aggregateVersion: 2,
      metadata: { correlationId: 'c-1' },
    });
    expect(Object.keys(full)).toEqual([
      'id',
      'type',
      'schemaVersion',
      'aggregateId',
      'aggregateVersion',
      'occurredAt',
      'data',
      'metadata',
    ]);
    const bare = createEvent({ type: 'order.created', data: {} });
    expect(Object.keys(bare)).toEqual(['id', 'type', 'schemaVersion', 'occurredAt', 'data', 'metadata']);
    expect(bare.metadata).toEqual({});
    expect(bare.schemaVersion).toBe(1);
  });

  it('stamps occurredAt as an ISO 8601 date-time close to now', () => {
    const before = Date.now();
    const event = createEvent({ type: 'order.created', data: {} });
    expect(new Date(event.occurredAt).toISOString()).toBe(event.occurredAt);
    expect(Date.parse(event.occurredAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(event.occurredAt)).toBeLessThanOrEqual(Date.now());
  });
});
