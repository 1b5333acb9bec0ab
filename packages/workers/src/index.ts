export * from './groups/index';
export { HealthServer, type HealthServerOptions } from './health/health-server';
export { WorkerMetrics, type WorkerMetricsOptions } from './metrics/worker-metrics';
export { handleShutdownSignals, SHUTDOWN_SIGNALS, type ShutdownOptions, type ShutdownSignal } from './signals';
export { Worker, type WorkerOptions } from './worker';
