import { testRedisUrl, waitFor } from '@streamfleet/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetHarness } from '../support/fleet-harness';

const BACKLOG = 4000;
const ENV = {
  WORKER_GROUPS: 'e2e-a',
  // Handlers that wait (like a database or HTTP call) with bounded concurrency: a process's
  // throughput is capped by concurrency / latency, which adding processes raises.
  E2E_HANDLER_DELAY_MS: '20',
  CONSUMER_CONCURRENCY: '10',
  CONSUMER_BATCH_SIZE: '50',
  CONSUMER_BLOCK_MS: '200',
};

/** Starts `workers` processes, then publishes a backlog and times how long they take to drain it. */
async function drainRate(
  fleet: FleetHarness,
  workers: number,
): Promise<{ ms: number; rate: number; shares: number[] }> {
  const procs = Array.from({ length: workers }, () => fleet.spawn());
  const ports = await Promise.all(procs.map((w) => w.ready()));
  const started = Date.now();
  for (let from = 0; from < BACKLOG; from += 1000) await fleet.publishRange(from, from + 1000);
  await waitFor(
    async () => {
      const t = await fleet.tally('e2e-a');
      return t.handled === BACKLOG && t.pending === 0;
    },
    { timeoutMs: 120_000, intervalMs: 50, message: `${workers} worker(s) to drain ${BACKLOG} events` },
  );
  const ms = Date.now() - started;
  // How the backlog split between the processes, from each one's own /metrics.
  const shares = await Promise.all(
    ports.map(async (port) => {
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = body.split('\n').find((l) => l.startsWith('streamfleet_events_processed_total{group="e2e-a"}'));
      return Number(line?.split(' ').at(-1) ?? 0);
    }),
  );
  return { ms, rate: Math.round((BACKLOG / ms) * 1000), shares };
}

describe('scaling out', () => {
  let fleets: FleetHarness[] = [];
  afterEach(async () => {
    await Promise.all(fleets.map((f) => f.close()));
    fleets = [];
  });

  it('two workers drain a backlog faster than one (figures printed, not asserted)', async () => {
    const one = new FleetHarness(testRedisUrl(), ENV);
    fleets.push(one);
    const r1 = await drainRate(one, 1);
    const two = new FleetHarness(testRedisUrl(), ENV);
    fleets.push(two);
    const r2 = await drainRate(two, 2);
    console.log(
      `[scaling] backlog=${BACKLOG}, handler 20 ms, concurrency 10/process:`,
      `1 worker ${r1.rate} events/s (${r1.ms} ms); 2 workers ${r2.rate} events/s (${r2.ms} ms, split ${r2.shares.join('/')});`,
      `speed-up x${(r2.rate / r1.rate).toFixed(2)}`,
    );
    expect(r1.rate).toBeGreaterThan(0);
    expect(r2.rate).toBeGreaterThan(0);
  });
});
