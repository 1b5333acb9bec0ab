import { type EventEnvelope, Fleet, type HandlerContext } from '@streamfleet/core';
import {
  catalog,
  type Measured,
  newRedis,
  pendingCount,
  prefill,
  READ_COUNT,
  REDIS_URL,
  STREAM,
  startClocks,
  waitUntil,
  withPrefix,
} from '../common';

/** Retry base delay of scenario 5b: long enough that no retry runs inside the measured window. */
export const DEFERRED_RETRY_MS = 60_000;
/** streamfleet's default CONSUMER_BATCH_SIZE (scenario 3b). */
export const DEFAULT_BATCH_SIZE = 200;
/** Entries per read: the raw loop's COUNT unless overridden; concurrency: streamfleet's default. */
export const FLEET_BATCH_SIZE = Number(process.env.BENCH_FLEET_BATCH ?? READ_COUNT);
export const FLEET_CONCURRENCY = Number(process.env.BENCH_FLEET_CONCURRENCY ?? 50);
/** How long a retry job may wait to be stored with others (streamfleet's default unless set; 0 for before/after). */
const RETRY_LINGER_MS = process.env.BENCH_RETRY_LINGER_MS ? Number(process.env.BENCH_RETRY_LINGER_MS) : undefined;

export interface FleetRunOptions {
  /** Entries per XREADGROUP. Default FLEET_BATCH_SIZE. */
  batchSize?: number;
  /** Consumer groups on the one stream (fan-out). Default 1. */
  groups?: number;
  /** Every `failEvery`-th event throws on its first attempt (100 -> 1%). */
  failEvery?: number;
  /** Retry base delay (default 10 ms). A long one keeps retries out of the measured window. */
  retryBaseDelayMs?: number;
  /** Called right before `fleet.start()` and right after the run is done (profiling). */
  hooks?: { started?: () => Promise<void>; finished?: () => Promise<void> };
}

/** `perSecond`: handled events per second (every group counted) until all were acknowledged. */
export interface FleetRunResult extends Measured {
  /** Events whose first attempt failed (retried through BullMQ). */
  failed: number;
  /** Milliseconds from start until the failed events' retries had also succeeded. */
  retriesDoneMs: number | null;
  /** Milliseconds from start until the handlers had seen every happy-path event (acks may still be pending). */
  handlersDoneMs: number;
  /** Milliseconds from start until XPENDING was 0 (the measured end). */
  ackedMs: number;
}

/**
 * streamfleet: N pre-filled entries, `groups` consumer groups with a no-op handler, one
 * consumer loop per group in this process. Timed from `fleet.start()` until every group
 * has handled its (happy-path) events and XPENDING is 0 for each group.
 */
export async function fleetRun(
  events: readonly EventEnvelope[],
  options: FleetRunOptions = {},
): Promise<FleetRunResult> {
  const groupCount = options.groups ?? 1;
  const failEvery = options.failEvery;
  // Events are `ord-<index>` (makeEvents); every failEvery-th index fails once. Deciding from the
  // index costs the handler a substring and a parse, not a hash lookup of every event id.
  const failingCount = failEvery ? Math.ceil(events.length / failEvery) : 0;
  const happyPerGroup = events.length - failingCount;
  const prefixLength = 'ord-'.length;

  return withPrefix('fleet', async (prefix) => {
    const seed = newRedis();
    let fleet: Fleet | undefined;
    try {
      await prefill(seed, prefix, events);
      let handled = 0;
      let retried = 0;
      const noop = () => {
        handled++;
      };
      const failingOnce = (event: EventEnvelope, context: HandlerContext) => {
        const index = Number.parseInt((event.aggregateId as string).slice(prefixLength), 10);
        if (index % (failEvery as number) === 0) {
          if (context.attempt === 1) throw new Error('bench: planned failure');
          retried++;
          return;
        }
        handled++;
      };
      const handler = failEvery ? failingOnce : noop;
      fleet = new Fleet({
        redisUrl: REDIS_URL,
        prefix,
        catalog,
        groups: Array.from({ length: groupCount }, (_, g) => ({ group: `g${g}`, stream: STREAM, handler })),
        retry: {
          maxAttempts: 3,
          baseDelayMs: options.retryBaseDelayMs ?? 10,
          maxDelayMs: Math.max(100, options.retryBaseDelayMs ?? 10),
        },
        retryLingerMs: RETRY_LINGER_MS,
        consumer: { batchSize: options.batchSize ?? FLEET_BATCH_SIZE, blockMs: 1000, concurrency: FLEET_CONCURRENCY },
      });
      const key = fleet.keys.stream(STREAM);
      await options.hooks?.started?.();
      const clock = await startClocks(seed);
      const started = performance.now();
      await fleet.start();
      await waitUntil(() => handled >= happyPerGroup * groupCount, 300_000, 'handlers');
      const handlersDoneMs = performance.now() - started;
      // Every happy-path entry handled; now wait for the acks (and, with failures, the retry jobs' acks).
      await waitUntil(
        async () => {
          for (let g = 0; g < groupCount; g++) if ((await pendingCount(seed, key, `g${g}`)) !== 0) return false;
          return true;
        },
        60_000,
        'XPENDING = 0',
      );
      const measured = await clock.stop(happyPerGroup * groupCount);
      await options.hooks?.finished?.();
      let retriesDoneMs: number | null = null;
      if (failingCount > 0 && (options.retryBaseDelayMs ?? 10) <= 1000) {
        await waitUntil(() => retried >= failingCount * groupCount, 60_000, 'retries to succeed');
        retriesDoneMs = performance.now() - started;
      }
      return {
        perSecond: measured.perSecond,
        cpuUsPerEvent: measured.cpuUsPerEvent,
        redisCpuUsPerEvent: measured.redisCpuUsPerEvent,
        failed: failingCount * groupCount,
        retriesDoneMs,
        handlersDoneMs,
        ackedMs: measured.ms,
      };
    } finally {
      await fleet?.close({ timeoutMs: 5000 });
      seed.disconnect();
    }
  });
}
