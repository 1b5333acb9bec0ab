/**
 * API entrypoint: reads the environment once, connects, serves, and shuts down cleanly.
 *
 * Signals: SIGTERM (orchestrators) and SIGINT (Ctrl-C) both start a graceful shutdown:
 * `/readyz` turns 503 so load balancers stop routing here, in-flight requests finish,
 * then the app and every connection close. A second signal exits at once.
 */
import {
  ConfigError,
  createCatalog,
  createLogger,
  createPostgres,
  createRedis,
  DeadLetterStream,
  loadConfig,
  OrderService,
  RetryQueues,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import { buildApp } from './app';
import { inventoryPlugin } from './routes/inventory';
import { ordersPlugin } from './routes/orders';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, name: 'streamfleet-api' });
  const keys = new StreamfleetKeys(config.prefix);
  // Requests must fail fast when Redis is away (readyz reports it), not queue forever.
  // Auto-pipelining: the XADDs of concurrent requests leave in one write per event-loop
  // turn instead of one write (syscall) each, which was the API's largest single CPU cost.
  // Every command then rides in an ioredis pipeline: patches/ioredis@6.0.0.patch makes a
  // finished pipeline release its commands, which were otherwise kept until a full GC.
  const redis = createRedis(config.redisUrl, {
    connectionName: 'sf:api',
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
  });
  // BullMQ wants a connection that never gives up on a command; give it its own.
  const bullConnection = createRedis(config.redisUrl, { connectionName: 'sf:api:retry' });
  const catalog = createCatalog();
  const retryQueues = new RetryQueues({ connection: bullConnection, keys });
  const sql = createPostgres(config.databaseUrl, { applicationName: 'streamfleet-api' });
  const deps = {
    redis,
    catalog,
    // Routes validate every event against the catalog already; the producer need not repeat it.
    producer: new StreamProducer({ redis, keys }),
    deadLetters: new DeadLetterStream({ redis, keys, retryQueues, catalog }),
    retryQueues,
    logger,
    plugins: [ordersPlugin(new OrderService(sql)), inventoryPlugin(sql)],
    readinessChecks: { postgres: () => sql`select 1` },
  };
  const app = buildApp(config, deps);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    app.beginShutdown();
    const timer = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    try {
      await app.close();
      await retryQueues.close();
      await Promise.all([redis.quit(), bullConnection.quit(), sql.end({ timeout: 5 })]);
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const address = await app.listen({ port: config.port, host: config.host });
  const base = address.replace('0.0.0.0', 'localhost').replace('[::]', 'localhost');
  logger.info({ address }, 'listening');
  console.log(`streamfleet API on ${base} — Swagger UI at ${base}/docs, OpenAPI at ${base}/docs/json`);
  if (!config.adminToken) logger.warn('ADMIN_TOKEN is not set: admin routes refuse every request');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
