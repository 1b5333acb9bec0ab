import { describe, expect, it } from 'vitest';
import { createCatalog } from '../catalog';
import type { ValidationError } from '../errors/index';
import { OrderEventType } from './events';

describe('order domain events', () => {
  it('registers every type on the orders stream, each example valid against its schema', () => {
    const catalog = createCatalog();
    for (const type of Object.values(OrderEventType)) {
      const definition = catalog.get(type);
      expect(definition, type).toBeDefined();
      expect(definition?.stream).toBe('orders');
      expect(() => catalog.validate(type, 1, definition?.example)).not.toThrow();
    }
  });

  it('rejects a cancellation without a reason', () => {
    expect(() =>
      createCatalog().validate('order.cancelled', 1, {
        orderId: 'o',
        customerId: 'c',
        cancelledBy: 'x',
        previousStatus: 'PENDING',
      }),
    ).toThrow(/reason/);
  });

  it('names a received quantity far past its maximum once, with the maximum', () => {
    try {
      createCatalog().validate(OrderEventType.stockReceived, 1, { sku: 'SKU-1', quantity: 1e300 });
      expect.unreachable();
    } catch (err) {
      expect((err as ValidationError).issues).toEqual([
        { field: 'data.quantity', message: 'Too big: expected number to be <=1000000' },
      ]);
    }
  });
});
