export {
  createPostgres,
  ensureDatabase,
  inTransaction,
  isPostgresClientError,
  isPostgresUnavailable,
  type PostgresOptions,
  type Queryable,
  type Sql,
  sqlState,
  type TransactionSql,
} from './client';
export { type AppendOptions, type AppendResult, appendToStream, loadEvents, type PendingEvent } from './event-store';
export { MIGRATIONS, type MigrateResult, type Migration, migrate } from './migrations';
export {
  enqueueOutbox,
  OUTBOX_CHANNEL,
  type OutboxMessage,
  type OutboxStats,
  outboxStats,
  pruneOutbox,
} from './outbox';
export { OutboxRelay, type OutboxRelayOptions } from './outbox-relay';
export { isProcessed, markProcessed, pruneProcessedEvents } from './processed-events';
