import { describe, expect, it } from 'vitest';
import { DomainError } from '../errors/index';
import { createEvent } from '../events/envelope';
import type { PendingEvent } from '../store/event-store';
import {
  decideCancel,
  decideConfirm,
  decideCreate,
  decideDeliver,
  decidePay,
  decideShip,
  evolve,
  type Order,
  OrderErrorCode,
} from './order';

function apply(state: Order | undefined, events: PendingEvent[]): Order {
  let s = state;
  for (const e of events) {
    s = evolve(s, createEvent({ ...e, aggregateId: 'o1', aggregateVersion: (s?.version ?? 0) + 1 }));
  }
  if (!s) throw new Error('no state');
  return s;
}

const created = () =>
  apply(
    undefined,
    decideCreate({ orderId: 'o1', customerId: 'c1', items: [{ sku: 'A', quantity: 2, unitPrice: 500 }] }),
  );

function expectRule(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe(code);
    return;
  }
  throw new Error(`expected DomainError ${code}`);
}

describe('order aggregate', () => {
  it('walks the happy path PENDING -> CONFIRMED -> PAID -> SHIPPED -> DELIVERED', () => {
    let o = created();
    expect(o).toMatchObject({ status: 'PENDING', total: 1000, currency: 'EUR', version: 1 });
    o = apply(o, decideConfirm(o));
    expect(o.status).toBe('CONFIRMED');
    o = apply(o, decidePay(o, { paymentId: 'p1', amount: 1000 }));
    expect(o).toMatchObject({ status: 'PAID', paymentId: 'p1' });
    o = apply(o, decideShip(o, { carrier: 'dhl' }));
    expect(o.status).toBe('SHIPPED');
    o = apply(o, decideDeliver(o));
    expect(o).toMatchObject({ status: 'DELIVERED', version: 5 });
  });

  it('rejects an empty order and a wrong total', () => {
    expectRule(() => decideCreate({ orderId: 'o', customerId: 'c', items: [] }), OrderErrorCode.emptyOrder);
    expectRule(
      () => decideCreate({ orderId: 'o', customerId: 'c', items: [{ sku: 'A', quantity: 1, unitPrice: 5 }], total: 6 }),
      OrderErrorCode.invalidTotal,
    );
  });

  it('refuses a total that is not a safe integer, before any event exists', () => {
    const huge = { sku: 'S', quantity: 10_000, unitPrice: Number.MAX_SAFE_INTEGER };
    expectRule(
      () => decideCreate({ orderId: 'huge-1', customerId: 'big', items: [huge] }),
      OrderErrorCode.totalOutOfRange,
    );
    // Each line is safe; their sum is not.
    const half = { sku: 'S', quantity: 1, unitPrice: 2 ** 52 };
    expectRule(
      () => decideCreate({ orderId: 'o', customerId: 'c', items: [half, half, half] }),
      OrderErrorCode.totalOutOfRange,
    );
    expectRule(
      () => decideCreate({ orderId: 'o', customerId: 'c', items: [{ sku: 'S', quantity: 1, unitPrice: Number.NaN }] }),
      OrderErrorCode.totalOutOfRange,
    );
    try {
      decideCreate({ orderId: 'huge-1', customerId: 'big', items: [huge] });
    } catch (err) {
      expect((err as DomainError).details).toMatchObject({ field: 'items', max: Number.MAX_SAFE_INTEGER });
    }
    // The largest total the API lets through (100 lines at its maxima) is still accepted.
    const max = { sku: 'S', quantity: 10_000, unitPrice: 1_000_000_000 };
    const [event] = decideCreate({ orderId: 'o', customerId: 'c', items: Array.from({ length: 100 }, () => max) });
    expect(event?.data.total).toBe(1e15);
  });

  it('confirms only a pending order', () => {
    const o = created();
    const confirmed = apply(o, decideConfirm(o));
    expectRule(() => decideConfirm(confirmed), OrderErrorCode.notPending);
  });

  it('pays only a confirmed order, ships only a paid one, delivers only a shipped one', () => {
    const o = created();
    expectRule(() => decidePay(o, { paymentId: 'p', amount: 1 }), OrderErrorCode.notConfirmed);
    expectRule(() => decideShip(o), OrderErrorCode.notPaid);
    expectRule(() => decideDeliver(o), OrderErrorCode.notShipped);
  });

  it('cancels with reason and who, remembering the previous status', () => {
    const o = created();
    const events = decideCancel(o, 'customer changed mind', 'customer');
    expect(events[0]?.data).toMatchObject({
      reason: 'customer changed mind',
      cancelledBy: 'customer',
      previousStatus: 'PENDING',
    });
    const cancelled = apply(o, events);
    expect(cancelled).toMatchObject({ status: 'CANCELLED', cancellationReason: 'customer changed mind' });
    expectRule(() => decideCancel(cancelled, 'again', 'x'), OrderErrorCode.alreadyCancelled);
    expectRule(() => decideConfirm(cancelled), OrderErrorCode.notPending);
  });

  it('refuses to cancel a shipped or delivered order', () => {
    let o = created();
    o = apply(o, decideConfirm(o));
    o = apply(o, decidePay(o, { paymentId: 'p', amount: 1000 }));
    const paidCancel = decideCancel(o, 'r', 'c');
    expect(paidCancel[0]?.data).toMatchObject({ previousStatus: 'PAID' });
    o = apply(o, decideShip(o));
    expectRule(() => decideCancel(o, 'r', 'c'), OrderErrorCode.cannotCancelShipped);
    o = apply(o, decideDeliver(o));
    expectRule(() => decideCancel(o, 'r', 'c'), OrderErrorCode.cannotCancelDelivered);
  });
});
