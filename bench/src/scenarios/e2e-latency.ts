import { Agent, request } from 'node:http';
import { type EventEnvelope, Fleet } from '@streamfleet/core';
import {
  catalog,
  EVENT_TYPE,
  log,
  nowMs,
  orderData,
  percentile,
  REDIS_URL,
  STREAM,
  waitUntil,
  withPrefix,
} from '../common';
import { startServer } from '../servers/spawn';

export const E2E_RATE = Number(process.env.BENCH_E2E_RATE ?? 1000);
const E2E_SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 5);
const WARMUP_SECONDS = 1;

export interface LatencyResult {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
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
    let handled = 0;
    const fleet = new Fleet({
      redisUrl: REDIS_URL,
      prefix,
      catalog,
      groups: [
        {
          group: 'latency',
          stream: STREAM,
          handler: (event: EventEnvelope) => {
            const now = nowMs();
            handled++;
            const orderId = (event.data as { orderId: string }).orderId;
            if (orderId.startsWith('m-')) latencies.push(now - Number(orderId.slice(2)));
          },
        },
      ],
      consumer: { batchSize: 200, blockMs: 1000, concurrency: 50 },
    });
    const server = await startServer('api', prefix);
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
        for (; sent < due; sent++) {
          const orderId = `${sent < warmup ? 'w' : 'm'}-${nowMs().toFixed(3)}`;
          const body = JSON.stringify({ type: EVENT_TYPE, aggregateId: orderId, data: orderData(orderId) });
          const p = post(agent, url, body).then(
            (status) => {
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

      if (failures > 0) throw new Error(`e2e: ${failures} requests were not accepted`);
      await waitUntil(() => handled >= total, 30_000, 'every e2e event to be handled');
      latencies.sort((a, b) => a - b);
      const result = {
        count: latencies.length,
        p50: percentile(latencies, 50),
        p95: percentile(latencies, 95),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? Number.NaN,
      };
      log(
        `  e2e at ${E2E_RATE}/s: p50 ${result.p50.toFixed(2)} ms, p95 ${result.p95.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms (n=${result.count})`,
      );
      return result;
    } finally {
      agent.destroy();
      await fleet.close({ timeoutMs: 5000 });
      await server.stop();
    }
  });
}
