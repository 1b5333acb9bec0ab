import {
  createOrderGroups,
  createPostgres,
  ensureDatabase,
  INVENTORY_GROUP,
  migrate,
  NOTIFICATION_GROUP,
  OutboxRelay,
  PAYMENT_GROUP,
  PROJECTION_GROUP,
  SAGA_GROUP,
  type Sql,
  StreamProducer,
} from '@streamfleet/core';
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

/**
 * The order domain: inventory, payment, notification, order-projection and order-saga,
 * all on the `orders` stream and backed by Postgres, plus the outbox relay that publishes
 * what they (and the API) commit. Every worker running a domain group runs a relay; one
 * leads at a time (advisory lock), the others stand by for failover.
 */
export function domainGroupSet(options: DomainGroupsOptions = {}): GroupSet {
  let sql: Sql | undefined;
  let relay: OutboxRelay | undefined;
  return {
    name: 'order-domain',
    groups: DOMAIN_GROUPS,
    includedByDefault: true,
    create({ config, logger }) {
      sql = createPostgres(config.databaseUrl, { applicationName: 'streamfleet-worker' });
      return createOrderGroups({
        sql,
        ...(config.paymentGatewayUrl ? { paymentGatewayUrl: config.paymentGatewayUrl } : {}),
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
      // A variable, not a literal: `databaseUrl` (the relay's dedicated lock connection) is
      // newer than `sql` in OutboxRelayOptions, and this works with both shapes.
      const relayOptions = {
        sql,
        databaseUrl: config.databaseUrl,
        producer: new StreamProducer({ redis, keys, catalog }),
        logger,
      };
      relay = new OutboxRelay(relayOptions);
      relay.start();
    },
    async close() {
      await relay?.close();
      await sql?.end({ timeout: 5 });
    },
  };
}
