import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NonRetryableError } from '../errors/index';
import { createRedis } from '../streams/connection';
import { StreamfleetKeys } from '../streams/keys';
import { freePort, TestRedisCluster, uniquePrefix, waitFor } from '../testing/index';
import { group, n, THING_STREAM, thing, thingCatalog } from '../testing/thing-fleet';
import { Fleet } from './fleet';

/**
 * The fleet on a Redis Cluster of three masters, each with a replica. The fleet's keys share
 * one hash tag, so they live on one master; the clients are given another node as their seed
 * and must find the right one (MOVED), and follow it when its replica takes over.
 */
describe('a fleet on a Redis Cluster', () => {
  const cluster = new TestRedisCluster(3, [0, 1, 2]);

  beforeAll(() => cluster.start(), 60_000);
  afterAll(() => cluster.stop());

  /** A fleet on a fresh prefix whose slot the seed node does not serve: every command is redirected at first. */
  const fleetOn = async (groups: Parameters<typeof group>[], blockMs = 30_000) => {
    let prefix: string;
    do prefix = uniquePrefix('cl');
    while ((await cluster.masterOf(new StreamfleetKeys(prefix).root)) === cluster.masters[0]);
    return new Fleet({
      redisUrl: cluster.url,
      redisCluster: true,
      prefix,
      catalog: thingCatalog,
      groups: groups.map((args) => group(...args)),
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50, jitter: 0 },
      // A reader blocked for 30 s must be woken on the node it waits on, or close() hangs past the test's timeout.
      consumer: { blockMs, visibilityTimeoutMs: 5000 },
      retryLingerMs: 5,
    });
  };

  it('consumes, retries through BullMQ, dead-letters, replays and closes without waiting out a blocked read', async () => {
    const attempts = new Map<number, number>();
    let poisonHeals = false;
    const fleet = await fleetOn([
      [
        'a',
        (e) => {
          const k = n(e);
          attempts.set(k, (attempts.get(k) ?? 0) + 1);
          if (k === 13 && !poisonHeals) throw new NonRetryableError('poison');
          if (k % 10 === 0 && attempts.get(k) === 1) throw new Error('flaky');
        },
      ],
      ['b', () => undefined],
    ]);
    expect(fleet.redis).toBeInstanceOf(Cluster);
    await fleet.start();
    try {
      for (let i = 0; i < 100; i++) await fleet.producer.publish(THING_STREAM, thing(i));
      await waitFor(async () => (await fleet.deadLetters.list()).items.length === 1, {
        timeoutMs: 20_000,
        message: 'the poison event dead-lettered',
      });
      await waitFor(
        () => attempts.size === 100 && [...attempts.keys()].every((k) => k % 10 !== 0 || attempts.get(k) === 2),
        {
          timeoutMs: 20_000,
          message: 'every event handled, the flaky ones on their retry',
        },
      );
      const [dead] = (await fleet.deadLetters.list()).items;
      expect(dead).toMatchObject({ group: 'a', reason: 'non-retryable', event: { data: '{"n":13}' } });
      expect(await fleet.retryQueues.counts('a')).toMatchObject({ waiting: 0, delayed: 0, active: 0 });

      poisonHeals = true;
      await fleet.deadLetters.replay(dead!.id, { actor: 'test' });
      await waitFor(() => attempts.get(13) === 2, { timeoutMs: 20_000, message: 'the replayed event handled' });
      expect(await fleet.deadLetters.list()).toMatchObject({ items: [] });
      // Replayed to `a` alone: `b` handled each event once and has nothing pending.
      const stream = fleet.keys.stream(THING_STREAM);
      for (const g of ['a', 'b']) {
        await waitFor(async () => Number(((await fleet.redis.xpending(stream, g)) as [number])[0]) === 0, {
          message: `${g} to have nothing pending`,
        });
      }
    } finally {
      await fleet.close({ timeoutMs: 5000 });
    }
  }, 30_000);

  it('starts from a list of seed nodes when the first of them is down', async () => {
    const down = `redis://127.0.0.1:${await freePort()}`;
    const client = createRedis(`${down}, ${cluster.url}`, { cluster: true });
    const key = `${uniquePrefix('seeds')}:k`;
    try {
      await client.set(key, 'v');
      expect(await client.get(key)).toBe('v');
      expect((client as Cluster).nodes('master')).toHaveLength(3);
    } finally {
      await client.del(key);
      client.disconnect();
    }
  });

  it("carries on when the fleet's master dies and its replica takes over", async () => {
    const handled = new Set<number>();
    const fleet = await fleetOn([['failover', (e) => void handled.add(n(e))]], 200);
    await fleet.start();
    const observer = createRedis(cluster.url, { cluster: true });
    try {
      for (let i = 0; i < 200; i++) await fleet.producer.publish(THING_STREAM, thing(i));
      // Replication is asynchronous: wait until the replica holds every entry, so the kill
      // below loses nothing Redis acknowledged.
      const stream = fleet.keys.stream(THING_STREAM);
      const master = await cluster.masterOf(stream);
      await waitFor(
        async () => {
          const replica = cluster.replicas[cluster.masters.indexOf(master)]!;
          const direct = createRedis(replica.url);
          try {
            await direct.call('READONLY');
            return (await direct.xlen(stream)) === 200;
          } finally {
            direct.disconnect();
          }
        },
        { message: 'the replica to hold every entry' },
      );
      await master.kill();

      // Published after the kill: each waits until the replica has been promoted.
      for (let i = 200; i < 300; i++) await fleet.producer.publish(THING_STREAM, thing(i));
      expect(await cluster.masterOf(stream)).not.toBe(master);
      await waitFor(() => handled.size === 300, { timeoutMs: 30_000, message: 'every event handled' });
      await waitFor(async () => Number(((await observer.xpending(stream, 'failover')) as [number])[0]) === 0, {
        timeoutMs: 30_000,
        message: 'nothing pending after the failover',
      });
    } finally {
      observer.disconnect();
      await fleet.close({ timeoutMs: 5000 });
    }
  }, 60_000);
});
