import type { EventEnvelope } from '@streamfleet/core';
import { encodeEvent, StreamfleetKeys } from '@streamfleet/core';
import { type Measured, newRedis, STREAM, startClocks, withPrefix } from '../common';

/**
 * Baseline for ingest: one ioredis client appending the same encoded events with XADD,
 * 1,000 commands per pipeline. Returns events per second.
 */
export async function rawXadd(events: readonly EventEnvelope[]): Promise<Measured> {
  return withPrefix('xadd', async (prefix) => {
    const redis = newRedis();
    try {
      const key = new StreamfleetKeys(prefix).stream(STREAM);
      await redis.ping();
      const clock = await startClocks(redis);
      for (let i = 0; i < events.length; i += 1000) {
        const pipeline = redis.pipeline();
        for (let j = i; j < Math.min(events.length, i + 1000); j++) {
          pipeline.xadd(key, '*', ...encodeEvent(events[j] as EventEnvelope));
        }
        await pipeline.exec();
      }
      const measured = await clock.stop(events.length);
      if ((await redis.xlen(key)) !== events.length) throw new Error('raw xadd: stream length mismatch');
      return measured;
    } finally {
      redis.disconnect();
    }
  });
}
