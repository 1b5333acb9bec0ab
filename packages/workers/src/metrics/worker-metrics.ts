import type { DeadLetterReason, GroupObserver, RedisClient, RetryQueues, StreamfleetKeys } from '@streamfleet/core';
import { infoList } from '@streamfleet/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface WorkerMetricsOptions {
  /** Command connection used by the gauges' collect (XINFO GROUPS, XLEN). */
  redis: RedisClient;
  keys: StreamfleetKeys;
  /** The groups this process runs, with their streams: the gauges cover these. */
  groups: readonly { group: string; stream: string }[];
  /** The fleet's retry queues, for the retrying gauge (absent: no such gauge). */
  retryQueues?: Pick<RetryQueues, 'counts'>;
  /** A scrape must not hang while Redis is down: gauges give up after this. */
  collectTimeoutMs?: number;
  /**
   * Default process metrics (CPU, memory, event loop lag) as `streamfleet_worker_process_*` and
   * `streamfleet_worker_nodejs_*` (the API's are `streamfleet_api_*`). Off in tests that build
   * several registries.
   */
  defaultMetrics?: boolean;
}

/**
 * The worker's Prometheus metrics in a registry of its own (never prom-client's global one,
 * so several fleets or tests in one process don't collide). It is the fleet's
 * `GroupObserver`: the engine calls it on the hot path, where it only bumps counters.
 * Pending, lag, retrying, paused, dead-lettered and dead-letter length are read from Redis at scrape time.
 */
export class WorkerMetrics implements GroupObserver {
  readonly registry = new Registry();
  private readonly processed: Counter<'group'>;
  private readonly failures: Counter<'group'>;
  private readonly timeouts: Counter<'group'>;
  private readonly retries: Counter<'group'>;
  private readonly deadLetters: Counter<'group' | 'reason'>;
  private readonly duration: Histogram<'group'>;

  constructor(private readonly options: WorkerMetricsOptions) {
    const registers = [this.registry];
    this.processed = new Counter({
      name: 'streamfleet_events_processed_total',
      help: 'Events handled successfully, by group (first deliveries and retries).',
      labelNames: ['group'],
      registers,
    });
    this.failures = new Counter({
      name: 'streamfleet_events_failed_total',
      help: 'Handler failures, by group.',
      labelNames: ['group'],
      registers,
    });
    this.timeouts = new Counter({
      name: 'streamfleet_handler_timeouts_total',
      help: 'Handler attempts that ran past the handler timeout (each also counted as a failure), by group.',
      labelNames: ['group'],
      registers,
    });
    this.retries = new Counter({
      name: 'streamfleet_events_retried_total',
      help: 'Retries scheduled, by group.',
      labelNames: ['group'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'streamfleet_events_dead_lettered_total',
      help: 'Events this process wrote to the dead-letter stream, by group and reason.',
      labelNames: ['group', 'reason'],
      registers,
    });
    this.duration = new Histogram({
      name: 'streamfleet_handler_duration_seconds',
      help: 'Duration of successful handler calls, by group.',
      labelNames: ['group'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    for (const { group } of options.groups) {
      // Zero series from the start, so rate() works from the first scrape.
      this.processed.inc({ group }, 0);
      this.failures.inc({ group }, 0);
      this.timeouts.inc({ group }, 0);
      this.retries.inc({ group }, 0);
    }

    const self = this;
    const pending = new Gauge({
      name: 'streamfleet_group_pending',
      help: 'Entries delivered to a group and not yet acknowledged (XINFO GROUPS pending).',
      labelNames: ['group', 'stream'],
      registers,
      async collect() {
        const infos = await self.groupInfos();
        for (const i of infos) if (i.pending !== undefined) this.set({ group: i.group, stream: i.stream }, i.pending);
      },
    });
    new Gauge({
      name: 'streamfleet_group_lag',
      help: 'Entries in the stream not yet delivered to a group (XINFO GROUPS lag).',
      labelNames: ['group', 'stream'],
      registers,
      async collect() {
        const infos = await self.groupInfos();
        for (const i of infos) if (i.lag !== undefined) this.set({ group: i.group, stream: i.stream }, i.lag);
      },
    });
    new Gauge({
      name: 'streamfleet_dead_letter_length',
      help: 'Entries in the dead-letter stream (XLEN).',
      registers,
      async collect() {
        const length = await self.withTimeout(self.options.redis.xlen(self.options.keys.deadLetter));
        if (length !== undefined) this.set(length);
      },
    });
    new Gauge({
      name: 'streamfleet_group_dead_lettered',
      help: 'Entries of a group in the dead-letter stream, waiting for a replay or a discard (GET /admin/groups deadLettered).',
      labelNames: ['group'],
      registers,
      async collect() {
        const counts = await self.withTimeout(self.options.redis.hgetall(self.options.keys.deadLetterCounts));
        if (counts === undefined) return;
        for (const { group } of self.options.groups) this.set({ group }, Number(counts[group] ?? 0));
      },
    });
    new Gauge({
      name: 'streamfleet_group_paused',
      help: 'Whether an operator paused the group (1) or not (0): POST /admin/groups/:group/pause.',
      labelNames: ['group'],
      registers,
      async collect() {
        const paused = await self.withTimeout(self.options.redis.smembers(self.options.keys.pausedGroups));
        if (paused === undefined) return;
        for (const { group } of self.options.groups) this.set({ group }, paused.includes(group) ? 1 : 0);
      },
    });
    const { retryQueues } = options;
    if (retryQueues) {
      new Gauge({
        name: 'streamfleet_group_retrying',
        help: 'Events a group is retrying: its retry jobs waiting, delayed or running (GET /admin/retries).',
        labelNames: ['group'],
        registers,
        async collect() {
          await Promise.all(
            self.options.groups.map(async ({ group }) => {
              const c = await self.withTimeout(retryQueues.counts(group).catch(() => undefined));
              if (c) this.set({ group }, c.waiting + c.delayed + c.active);
            }),
          );
        },
      });
    }
    void pending;
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'streamfleet_worker_' });
  }

  handled(group: string, durationMs: number): void {
    this.processed.inc({ group });
    this.duration.observe({ group }, durationMs / 1000);
  }

  failed(group: string): void {
    this.failures.inc({ group });
  }

  timedOut(group: string): void {
    this.timeouts.inc({ group });
  }

  retried(group: string): void {
    this.retries.inc({ group });
  }

  deadLettered(group: string, reason: DeadLetterReason): void {
    this.deadLetters.inc({ group, reason });
  }

  /** The Prometheus text exposition of everything in the registry. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  // One XINFO GROUPS per stream per scrape, shared by the pending and lag gauges.
  private infoScrape: Promise<GroupInfo[]> | undefined;

  private groupInfos(): Promise<GroupInfo[]> {
    if (!this.infoScrape) {
      this.infoScrape = this.readGroupInfos().finally(() => {
        this.infoScrape = undefined;
      });
    }
    return this.infoScrape;
  }

  private async readGroupInfos(): Promise<GroupInfo[]> {
    const wanted = new Map<string, Set<string>>();
    for (const { group, stream } of this.options.groups) {
      const set = wanted.get(stream) ?? new Set<string>();
      set.add(group);
      wanted.set(stream, set);
    }
    const out: GroupInfo[] = [];
    await Promise.all(
      [...wanted].map(async ([stream, groups]) => {
        const reply = await this.withTimeout(
          this.options.redis.xinfo('GROUPS', this.options.keys.stream(stream)).catch(() => undefined),
        );
        for (const record of infoList(reply)) {
          const group = String(record.name);
          if (!groups.has(group)) continue;
          out.push({ group, stream, pending: num(record.pending), lag: num(record.lag) });
        }
      }),
    );
    return out;
  }

  /** `promise`'s value, or undefined once the collect timeout passed (the gauge keeps its last value). */
  async withTimeout<T>(promise: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), this.options.collectTimeoutMs ?? 1000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

interface GroupInfo {
  group: string;
  stream: string;
  pending: number | undefined;
  lag: number | undefined;
}

function num(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined; // lag is nil when Redis cannot tell
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}
