/**
 * vitest globalSetup: when REDIS_URL / DATABASE_URL are not set, start containers
 * (needs a Docker engine) and export their URLs to the test workers.
 */
import type { TestProject } from 'vitest/node';

export default async function setup(_project: TestProject): Promise<() => Promise<void>> {
  const stops: Array<() => Promise<unknown>> = [];
  if (!process.env.REDIS_URL) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const redis = await new RedisContainer('redis:7.2-alpine').start();
    process.env.REDIS_URL = redis.getConnectionUrl();
    stops.push(() => redis.stop());
  }
  if (!process.env.DATABASE_URL) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const pg = await new PostgreSqlContainer('postgres:15-alpine').start();
    process.env.DATABASE_URL = pg.getConnectionUri();
    stops.push(() => pg.stop());
  }
  return async () => {
    await Promise.all(stops.map((stop) => stop()));
  };
}
