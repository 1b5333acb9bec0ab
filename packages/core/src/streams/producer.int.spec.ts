import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsToRecord } from '../events/codec';
import { createEvent } from '../events/envelope';
import { cleanupPrefix, TestRedisServer, testRedisUrl, uniquePrefix } from '../testing/index';
import { StreamfleetKeys } from './keys';
import { StreamProducer } from './producer';

const prefix = uniquePrefix();
const keys = new StreamfleetKeys(prefix);
const connections: Redis[] = [];

afterAll(async () => {
  for (const c of connections) c.disconnect();
  await cleanupPrefix(testRedisUrl(), prefix);
});

const thing = (name: string) => createEvent({ type: 'test.thing', data: { name }, aggregateId: name });

// The API's connection auto-pipelines; a worker's (the outbox relay's) does not. Both must
// return one entry id per event, in order, whether one event or many are published.
describe.each([
  ['a plain connection', false],
  ['an auto-pipelining connection', true],
])('StreamProducer on %s', (_label, enableAutoPipelining) => {
  const redis = new Redis(testRedisUrl(), { enableAutoPipelining });
  connections.push(redis);
  const producer = new StreamProducer({ redis, keys });
  const suffix = enableAutoPipelining ? 'auto' : 'plain';

  it('publishes a lone event and resolves to its entry id', async () => {
    const event = thing(`lone-${suffix}`);
    const [id] = await producer.publishMany([{ stream: `one-${suffix}`, event }]);
    const entries = (await redis.xrange(keys.stream(`one-${suffix}`), '-', '+')) as [string, string[]][];
    expect(entries.map(([entryId]) => entryId)).toEqual([id]);
    expect(fieldsToRecord(entries[0]?.[1] ?? [])).toMatchObject({ id: event.id, type: 'test.thing' });
  });

  it('publishes many events across streams in one call, ids in request order', async () => {
    const events = Array.from({ length: 5 }, (_, i) => thing(`many-${suffix}-${i}`));
    const targets = events.map((event, i) => ({ stream: i % 2 === 0 ? `even-${suffix}` : `odd-${suffix}`, event }));
    const ids = await producer.publishMany(targets);
    expect(ids).toHaveLength(5);
    for (const [i, t] of targets.entries()) {
      const [entry] = (await redis.xrange(keys.stream(t.stream), ids[i] as string, ids[i] as string)) as [
        string,
        string[],
      ][];
      expect(fieldsToRecord(entry?.[1] ?? []).id).toBe(t.event.id);
    }
  });

  it('resolves concurrent single publishes each to its own entry', async () => {
    const events = Array.from({ length: 20 }, (_, i) => thing(`burst-${suffix}-${i}`));
    const ids = await Promise.all(events.map((event) => producer.publish(`burst-${suffix}`, event)));
    const entries = (await redis.xrange(keys.stream(`burst-${suffix}`), '-', '+')) as [string, string[]][];
    const byId = new Map(entries.map(([id, fields]) => [id, fieldsToRecord(fields).id]));
    expect(ids.map((id) => byId.get(id))).toEqual(events.map((e) => e.id));
  });
});

// patches/ioredis@6.0.0.patch: something still reaches a pipeline at young-generation GCs after
// it is answered, so once answered it must not hold its commands and replies, or every command
// sent on an auto-pipelining connection is promoted with it and lives until a full GC.
describe('a finished ioredis pipeline', () => {
  const redis = new Redis(testRedisUrl(), { enableAutoPipelining: true });
  connections.push(redis);

  it('answers every command, then holds none of them', async () => {
    await redis.set(keys.stream('not-a-stream'), 'x');
    const pipeline = redis.pipeline();
    pipeline.xadd(keys.stream('released'), '*', 'n', '1');
    pipeline.xadd(keys.stream('not-a-stream'), '*', 'n', '2');
    pipeline.xadd(keys.stream('released'), '*', 'n', '3');
    expect(pipeline.length).toBe(3);
    const results = (await pipeline.exec()) ?? [];
    expect(results.map(([err]) => (err ? 'error' : 'ok'))).toEqual(['ok', 'error', 'ok']);
    expect(String(results[1]?.[0])).toMatch(/WRONGTYPE/);
    expect(await redis.xlen(keys.stream('released'))).toBe(2);
    expect(pipeline.length).toBe(0);
  });

  it('holds none of the commands it carried for an auto-pipelining connection', async () => {
    const made: { length: number }[] = [];
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = ((...args: Parameters<typeof redis.pipeline>) => {
      const p = pipeline(...args);
      made.push(p);
      return p;
    }) as typeof redis.pipeline;
    try {
      const producer = new StreamProducer({ redis, keys });
      const events = Array.from({ length: 20 }, (_, i) => thing(`auto-${i}`));
      const ids = await Promise.all(events.map((event) => producer.publish('auto-released', event)));
      expect(new Set(ids).size).toBe(20);
      expect(made.length).toBeGreaterThan(0);
      expect(made.map((p) => p.length)).toEqual(made.map(() => 0));
    } finally {
      redis.pipeline = pipeline;
    }
  });
});

describe('a batch Redis refuses part-way', () => {
  // Its own server: the test lowers maxmemory, which must not touch anyone else's Redis.
  const server = new TestRedisServer();
  let redis: Redis;

  beforeAll(async () => {
    await server.start();
    redis = new Redis(server.url);
  }, 20_000);

  afterAll(async () => {
    redis?.disconnect();
    await server.stop();
  });

  it('writes none of it: a client retrying the batch cannot publish its first events twice', async () => {
    const ownKeys = new StreamfleetKeys('oom');
    const producer = new StreamProducer({ redis, keys: ownKeys });
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    // Room for about 50 of these 200 events of 4 kB.
    await redis.config('SET', 'maxmemory', String(used + 200_000));
    const blob = 'x'.repeat(4000);
    const batch = Array.from({ length: 200 }, (_, i) => ({
      stream: 'orders',
      event: createEvent({ type: 'test.thing', data: { i, blob } }),
    }));
    await expect(producer.publishMany(batch)).rejects.toThrow(/OOM|EXECABORT/);
    expect(await redis.xlen(ownKeys.stream('orders'))).toBe(0);
  });
});
