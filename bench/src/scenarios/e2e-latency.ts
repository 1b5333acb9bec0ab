import { Agent, request } from 'node:http';
import { type EventEnvelope, Fleet, type HandlerContext, streamIdTime } from '@streamfleet/core';
import {
  catalog,
  INGEST_TYPE,
  log,
  nowMs,
  orderData,
  percentile,
  REDIS_URL,
  STREAM,
  waitUntil,
  withPrefix,
} from '../common';
import { describeStalls, type ProcessStats, watchProcess } from '../process-watch';
import { forkTsx, startServer } from '../servers/spawn';

export const E2E_RATE = Number(process.env.BENCH_E2E_RATE ?? 1000);
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 5);
const WARMUP_SECONDS = 1;

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface LatencyResult extends Percentiles {
  count: number;
  /** Send -> 202 received (the HTTP part alone). */
  http: Percentiles;
  /** Entry written by Redis (the time in its stream id, 1 ms resolution) -> handler start (the consumer part alone). */
  consumer: Percentiles;
  /**
   * Event-loop delay and GC pauses over the measured seconds, of the API process and of the
   * process running the load generator and the consumer: a stall in both at once that their GC
   * pauses do not explain came from the machine.
   */
  stalls: { api: ProcessStats; load: ProcessStats };
}

function percentiles(values: number[]): Percentiles {
  values.sort((a, b) => a - b);
  return {
    p50: percentile(values, 50),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    max: values.at(-1) ?? Number.NaN,
  };
}

function post(agent: Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Scenario 7: the API in a child process, a streamfleet group here; single-event POSTs
 * at a fixed rate. Each event's `orderId` carries its send time (`m-<epoch ms>` for
 * measured events, `w-...` during the one-second warm-up); the handler records
 * `now - sent` when it starts. Latency = send -> handler start, HTTP request included.
 */
export async function e2eLatency(): Promise<LatencyResult> {
  return withPrefix('e2e', async (prefix) => {
    const latencies: number[] = [];
    const consumerLatencies: number[] = [];
    const httpLatencies: number[] = [];
    let handled = 0;
    const fleet = new Fleet({
      redisUrl: REDIS_URL,
      prefix,
      catalog,
      groups: [
        {
          group: 'latency',
          stream: STREAM,
          handler: (event: EventEnvelope, context: HandlerContext) => {
            const now = nowMs();
            handled++;
            const orderId = (event.data as { orderId: string }).orderId;
            if (!orderId.startsWith('m-')) return;
            latencies.push(now - Number(orderId.slice(2)));
            consumerLatencies.push(now - streamIdTime(context.entryId));
          },
        },
      ],
      consumer: { batchSize: 200, blockMs: 1000, concurrency: 50 },
    });
    const server = await startServer('api', prefix);
    const here = watchProcess();
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    try {
      await fleet.start();
      const url = new URL('/v1/events', server.url);
      const total = E2E_RATE * (E2E_SECONDS + WARMUP_SECONDS);
      const warmup = E2E_RATE * WARMUP_SECONDS;
      const inflight: Promise<number>[] = [];
      let failures = 0;
      const started = performance.now();
      let sent = 0;
      // Open loop: every tick, send whatever the schedule says is due, whether or not earlier requests finished.
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * E2E_RATE));
        if (sent < warmup && due >= warmup) {
          server.resetStats();
          here.reset();
        }
        for (; sent < due; sent++) {
          const sentAt = nowMs();
          const measured = sent >= warmup;
          const orderId = `${measured ? 'm' : 'w'}-${sentAt.toFixed(3)}`;
          const body = JSON.stringify({ type: INGEST_TYPE, aggregateId: orderId, data: orderData(orderId) });
          const p = post(agent, url, body).then(
            (status) => {
              if (measured) httpLatencies.push(nowMs() - sentAt);
              if (status !== 202) failures++;
              return status;
            },
            () => {
              failures++;
              return 0;
            },
          );
          inflight.push(p);
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await Promise.all(inflight);
      const [apiStats, benchStats] = [await server.stats(), here.stats()];

      if (failures > 0) throw new Error(`e2e: ${failures} requests were not accepted`);
      await waitUntil(() => handled >= total, 30_000, 'every e2e event to be handled');
      const result: LatencyResult = {
        count: latencies.length,
        ...percentiles(latencies),
        http: percentiles(httpLatencies),
        consumer: percentiles(consumerLatencies),
        stalls: { api: apiStats, load: benchStats },
      };
      const show = (p: Percentiles) => `p50 ${p.p50.toFixed(2)}, p95 ${p.p95.toFixed(2)}, p99 ${p.p99.toFixed(2)} ms`;
      log(`  e2e at ${E2E_RATE}/s (n=${result.count}): send -> handler ${show(result)}`);
      log(`    of which send -> 202: ${show(result.http)}; XADD -> handler: ${show(result.consumer)}`);
      log(`    API process: ${describeStalls(apiStats)}`);
      log(`    load generator and consumer process: ${describeStalls(benchStats)}`);
      return result;
    } finally {
      here.stop();
      agent.destroy();
      await fleet.close({ timeoutMs: 5000 });
      await server.stop();
    }
  });
}

/**
 * Scenario 7 in a fresh child process (the load generator and the streamfleet group; the API
 * in its own child as before). A long bench run leaves its process with a large heap (the
 * pre-built events, every earlier scenario's clients and garbage), and each major GC of that
 * heap stalls the load generator and the consumer alike: that measures the bench, not the
 * path from API to handler, which in production runs in a worker process of its own.
 */
export function e2eLatencyInFreshProcess(): Promise<LatencyResult> {
  const child = forkTsx(new URL('../e2e-process.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    let settled = false;
    child.once('message', (m: { result?: LatencyResult; error?: string }) => {
      settled = true;
      if (m.result) resolve(m.result);
      else reject(new Error(m.error ?? 'e2e process sent no result'));
    });
    child.once('exit', (code) => {
      if (!settled) reject(new Error(`e2e process exited (code ${code}) without a result`));
    });
  });
}
