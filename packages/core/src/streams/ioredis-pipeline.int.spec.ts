import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from '../testing/index';
import { StreamfleetKeys } from './keys';

/**
 * patches/ioredis@6.0.0.patch builds pipelines from a Pipeline subclass kept per client, with
 * the client's scripts on its prototype, instead of copying every script onto every pipeline
 * (BullMQ defines ~60 on its connection, and `addBulk` builds one pipeline per call). This
 * pins that pipelines and transactions still see exactly the client's commands as they are now.
 */
describe('ioredis pipelines (patched)', () => {
  const prefix = uniquePrefix('pipe');
  const url = testRedisUrl();
  let redis: Redis & Record<string, (...args: unknown[]) => unknown>;

  beforeAll(() => {
    redis = new Redis(url) as typeof redis;
  });
  afterAll(async () => {
    await cleanupPrefix(url, prefix);
    redis.disconnect();
  });

  const exec = async (pipeline: { exec(): Promise<[Error | null, unknown][] | null> }) =>
    (await pipeline.exec())?.map(([err, value]) => err ?? value);

  it('runs scripts defined before and after earlier pipelines, and a redefined one as redefined', async () => {
    const key = new StreamfleetKeys(prefix).stream('k');
    redis.defineCommand('sfEcho', { numberOfKeys: 0, lua: 'return "one:" .. ARGV[1]' });
    const first = redis.pipeline() as unknown as Record<string, (...a: unknown[]) => unknown> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    first.sfEcho?.('a');
    first.set?.(key, 'v');
    expect(await exec(first)).toEqual(['one:a', 'OK']);

    redis.defineCommand('sfEcho', { numberOfKeys: 0, lua: 'return "two:" .. ARGV[1]' });
    redis.defineCommand('sfGet', { numberOfKeys: 1, lua: 'return redis.call("GET", KEYS[1])' });
    const second = redis.multi() as unknown as typeof first;
    second.sfEcho?.('b');
    second.sfGet?.(key);
    expect(await exec(second)).toEqual(['two:b', 'v']);
    // Later pipelines share the redefined command from their prototype: nothing is copied onto them.
    const third = redis.pipeline() as unknown as typeof first;
    third.sfEcho?.('c');
    expect(await exec(third)).toEqual(['two:c']);
    expect(Object.hasOwn(third, 'sfEcho')).toBe(false);
  });

  it('keeps commands added with addBuiltinCommand on pipelines', async () => {
    redis.addBuiltinCommand('echo');
    const pipeline = redis.pipeline() as unknown as Record<string, (...a: unknown[]) => unknown> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    pipeline.echo?.('hi');
    expect(await exec(pipeline)).toEqual(['hi']);
  });
});
