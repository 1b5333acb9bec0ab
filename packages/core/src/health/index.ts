export {
  DEFAULT_READINESS_TIMEOUT_MS,
  type ReadinessCheck,
  type ReadinessCheckOptions,
  runReadinessChecks,
} from './readiness';
