import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from '../testing/index';
import { StreamfleetKeys } from './keys';
import { infoList, infoRecord } from './reply';

// ioredis 6 negotiates RESP3. These tests pin the reply shapes the engine parses, so an
// upgrade that starts returning maps (or a server that does) fails here, not in production.
const prefix = uniquePrefix();
const keys = new StreamfleetKeys(prefix);
const key = keys.stream('shapes');
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(testRedisUrl());
  await redis.xgroup('CREATE', key, 'g', '0', 'MKSTREAM');
  await redis.xadd(key, '1-1', 'a', '1');
});

afterAll(async () => {
  redis.disconnect();
  await cleanupPrefix(testRedisUrl(), prefix);
});

describe('stream reply shapes under ioredis 6', () => {
  it('XREADGROUP: [[stream, [[id, [field, value]]]]], null on timeout', async () => {
    expect(await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', 10, 'STREAMS', key, '>')).toEqual([
      [key, [['1-1', ['a', '1']]]],
    ]);
    expect(await redis.xreadgroup('GROUP', 'g', 'c', 'BLOCK', 10, 'STREAMS', key, '>')).toBeNull();
  });

  it('XPENDING: summary and extended forms', async () => {
    expect(await redis.xpending(key, 'g')).toEqual([1, '1-1', '1-1', [['c', '1']]]);
    const [row] = (await redis.xpending(key, 'g', '-', '+', 10)) as unknown[][];
    expect(row?.[0]).toBe('1-1');
    expect(row?.[1]).toBe('c');
    expect(typeof row?.[2]).toBe('number');
    expect(row?.[3]).toBe(1);
  });

  it('XAUTOCLAIM: [cursor, entries, deleted ids]', async () => {
    expect(await redis.xautoclaim(key, 'g', 'c2', 0, '0-0', 'COUNT', 10)).toEqual(['0-0', [['1-1', ['a', '1']]], []]);
  });

  it('XINFO GROUPS / CONSUMERS: flat key-value lists that infoRecord reads', async () => {
    const [group] = infoList(await redis.xinfo('GROUPS', key));
    expect(group).toMatchObject({ name: 'g', pending: 1, 'last-delivered-id': '1-1' });
    const consumers = infoList(await redis.xinfo('CONSUMERS', key, 'g'));
    expect(consumers.map((c) => c.name).sort()).toEqual(['c', 'c2']);
    expect(infoRecord(new Map([['a', 1]]))).toEqual({ a: 1 });
  });
});
