export {
  type BulkDiscardResult,
  type BulkOptions,
  type BulkReplayOptions,
  type BulkReplayResult,
  type BulkSelection,
  type DeadLetterRemoval,
  DeadLetterStream,
  type DeadLetterStreamOptions,
  MAX_FAILURE_HISTORY,
  type ReplayResult,
} from './dead-letter-stream';
export * from './types';
