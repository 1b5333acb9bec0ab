import { describe, expect, it } from 'vitest';
import { briefError, NonRetryableError, summariseError } from './index';

/** An error that counts how often its stack is read (formatting one is the costly part). */
function countingError(message: string): { err: Error; reads: () => number } {
  const err = new Error(message);
  let reads = 0;
  Object.defineProperty(err, 'stack', {
    get: () => {
      reads++;
      return `Error: ${message}\n    at somewhere`;
    },
  });
  return { err, reads: () => reads };
}

describe('briefError', () => {
  it('gives name, message and code without reading the stack', () => {
    const { err, reads } = countingError('boom');
    expect(briefError(err)).toEqual({ name: 'Error', message: 'boom' });
    expect(briefError(new NonRetryableError('no', { code: 'PAYMENT_DECLINED' }))).toEqual({
      name: 'NonRetryableError',
      message: 'no',
      code: 'PAYMENT_DECLINED',
    });
    expect(reads()).toBe(0);
  });

  it('describes values that are not errors', () => {
    expect(briefError('plain')).toEqual({ name: 'NonError', message: 'plain' });
    expect(briefError({ a: 1 })).toEqual({ name: 'NonError', message: '{"a":1}' });
  });
});

describe('summariseError', () => {
  it('adds the stack, bounded', () => {
    const err = new Error('long');
    err.stack = `Error: long\n${'    at frame\n'.repeat(1000)}`;
    const summary = summariseError(err);
    expect(summary).toMatchObject({ name: 'Error', message: 'long' });
    expect(summary.stack?.length).toBe(2000);
    expect(summariseError(countingError('x').err).stack).toBe('Error: x\n    at somewhere');
  });
});
