import type { RedisClient } from '@streamfleet/core';
import {
  type Config,
  ConfigError,
  createCatalog,
  createRedis,
  defaultConsumerName,
  Fleet,
  type GroupDefinition,
  type Logger,
  type ReadinessCheck,
  runReadinessChecks,
  StreamfleetKeys,
} from '@streamfleet/core';
import type { GroupDeps, GroupRegistry, GroupSet } from './groups/registry';
import { HealthServer, type Readiness } from './health/health-server';
import { WorkerMetrics } from './metrics/worker-metrics';

export interface WorkerOptions {
  config: Config;
  registry: GroupRegistry;
  logger: Logger;
  /** Default: core's `<host>-<pid>-<random>`, unique per process. */
  consumerName?: string;
  /** Serve `/healthz`, `/readyz`, `/metrics` on `config.workerPort`. Default true. */
  serveHealth?: boolean;
  /** Collect default process metrics. Default true. */
  defaultMetrics?: boolean;
}

/**
 * One worker process's runtime: the groups `WORKER_GROUPS` selects, run by a core `Fleet`
 * (consumer loops, claims, retry workers), their metrics, and the health endpoints. Knows
 * nothing of signals or `process.exit`: `main.ts` owns those and calls `close()`.
 */
export class Worker {
  readonly consumerName: string;
  readonly metrics: WorkerMetrics;
  /** Bound port of the health server; `undefined` when it could not listen or is off. */
  port: number | undefined;
  private readonly fleet: Fleet;
  private readonly redis: RedisClient;
  private readonly health: HealthServer | undefined;
  private readonly sets: GroupSet[];
  private readonly deps: GroupDeps;
  /** The group sets' dependency checks (e.g. `postgres`), gathered once they started. */
  private readonly checks: Record<string, ReadinessCheck> = {};
  private state: 'new' | 'starting' | 'running' | 'closing' | 'closed' = 'new';

  private constructor(
    private readonly options: WorkerOptions,
    readonly definitions: GroupDefinition[],
    sets: GroupSet[],
    deps: GroupDeps,
    redis: RedisClient,
    keys: StreamfleetKeys,
    fleet: Fleet,
  ) {
    this.sets = sets;
    this.deps = deps;
    this.redis = redis;
    this.fleet = fleet;
    this.consumerName = fleet.consumerName;
    this.metrics = new WorkerMetrics({
      redis,
      keys,
      groups: definitions.map((d) => ({ group: d.group, stream: d.stream })),
      retryQueues: fleet.retryQueues,
      ...(options.defaultMetrics === undefined ? {} : { defaultMetrics: options.defaultMetrics }),
    });
    for (const set of sets) set.registerMetrics?.(this.metrics);
    this.health =
      options.serveHealth === false
        ? undefined
        : new HealthServer({
            port: options.config.workerPort,
            logger: options.logger,
            readiness: () => this.readiness(),
            metrics: () => this.metrics.render(),
          });
  }

  /**
   * Selects and builds the groups (throws `UnknownGroupError` for a bad `WORKER_GROUPS`, and
   * `ConfigError` for a `RETRY_OVERRIDES` naming no known group); connects lazily.
   */
  static async create(options: WorkerOptions): Promise<Worker> {
    const { config, logger } = options;
    const selection = options.registry.select(config.workerGroups);
    checkRetryOverrides(config, options.registry);
    const catalog = createCatalog();
    for (const { set } of selection) set.registerEvents?.(catalog);
    const keys = new StreamfleetKeys(config.prefix);
    const redis = createRedis(config.redisUrl, {
      cluster: config.redisCluster,
      connectionName: `${config.prefix}:worker`,
    });
    const definitions: GroupDefinition[] = [];
    const deps: GroupDeps = { config, catalog, redis, keys, logger };
    for (const { set, groups } of selection) {
      const built = await set.create({ ...deps, logger: logger.child({ groupSet: set.name }) });
      definitions.push(...built.filter((d) => groups.has(d.group)));
    }
    const consumerName = options.consumerName ?? defaultConsumerName();
    // The metrics are the fleet's observer; they exist only once the worker does, hence the indirection.
    let observerTarget: WorkerMetrics | undefined;
    const fleet = new Fleet({
      redisUrl: config.redisUrl,
      redisCluster: config.redisCluster,
      prefix: config.prefix,
      catalog,
      groups: definitions,
      consumerName,
      retry: {
        maxAttempts: config.retry.maxAttempts,
        baseDelayMs: config.retry.baseDelayMs,
        maxDelayMs: config.retry.maxDelayMs,
        jitter: config.retry.jitter,
      },
      retryOverrides: config.retry.overrides,
      consumer: config.consumer,
      logger,
      observer: {
        handled: (group, ms) => observerTarget?.handled(group, ms),
        failed: (group) => observerTarget?.failed(group),
        timedOut: (group) => observerTarget?.timedOut(group),
        retried: (group) => observerTarget?.retried(group),
        deadLettered: (group, reason) => observerTarget?.deadLettered(group, reason),
      },
    });
    const worker = new Worker(
      options,
      definitions,
      selection.map((s) => s.set),
      deps,
      redis,
      keys,
      fleet,
    );
    observerTarget = worker.metrics;
    worker.watchConnection(fleet.redis, 'fleet');
    worker.watchConnection(redis, 'worker');
    return worker;
  }

  /** Serves the endpoints first (so `/healthz` answers while Redis is still coming up), then consumes. */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const { logger, config } = this.options;
    if (this.health) {
      this.port = await this.health.listen();
      if (this.port !== undefined) logger.info({ port: this.port }, `health and metrics on port ${this.port}`);
    }
    if (this.definitions.length === 0) {
      logger.warn('no consumer groups registered or selected: this worker only serves its endpoints');
    }
    for (const set of this.sets) {
      await set.start?.({ ...this.deps, logger: logger.child({ groupSet: set.name }) });
      for (const [name, check] of Object.entries(set.readinessChecks?.() ?? {})) {
        this.checks[name in this.checks ? `${set.name}/${name}` : name] = check;
      }
    }
    await this.fleet.start();
    if (this.state !== 'starting') return; // closed while starting
    this.state = 'running';
    logger.info(
      {
        consumer: this.consumerName,
        groups: this.definitions.map((d) => d.group),
        prefix: config.prefix,
        visibilityTimeoutMs: config.consumer.visibilityTimeoutMs,
      },
      'worker started',
    );
  }

  /**
   * Logs connection loss and recovery once per outage (ioredis reconnects by itself and
   * would otherwise print "Unhandled error event" on every attempt).
   */
  private watchConnection(connection: RedisClient, name: string): void {
    const { logger } = this.options;
    let down = false;
    let lastError: string | undefined;
    // 'error' is not emitted when the first reconnect attempt succeeds; 'reconnecting' always is.
    connection.on('error', (err: Error) => {
      lastError = err.message;
    });
    connection.on('reconnecting', () => {
      if (down) return;
      down = true;
      logger.warn({ connection: name, err: lastError }, 'redis connection lost; reconnecting');
    });
    connection.on('ready', () => {
      if (!down) return;
      down = false;
      logger.info({ connection: name }, 'redis connection restored');
    });
  }

  /**
   * Ready while running with Redis connected and every group set's check (e.g. `postgres`)
   * answering within 2 s (so a hung database answers 503 rather than hanging the probe). A
   * failing dependency only makes the worker not ready: it keeps running and turns ready
   * again once the dependency answers.
   */
  async readiness(): Promise<Readiness> {
    const notReady = this.stateReason();
    if (notReady) return { ready: false, reason: notReady };
    if (Object.keys(this.checks).length === 0) return { ready: true };
    const checks = await runReadinessChecks(this.checks);
    const afterChecks = this.stateReason(); // closing may have begun meanwhile
    if (afterChecks) return { ready: false, reason: afterChecks };
    const failed = Object.entries(checks).filter(([, result]) => result !== 'ok');
    if (failed.length === 0) return { ready: true };
    return { ready: false, reason: failed.map(([name, result]) => `${name}: ${result}`).join('; '), checks };
  }

  /** Why the worker is not ready on its own account (lifecycle, Redis), if it is not. */
  private stateReason(): string | undefined {
    if (this.state === 'closing' || this.state === 'closed') return 'shutting down';
    if (this.state !== 'running') return 'starting';
    if (this.fleet.redis.status !== 'ready') return `redis ${this.fleet.redis.status}`;
    return undefined;
  }

  /** Marks the worker not ready (load balancers and orchestrators stop counting on it). */
  markClosing(): void {
    if (this.state !== 'closed') this.state = 'closing';
  }

  /**
   * Stops consuming: in-flight handlers get `timeoutMs` to finish, their acks are flushed;
   * what is left stays pending and is claimed by another worker after the visibility timeout.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    const { logger } = this.options;
    logger.info({ timeoutMs: options.timeoutMs }, 'worker stopping');
    for (const set of this.sets)
      await set.handOver?.().catch((err: unknown) => logger.error({ err }, 'hand-over failed'));
    await this.fleet.close(options);
    for (const set of this.sets) await set.close?.().catch((err: unknown) => logger.error({ err }, 'close failed'));
    await this.redis.quit().catch(() => this.redis.disconnect());
    await this.health?.close();
    this.state = 'closed';
    logger.info('worker stopped');
  }
}

/**
 * Refuses `RETRY_OVERRIDES` keys that no group set of the registry defines: a misspelt group
 * would otherwise be ignored and the group keep the default policy. Checked against every
 * known group, not only the selected ones: workers running different groups share the env.
 */
function checkRetryOverrides(config: Config, registry: GroupRegistry): void {
  const known = registry.knownGroups();
  const unknown = Object.keys(config.retry.overrides).filter((group) => !known.includes(group));
  if (unknown.length === 0) return;
  const message = `unknown group(s) ${unknown.join(', ')}; known groups: ${known.length ? known.join(', ') : '(none)'}`;
  throw new ConfigError(`Invalid environment:\n  RETRY_OVERRIDES: ${message}`, [
    { variable: 'RETRY_OVERRIDES', message },
  ]);
}
