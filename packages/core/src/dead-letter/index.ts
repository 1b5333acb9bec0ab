export {
  type BulkDiscardResult,
  type BulkOptions,
  type BulkReplayOptions,
  type BulkReplayResult,
  DeadLetterStream,
  type DeadLetterStreamOptions,
  type ReplayResult,
} from './dead-letter-stream';
export * from './types';
