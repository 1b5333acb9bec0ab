import {
  createOrderGroups,
  createPaymentGatewayFromConfig,
  createPostgres,
  ensureDatabase,
  expireStaleSagas,
  INVENTORY_GROUP,
  migrate,
  NOTIFICATION_GROUP,
  OutboxRelay,
  type OutboxStats,
  outboxStats,
  PAYMENT_GROUP,
  Periodic,
  PROJECTION_GROUP,
  pruneProcessedEvents,
  type ReadinessCheck,
  SAGA_GROUP,
  type Sql,
  StreamProducer,
} from '@streamfleet/core';
import { Gauge } from 'prom-client';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import type { GroupSet } from './registry';

export const DOMAIN_GROUPS = [
  INVENTORY_GROUP,
  PAYMENT_GROUP,
  NOTIFICATION_GROUP,
  PROJECTION_GROUP,
  SAGA_GROUP,
] as const;

export interface DomainGroupsOptions {
  /** Apply pending migrations at start (advisory-locked, so many workers may race). Default true. */
  migrate?: boolean;
}

/** How often dedup rows past their retention are deleted. */
const DEDUP_PRUNE_INTERVAL_MS = 10 * 60_000;

/**
 * The order domain: inventory, payment, notification, order-projection and order-saga,
 * all on the `orders` stream and backed by Postgres, plus the outbox relay that publishes
 * what they (and the API) commit. Every worker running a domain group runs a relay; one
 * leads at a time (advisory lock), the others stand by for failover.
 *
 * Readiness: `postgres` (`select 1` on the groups' pool).
 *
 * Housekeeping, safe to run in every worker at once: sagas waiting longer than
 * `SAGA_TIMEOUT_MS` are given up (skip-locked, each once), and dedup rows older than
 * `DEDUP_RETENTION_HOURS` are deleted.
 */
export function domainGroupSet(options: DomainGroupsOptions = {}): GroupSet {
  let sql: Sql | undefined;
  let relay: OutboxRelay | undefined;
  let ping: Promise<void> | undefined;
  const housekeeping: Periodic[] = [];
  return {
    name: 'order-domain',
    groups: DOMAIN_GROUPS,
    includedByDefault: true,
    create({ config, logger }) {
      sql = createPostgres(config.databaseUrl, { max: config.databasePoolMax, applicationName: 'streamfleet-worker' });
      return createOrderGroups({
        sql,
        // PAYMENT_GATEWAY_URL, else the simulator failing PAYMENT_SIMULATOR_FAILURE_RATE of calls.
        gateway: createPaymentGatewayFromConfig(config),
        ...(config.notificationWebhookUrl ? { notificationWebhookUrl: config.notificationWebhookUrl } : {}),
        logger,
      });
    },
    async start({ config, redis, keys, catalog, logger }) {
      if (!sql) throw new Error('domain groups started before they were created');
      if (options.migrate !== false) {
        await ensureDatabase(config.databaseUrl);
        const result = await migrate(sql);
        if (result.applied.length > 0) logger.info(result, 'migrations applied');
      }
      relay = new OutboxRelay({
        sql,
        databaseUrl: config.databaseUrl,
        producer: new StreamProducer({ redis, keys, catalog }),
        logger,
      });
      relay.start();
      const db = sql;
      if (config.sagaTimeoutMs > 0) {
        const intervalMs = Math.min(30_000, Math.max(100, Math.floor(config.sagaTimeoutMs / 4)));
        housekeeping.push(
          new Periodic({ name: 'saga-expiry', intervalMs, logger }, async () => {
            const orderIds = await expireStaleSagas(db, { olderThanMs: config.sagaTimeoutMs });
            if (orderIds.length > 0) logger.warn({ orderIds }, 'gave up sagas waiting too long; orders cancelled');
          }),
        );
      }
      if (config.dedupRetentionMs > 0) {
        housekeeping.push(
          new Periodic({ name: 'dedup-prune', intervalMs: DEDUP_PRUNE_INTERVAL_MS, logger }, async () => {
            const deleted = await pruneProcessedEvents(db, config.dedupRetentionMs);
            if (deleted > 0) logger.info({ deleted }, 'pruned old dedup rows');
          }),
        );
      }
      for (const task of housekeeping) task.start();
    },
    readinessChecks(): Record<string, ReadinessCheck> {
      const db = sql;
      if (!db) return {};
      return {
        // Every group here and the relay need Postgres. Probes arriving while a `select 1`
        // hangs share it rather than queueing one more on the pool each time.
        postgres: () => {
          ping ??= (async () => {
            await db`select 1`;
          })().finally(() => {
            ping = undefined;
          });
          return ping;
        },
      };
    },
    registerMetrics(metrics: WorkerMetrics) {
      const db = sql;
      if (!db) return;
      // One query per scrape, shared by the three gauges.
      let scrape: Promise<OutboxStats | undefined> | undefined;
      const stats = () =>
        (scrape ??= metrics.withTimeout(outboxStats(db).catch(() => undefined)).finally(() => {
          scrape = undefined;
        }));
      const gauge = (name: string, help: string, read: (s: OutboxStats) => number) =>
        new Gauge({
          name,
          help,
          registers: [metrics.registry],
          async collect() {
            const s = await stats();
            if (s) this.set(read(s));
          },
        });
      gauge(
        'streamfleet_outbox_unpublished',
        'Outbox rows committed and not yet published to Redis by the relay (the same in every worker).',
        (s) => s.unpublished,
      );
      gauge(
        'streamfleet_outbox_oldest_unpublished_age_seconds',
        'How long the oldest unpublished outbox row has waited (0 when none waits): the relay is down or behind.',
        (s) => s.oldestUnpublishedAgeSeconds,
      );
      gauge(
        'streamfleet_outbox_parked',
        'Outbox rows the catalog refused, parked for an operator (outbox.failed_at, last_error): events no group reads.',
        (s) => s.parked,
      );
    },
    // The relay resigns first: its lock goes to another worker while this one drains.
    async handOver() {
      await relay?.close();
    },
    async close() {
      await Promise.all(housekeeping.map((task) => task.close()));
      await relay?.close();
      await sql?.end({ timeout: 5 });
    },
  };
}
