import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  createCatalog,
  createEvent,
  type EventEnvelope,
  orderCreatedData,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import { cleanupPrefix } from '@streamfleet/core/testing';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Events per throughput run. */
export const N = Number(process.env.BENCH_N ?? 50_000);
/** Runs per throughput scenario; the median is reported. */
export const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
/**
 * Entries per XREADGROUP, for the raw loop and streamfleet alike, so that scenario 3 measures
 * what streamfleet adds per event rather than a different batch size. (streamfleet's own
 * default, CONSUMER_BATCH_SIZE=200, is measured too: scenario 3b.)
 */
export const READ_COUNT = 500;
/** Stream every scenario writes to (the reference domain's stream). */
export const STREAM = 'orders';
export const EVENT_TYPE = 'order.created';
/**
 * What the HTTP scenarios post. `order.created` is the order service's own event (published
 * through its outbox), which the ingestion API refuses; this type carries the same data,
 * validated by the same schema, on the same stream, from an outside producer.
 */
export const INGEST_TYPE = 'bench.order_placed';

/** The reference domain's catalog (its `order.created` event), plus the type the HTTP scenarios post. */
export const catalog = createCatalog().register({
  type: INGEST_TYPE,
  schemaVersion: 1,
  stream: STREAM,
  schema: orderCreatedData,
  description: 'An order placed, as an outside producer reports it (the HTTP scenarios).',
});

export function benchPrefix(label: string): string {
  return `bench-${label}-${randomBytes(4).toString('hex')}`;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** An `order.created` payload; `orderId` carries the index (or a send timestamp for latency runs). */
export function orderData(orderId: string): unknown {
  return {
    orderId,
    customerId: 'cust-42',
    items: [
      { sku: 'SKU-1', quantity: 2, unitPrice: 1250 },
      { sku: 'SKU-2', quantity: 1, unitPrice: 990 },
    ],
    total: 3490,
    currency: 'EUR',
  };
}

export function makeEvent(orderId: string): EventEnvelope {
  return createEvent({ type: EVENT_TYPE, data: orderData(orderId), aggregateId: orderId });
}

export function makeEvents(n: number): EventEnvelope[] {
  const events: EventEnvelope[] = new Array(n);
  for (let i = 0; i < n; i++) events[i] = makeEvent(`ord-${i}`);
  return events;
}

export function newRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: null });
}

/** Writes `events` to the stream exactly as streamfleet's producer does (same fields, same sizes). */
export async function prefill(redis: Redis, prefix: string, events: readonly EventEnvelope[]): Promise<void> {
  const producer = new StreamProducer({ redis, keys: new StreamfleetKeys(prefix) });
  for (let i = 0; i < events.length; i += 2000) {
    await producer.publishMany(events.slice(i, i + 2000).map((event) => ({ stream: STREAM, event })));
  }
}

/** Runs `body` with a fresh prefix, always deleting its keys afterwards. */
export async function withPrefix<T>(label: string, body: (prefix: string) => Promise<T>): Promise<T> {
  const prefix = benchPrefix(label);
  try {
    return await body(prefix);
  } finally {
    await cleanupPrefix(REDIS_URL, prefix);
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export async function waitUntil(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Entries of a group delivered and not yet acknowledged (XPENDING summary). */
export async function pendingCount(redis: Redis, streamKey: string, group: string): Promise<number> {
  const reply = (await redis.xpending(streamKey, group)) as [number | string, ...unknown[]];
  return Number(reply[0]);
}

export function fmt(n: number | null): string {
  if (n === null || Number.isNaN(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

export function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function machine(redisVersion: string) {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, redisVersion };
}

export async function redisVersion(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
}

/**
 * What one Redis round trip costs this process on this machine: sequential PINGs, each
 * awaited. Most of it is the socket write and read (system calls), whose cost varies a lot
 * between hosts; a failed event's path takes several round trips, a happy event a share of one.
 */
export async function roundTrip(redis: Redis, count = 2000): Promise<{ cpuUs: number; wallUs: number }> {
  for (let i = 0; i < 1000; i++) await redis.ping();
  const clock = startClock();
  for (let i = 0; i < count; i++) await redis.ping();
  const { cpuUsPerEvent, ms } = clock.stop(count);
  return { cpuUs: cpuUsPerEvent, wallUs: (ms * 1000) / count };
}

export interface Measured {
  /** Events (or jobs) per wall-clock second. */
  perSecond: number;
  /** CPU time this process spent per event (user + system), in microseconds. Less sensitive to other load. */
  cpuUsPerEvent: number;
  /** CPU time the Redis server spent per event over the same window (user + system, from INFO), in microseconds. */
  redisCpuUsPerEvent: number;
}

type ProcessMeasured = Omit<Measured, 'redisCpuUsPerEvent'> & { ms: number };

/** Starts a wall clock and this process's CPU clock; `stop(n)` turns them into rates for n events. */
export function startClock(): { stop(n: number): ProcessMeasured } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return {
    stop(n: number) {
      const ms = performance.now() - wall;
      const used = process.cpuUsage(cpu);
      return { ms, perSecond: (n / ms) * 1000, cpuUsPerEvent: (used.user + used.system) / n };
    },
  };
}

/** CPU time the Redis server has used since it started (user + system, every thread), in microseconds. */
async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (field: string) => Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
}

/**
 * `startClock()` plus the Redis server's CPU clock, read through `redis` just outside the
 * window. Nothing else is meant to use this Redis while the bench runs.
 */
export async function startClocks(redis: Redis): Promise<{ stop(n: number): Promise<Measured & { ms: number }> }> {
  const redisBefore = await redisCpuUs(redis);
  const clock = startClock();
  return {
    async stop(n: number) {
      const measured = clock.stop(n);
      return { ...measured, redisCpuUsPerEvent: ((await redisCpuUs(redis)) - redisBefore) / n };
    },
  };
}

function cpuTimes(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}

/** Fraction of the machine's CPU time that was idle over `ms` (Linux; 1 elsewhere). */
export async function idleFraction(ms = 500): Promise<number> {
  if (!existsSync('/proc/stat')) return 1;
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTimes();
  return b.total === a.total ? 1 : (b.idle - a.idle) / (b.total - a.total);
}

const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_S ?? 20) * 1000;

/**
 * Waits (at most BENCH_QUIET_WAIT_S, default 20 s) until at least 60% of the machine's CPU
 * is idle, so that scenarios do not race other work. Returns the idle fraction it saw last.
 */
export async function waitForQuiet(label: string): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  let idle = await idleFraction();
  while (idle < 0.6 && Date.now() < deadline) idle = await idleFraction(1000);
  if (idle < 0.6) log(`  (${label}: machine busy, only ${Math.round(idle * 100)}% CPU idle; measuring anyway)`);
  return idle;
}
