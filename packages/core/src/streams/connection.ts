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

const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|ENOTFOUND|Connection is closed|enableOfflineQueue|max retries per request/i;

/**
 * A Redis that cannot be reached right now (refused, reset, closed, or ioredis giving up on
 * a command), as opposed to Redis answering with an error. ioredis reconnects by itself.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || UNREACHABLE.test(err.message);
}
