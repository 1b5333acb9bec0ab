import { describe, expect, it } from 'vitest';
import { retryJobId } from './retry-queues';

describe('retryJobId', () => {
  it('keeps ids of letters, digits, _ . - as they are, UUIDs among them', () => {
    expect(retryJobId('payment', '0193a6f2-7000-7abc-8def-000000000001', 0)).toBe(
      'payment.0193a6f2-7000-7abc-8def-000000000001',
    );
    expect(retryJobId('payment', 'evt_1.a', 2)).toBe('payment.evt_1.a~r2');
  });

  it('never gives two events, or two rounds of one event, the same job', () => {
    const cases: Array<[string, number]> = [
      ['a:b', 0],
      ['a_b', 0],
      ['a~3Ab', 0],
      ['x', 1],
      ['x.r1', 0],
      ['x~r1', 0],
      ['x', 11],
      ['x1', 1],
      ['ordre é', 0],
      ['ordre e\u0301', 0],
      ['ordre 😀', 0],
    ];
    const ids = cases.map(([eventId, round]) => retryJobId('g', eventId, round));
    expect(new Set(ids).size).toBe(cases.length);
  });

  it('is URL-safe and free of the `:` BullMQ refuses in job ids', () => {
    for (const eventId of ['a:b', 'a b/c?d#e%f', 'ordre é', 'emoji 😀', 'tilde~']) {
      expect(retryJobId('pay:ment', eventId, 3)).toMatch(/^[\w.~-]+$/);
    }
    expect(retryJobId('g', 'a:b c', 0)).toBe('g.a~3Ab~20c');
  });
});
