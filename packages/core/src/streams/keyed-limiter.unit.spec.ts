import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from './keyed-limiter';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('KeyedLimiter', () => {
  it('never runs more than its concurrency at once', async () => {
    const limiter = new KeyedLimiter(3);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        limiter.run(`k${i}`, async () => {
          running++;
          peak = Math.max(peak, running);
          await tick();
          running--;
        }),
      ),
    );
    expect(peak).toBe(3);
  });

  it('keeps one key in order, even after a failure', async () => {
    const limiter = new KeyedLimiter(10);
    const seen: number[] = [];
    const runs = [3, 1, 2, 0].map((delay, i) =>
      limiter.run('same', async () => {
        for (let t = 0; t < delay; t++) await tick();
        seen.push(i);
        if (i === 1) throw new Error('boom');
      }),
    );
    const results = await Promise.allSettled(runs);
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  });
});
