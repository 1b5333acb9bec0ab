export { DEFAULT_RETRY, RetryPolicy, type RetryPolicyOptions } from './retry-policy';
export {
  RETRY_BACKOFF_TYPE,
  type RetryCounts,
  type RetryJobData,
  RetryQueues,
  type RetryQueuesOptions,
  retryJobId,
} from './retry-queues';
export { RetryWorker, type RetryWorkerOptions } from './retry-worker';
