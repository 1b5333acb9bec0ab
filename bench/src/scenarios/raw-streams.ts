import type { EventEnvelope } from '@streamfleet/core';
import { StreamfleetKeys } from '@streamfleet/core';
import { type Measured, newRedis, pendingCount, prefill, READ_COUNT, STREAM, startClocks, withPrefix } from '../common';

type Reply = [string, [string, string[] | null][]][] | null;

const GROUP = 'raw';

/**
 * Baseline: one ioredis client, XREADGROUP COUNT 500 (READ_COUNT) then XACK of the ids, no work per
 * entry. The XACK is not awaited, so it pipelines with the next read on the same socket.
 * Returns entries per second from the first read until every entry is acknowledged.
 */
export async function rawStreams(events: readonly EventEnvelope[]): Promise<Measured> {
  return withPrefix('raw', async (prefix) => {
    const redis = newRedis();
    try {
      await prefill(redis, prefix, events);
      const key = new StreamfleetKeys(prefix).stream(STREAM);
      await redis.xgroup('CREATE', key, GROUP, '0');
      const clock = await startClocks(redis);
      let read = 0;
      let lastAck: Promise<unknown> = Promise.resolve();
      while (read < events.length) {
        const reply = (await redis.xreadgroup('GROUP', GROUP, 'c1', 'COUNT', READ_COUNT, 'STREAMS', key, '>')) as Reply;
        const entries = reply?.[0]?.[1];
        if (!entries || entries.length === 0) continue;
        const ids = new Array<string>(entries.length);
        for (let i = 0; i < entries.length; i++) ids[i] = (entries[i] as [string, unknown])[0];
        read += ids.length;
        lastAck = redis.xack(key, GROUP, ...ids);
      }
      await lastAck;
      const measured = await clock.stop(events.length);
      if ((await pendingCount(redis, key, GROUP)) !== 0) throw new Error('raw: entries left pending');
      return measured;
    } finally {
      redis.disconnect();
    }
  });
}
