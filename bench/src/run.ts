/**
 * `pnpm bench`: streamfleet next to raw Redis Streams and BullMQ on local Redis.
 * Every scenario uses its own random key prefix and deletes it afterwards.
 *
 * Env: REDIS_URL, BENCH_N (events per throughput run, default 50000), BENCH_REPEATS
 * (default 3, median reported), BENCH_HTTP_SECONDS (5), BENCH_HTTP_BATCH (100),
 * BENCH_E2E_RATE (1000), BENCH_E2E_SECONDS (5), BENCH_SKIP_HTTP=1 (skip 6 and 7).
 */
import { loadavg } from 'node:os';
import { fmt, log, machine, makeEvents, median, N, newRedis, REDIS_URL, REPEATS, redisVersion } from './common';
import { type Results, table, targetsTable, withDerived, writeReports } from './report';
import { bullmqBaseline } from './scenarios/bullmq';
import { E2E_RATE, e2eLatency, type LatencyResult } from './scenarios/e2e-latency';
import { fleetRun } from './scenarios/fleet';
import { HTTP_BATCH_SIZE, HTTP_DURATION_S, type HttpResults, httpIngest } from './scenarios/http-ingest';
import { rawStreams } from './scenarios/raw-streams';
import { rawXadd } from './scenarios/raw-xadd';

const started = Date.now();
const probe = newRedis();
const version = await redisVersion(probe).finally(() => probe.disconnect());
const notes: string[] = [];
const loadBefore = loadavg()[0] ?? 0;
log(
  `streamfleet bench: N=${N}, repeats=${REPEATS}, Redis ${version} at ${REDIS_URL}, load average ${loadBefore.toFixed(2)}`,
);

const events = makeEvents(N);
const samples: Record<string, number[]> = {};

log('1. raw Redis Streams');
const raw = await repeatRun('raw_streams_per_s', () => rawStreams(events));
log('2. BullMQ');
const bull = await repeatRun('bullmq_per_s', () => bullmqBaseline(events));
log('3. streamfleet');
const fleet = await repeatRun('fleet_per_s', async () => (await fleetRun(events)).perSecond);
log('4. streamfleet fan-out, 4 groups');
const fanout = await repeatRun('fanout4_per_s', async () => (await fleetRun(events, { groups: 4 })).perSecond);
log('5. streamfleet, 1% failing');
const retryTimes: number[] = [];
const fail = await repeatRun('fail1pct_per_s', async () => {
  const r = await fleetRun(events, { failEvery: 100 });
  if (r.retriesDoneMs !== null) retryTimes.push(r.retriesDoneMs);
  return r.perSecond;
});
log('6. ingest');
const xadd = await repeatRun('raw_xadd_per_s', () => rawXadd(events));

let http: HttpResults = { bare_fastify_per_s: null, http_single_per_s: null, http_batch_per_s: null, errors: [] };
let latency: LatencyResult | null = null;
if (process.env.BENCH_SKIP_HTTP) {
  notes.push('HTTP scenarios (6, 7) skipped (BENCH_SKIP_HTTP).');
} else {
  http = await httpIngest();
  for (const e of http.errors) notes.push(`not measured: ${e}`);
  log('7. end-to-end latency');
  try {
    latency = await e2eLatency();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    notes.push(`not measured: e2e latency: ${message}`);
    log(`  e2e latency: not measured (${message})`);
  }
}

const loadAfter = loadavg()[0] ?? 0;
notes.push(
  `1-minute load average ${loadBefore.toFixed(2)} before and ${loadAfter.toFixed(2)} after the run ` +
    `(${machine(version).cores} cores); other work on the machine lowers every figure.`,
);
if (latency) notes.push(`e2e: ${latency.count} measured events, max ${latency.max.toFixed(2)} ms.`);
if (retryTimes.length > 0) {
  notes.push(
    `1% failing: the failed events' retries had all succeeded ${Math.round(median(retryTimes))} ms after start (median).`,
  );
}

const results: Results = withDerived({
  date: new Date().toISOString(),
  machine: { ...machine(version) },
  config: { n: N, repeats: REPEATS, batchSize: 200, concurrency: 50, httpDurationS: HTTP_DURATION_S },
  raw_streams_per_s: raw,
  bullmq_per_s: bull,
  fleet_per_s: fleet,
  fleet_vs_raw: fleet / raw,
  fleet_vs_bullmq: fleet / bull,
  fanout4_per_s: fanout,
  fanout4_vs_fleet: fanout / fleet,
  fail1pct_per_s: fail,
  fail1pct_vs_clean: fail / fleet,
  fail1pct_retries_done_ms: retryTimes.length > 0 ? median(retryTimes) : null,
  raw_xadd_per_s: xadd,
  bare_fastify_per_s: http.bare_fastify_per_s,
  http_single_per_s: http.http_single_per_s,
  http_batch_per_s: http.http_batch_per_s,
  http_batch_size: HTTP_BATCH_SIZE,
  e2e_rate_per_s: E2E_RATE,
  e2e_count: latency?.count ?? null,
  e2e_p50_ms: latency?.p50 ?? null,
  e2e_p95_ms: latency?.p95 ?? null,
  e2e_p99_ms: latency?.p99 ?? null,
  samples,
  notes,
});

writeReports(results);
console.log(`\n${table(results)}\n\n${targetsTable(results)}\n`);
log(
  `wrote bench/results/latest.json, docs/benchmarks.md, docs/benchmarks.svg in ${Math.round((Date.now() - started) / 1000)} s`,
);
process.exit(0);

async function repeatRun(name: string, run: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const value = await run();
    values.push(value);
    log(`  run ${i + 1}/${REPEATS}: ${fmt(value)}/s`);
  }
  samples[name] = values;
  return median(values);
}
