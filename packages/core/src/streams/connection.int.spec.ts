import { afterAll, describe, expect, it } from 'vitest';
import { createPostgres, isPostgresUnavailable } from '../store/client';
import { freePort } from '../testing/index';
import { createRedis, isRedisUnavailable } from './connection';

/**
 * Redis and Postgres outages both say ECONNREFUSED; the API answers them with different
 * problems (REDIS_UNAVAILABLE, POSTGRES_UNAVAILABLE), so each is told by where it came from.
 */
describe('unavailable Redis and Postgres are told apart', () => {
  const closing: (() => unknown)[] = [];
  afterAll(async () => {
    for (const close of closing) await close();
  });

  it('a refused Postgres connection is Postgres unavailable, not Redis', async () => {
    const sql = createPostgres(`postgres://postgres@127.0.0.1:${await freePort()}/streamfleet`, { max: 1 });
    closing.push(() => sql.end());
    const err = await sql`select 1`.catch((e: unknown) => e);
    expect(String(err)).toMatch(/ECONNREFUSED/);
    expect(isPostgresUnavailable(err)).toBe(true);
    expect(isRedisUnavailable(err)).toBe(false);
  });

  it('a refused Redis connection is Redis unavailable, not Postgres', async () => {
    const redis = createRedis(`redis://127.0.0.1:${await freePort()}`, {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    closing.push(() => redis.disconnect());
    const err = await redis.ping().catch((e: unknown) => e);
    expect(isRedisUnavailable(err)).toBe(true);
    expect(isPostgresUnavailable(err)).toBe(false);
  });

  it('ioredis and Redis Cluster outage errors stay Redis unavailable', () => {
    for (const [name, message] of [
      ['MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 2)'],
      ['ClusterAllFailedError', 'Failed to refresh slots cache.'],
      ['ReplyError', 'CLUSTERDOWN The cluster is down'],
      ['Error', 'Connection is closed.'],
      ['Error', 'None of startup nodes is available'],
    ]) {
      const err = Object.assign(new Error(message), { name });
      expect(isRedisUnavailable(err), message).toBe(true);
      expect(isPostgresUnavailable(err), message).toBe(false);
    }
  });
});
