import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for workers: commands wait through reconnects instead of failing
 * (`maxRetriesPerRequest: null`, which BullMQ also requires), reconnect backs off to 2 s.
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    ...options,
  });
}
