export { DEFAULT_RETRY, RetryPolicy, type RetryPolicyOptions } from './retry-policy';
export {
  type DeadLetterNowResult,
  type DeadLetterNowSkip,
  lastFailureOfRound,
  RETRY_BACKOFF_TYPE,
  RETRYING_STATES,
  type RetryCounts,
  type RetryingState,
  type RetryJobData,
  type RetryJobInfo,
  type RetryJobListOptions,
  type RetryJobPage,
  RetryQueues,
  RetryQueuesClosedError,
  type RetryQueuesOptions,
  type RunNowResult,
  type RunNowSkip,
  retryJobId,
} from './retry-queues';
export { RetryWorker, type RetryWorkerOptions } from './retry-worker';
