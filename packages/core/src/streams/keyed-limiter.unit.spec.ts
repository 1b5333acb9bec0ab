import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from './keyed-limiter';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Item {
  key: string;
  n: number;
}

describe('KeyedLimiter', () => {
  it('never runs more than its concurrency at once', async () => {
    let running = 0;
    let peak = 0;
    let finished = 0;
    const limiter: KeyedLimiter<Item> = new KeyedLimiter<Item>(3, (item) => {
      running++;
      peak = Math.max(peak, running);
      void tick().then(() => {
        running--;
        finished++;
        limiter.release(item.key);
      });
    });
    for (let i = 0; i < 50; i++) limiter.submit({ key: `k${i}`, n: i });
    while (finished < 50) await tick();
    expect(peak).toBe(3);
    expect(limiter.running).toBe(0);
  });

  it('keeps one key in submission order while other keys run alongside', async () => {
    const seen: string[] = [];
    const delays = [3, 1, 2, 0];
    const limiter: KeyedLimiter<Item> = new KeyedLimiter<Item>(10, (item) => {
      void (async () => {
        for (let t = 0; t < (delays[item.n % 4] as number); t++) await tick();
        seen.push(`${item.key}${item.n}`);
        limiter.release(item.key);
      })();
    });
    for (let i = 0; i < 8; i++) limiter.submit({ key: i % 2 === 0 ? 'a' : 'b', n: i });
    while (seen.length < 8) await tick();
    expect(seen.filter((s) => s.startsWith('a'))).toEqual(['a0', 'a2', 'a4', 'a6']);
    expect(seen.filter((s) => s.startsWith('b'))).toEqual(['b1', 'b3', 'b5', 'b7']);
  });

  it('loops rather than recurses when work settles inside start, and keeps order across a long queue', () => {
    const order: number[] = [];
    const limiter: KeyedLimiter<Item> = new KeyedLimiter<Item>(2, (item) => {
      order.push(item.n);
      limiter.release(item.key);
    });
    // Far more items than a recursive release could take on the stack.
    const n = 200_000;
    for (let i = 0; i < n; i++) limiter.submit({ key: `k${i % 7}`, n: i });
    expect(order).toHaveLength(n);
    expect(order.every((v, i) => v === i)).toBe(true);
    expect(limiter.running).toBe(0);
  });

  it('runs every item of a busy queue exactly once when releases come late (compaction keeps order)', async () => {
    const started: number[] = [];
    const pending: Item[] = [];
    const limiter = new KeyedLimiter<Item>(4, (item) => {
      started.push(item.n);
      pending.push(item);
    });
    const n = 5000;
    for (let i = 0; i < n; i++) limiter.submit({ key: `k${i}`, n: i });
    while (pending.length > 0) {
      const item = pending.shift() as Item;
      limiter.release(item.key);
      if (item.n % 97 === 0) await tick();
    }
    expect(started).toEqual(Array.from({ length: n }, (_, i) => i));
  });
  it('takeQueued() takes what has not started, and the running items release into nothing', () => {
    const started: string[] = [];
    const limiter = new KeyedLimiter<Item>(2, (item) => void started.push(`${item.key}${item.n}`));
    // a0 and b0 run; a1 waits behind a0, c0 for a slot, c1 behind c0.
    for (const [key, n] of [
      ['a', 0],
      ['b', 0],
      ['a', 1],
      ['c', 0],
      ['c', 1],
    ] as const)
      limiter.submit({ key, n });
    expect(started).toEqual(['a0', 'b0']);
    const taken = limiter.takeQueued().map((item) => `${item.key}${item.n}`);
    expect(taken.sort()).toEqual(['a1', 'c0', 'c1']);
    limiter.release('a');
    limiter.release('b');
    expect(started).toEqual(['a0', 'b0']);
    expect(limiter.running).toBe(0);
    // Usable afterwards: a key taken away starts afresh.
    limiter.submit({ key: 'c', n: 2 });
    expect(started).toEqual(['a0', 'b0', 'c2']);
  });
});
