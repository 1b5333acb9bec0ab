import { createCatalog } from '../catalog';
import { Fleet } from '../fleet/fleet';
import type { Logger } from '../logging/index';
import type { RetryPolicyOptions } from '../retry/retry-policy';
import type { Sql } from '../store/client';
import { OutboxRelay } from '../store/outbox-relay';
import type { GroupDefinition, GroupObserver } from '../streams/handler';

export interface FleetWithRelayOptions {
  redisUrl: string;
  /** The spec's own key prefix (see `uniquePrefix`). */
  prefix: string;
  groups: GroupDefinition[];
  retry: Partial<RetryPolicyOptions>;
  observer?: GroupObserver;
  /** The pool the relay reads the outbox with. */
  sql: Sql;
  /** The same database, for the relay's leader lock. */
  databaseUrl: string;
  relayLogger?: Logger;
}

/**
 * `groups` running on a started `Fleet`, fed by a started `OutboxRelay`: the worker's set-up,
 * polling fast so tests settle quickly. The caller closes the relay, then the fleet.
 */
export async function startFleetWithRelay(
  options: FleetWithRelayOptions,
): Promise<{ fleet: Fleet; relay: OutboxRelay }> {
  const fleet = new Fleet({
    redisUrl: options.redisUrl,
    prefix: options.prefix,
    catalog: createCatalog(),
    groups: options.groups,
    retry: options.retry,
    consumer: { blockMs: 50, visibilityTimeoutMs: 5000 },
    observer: options.observer,
  });
  await fleet.start();
  const relay = new OutboxRelay({
    sql: options.sql,
    databaseUrl: options.databaseUrl,
    producer: fleet.producer,
    pollIntervalMs: 20,
    acquireIntervalMs: 50,
    logger: options.relayLogger,
  });
  relay.start();
  return { fleet, relay };
}
