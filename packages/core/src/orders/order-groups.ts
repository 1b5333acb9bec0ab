import { createInventoryGroup } from '../inventory/inventory-service';
import type { Logger } from '../logging/index';
import { createNotificationGroup } from '../notification/notification-service';
import { createPaymentGateway, type PaymentGateway } from '../payment/payment-gateway';
import { createPaymentGroup } from '../payment/payment-service';
import { createProjectionGroup } from '../projection/order-projection';
import { createSagaGroup } from '../saga/order-saga';
import type { Sql } from '../store/client';
import type { GroupDefinition } from '../streams/handler';

export interface OrderGroupsDeps {
  sql: Sql;
  /** Default: the built-in simulator. Workers pass `createPaymentGatewayFromConfig(config)`. */
  gateway?: PaymentGateway;
  /** `NOTIFICATION_WEBHOOK_URL`; notifications are only recorded when unset. */
  notificationWebhookUrl?: string;
  fetch?: typeof fetch;
  logger?: Logger;
}

/**
 * Every consumer group of the order domain, all reading the `orders` stream: inventory,
 * payment, notification, order-projection and order-saga. Pass them (or a subset, by
 * `group`) to a `Fleet`; run an `OutboxRelay` beside them to publish what they emit.
 */
export function createOrderGroups(deps: OrderGroupsDeps): GroupDefinition[] {
  const gateway = deps.gateway ?? createPaymentGateway();
  return [
    createInventoryGroup({ sql: deps.sql }),
    createPaymentGroup({ sql: deps.sql, gateway, ...(deps.logger ? { logger: deps.logger } : {}) }),
    createNotificationGroup({
      sql: deps.sql,
      ...(deps.notificationWebhookUrl ? { webhookUrl: deps.notificationWebhookUrl } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    }),
    createProjectionGroup({ sql: deps.sql }),
    createSagaGroup({ sql: deps.sql }),
  ];
}
