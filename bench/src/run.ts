/**
 * `pnpm bench`: streamfleet next to raw Redis Streams and BullMQ on local Redis.
 * Every scenario uses its own random key prefix and deletes it afterwards.
 *
 * Env: REDIS_URL, BENCH_N (events per throughput run, default 50000), BENCH_REPEATS
 * (default 5, median reported), BENCH_HTTP_SECONDS (4), BENCH_HTTP_ROUNDS (5), BENCH_HTTP_BATCH (100),
 * BENCH_E2E_RATE (1000), BENCH_E2E_SECONDS (5), BENCH_SKIP_HTTP=1 (skip 6 and 7),
 * BENCH_RETRY_LINGER_MS (streamfleet's retry-job linger; default streamfleet's own, 0 stores each
 * turn of the event loop's failures at once).
 */
import { loadavg } from 'node:os';
import {
  fmt,
  log,
  type Measured,
  machine,
  makeEvents,
  median,
  N,
  newRedis,
  REDIS_URL,
  REPEATS,
  redisVersion,
  roundTrip,
  waitForQuiet,
} from './common';
import { describeStalls } from './process-watch';
import {
  type Results,
  type ScenarioCpu,
  singlePostNote,
  table,
  targetsTable,
  withTargets,
  writeReports,
} from './report';
import { bullmqBaseline } from './scenarios/bullmq';
import { E2E_RATE, e2eLatencyInFreshProcess, type LatencyResult } from './scenarios/e2e-latency';
import {
  DEFAULT_BATCH_SIZE,
  DEFERRED_RETRY_MS,
  FLEET_BATCH_SIZE,
  FLEET_CONCURRENCY,
  fleetRun,
} from './scenarios/fleet';
import {
  HTTP_BATCH_SIZE,
  HTTP_DURATION_S,
  type HttpResults,
  httpIngest,
  httpNotMeasured,
} from './scenarios/http-ingest';
import { rawStreams } from './scenarios/raw-streams';
import { rawXadd } from './scenarios/raw-xadd';

const started = Date.now();
const probe = newRedis();
const version = await redisVersion(probe).finally(() => probe.disconnect());
/** One Redis round trip's cost to this process, on a connection of its own. */
async function measureRoundTrip(when: string) {
  const redis = newRedis();
  try {
    const rt = await roundTrip(redis);
    log(
      `one Redis round trip (sequential PING), ${when}: ${rt.cpuUs.toFixed(1)} us CPU, ${rt.wallUs.toFixed(1)} us wall`,
    );
    return rt;
  } finally {
    redis.disconnect();
  }
}
const notes: string[] = [];
const loadBefore = loadavg()[0] ?? 0;
log(
  `streamfleet bench: N=${N}, repeats=${REPEATS}, Redis ${version} at ${REDIS_URL}, load average ${loadBefore.toFixed(2)}`,
);

const events = makeEvents(N);
/** Scenario 5: every 100th event fails its first attempt (1%). */
const FAIL_EVERY = 100;
const samples: Record<string, number[]> = {};

// Scenarios 1-5 run in interleaved rounds (raw, fleet, 1% failing, fan-out, BullMQ) so that
// every ratio compares runs made under the same background load; ratios are the median of
// the per-round ratios, rates the median of the runs.
const rounds: Record<'raw' | 'fleet' | 'fleetDefault' | 'fanout' | 'fail' | 'failDeferred' | 'bull', Measured[]> = {
  raw: [],
  fleet: [],
  fleetDefault: [],
  fanout: [],
  fail: [],
  failDeferred: [],
  bull: [],
};
const retryTimes: number[] = [];
/** Idle CPU fraction of the machine seen right before each group of measurements. */
const idle: number[] = [];
// One unmeasured pass over a fifth of the events, so that no scenario's first round pays for
// JIT warm-up (the first one run would, and the ratios compare rounds).
log('warm-up (not measured)');
const warmup = events.slice(0, Math.max(1000, Math.floor(N / 5)));
await rawStreams(warmup);
await fleetRun(warmup);
await fleetRun(warmup, { failEvery: FAIL_EVERY });
await bullmqBaseline(warmup);
// After the warm-up, so that ioredis's code is compiled like in the scenarios' runs.
const roundTripBefore = await measureRoundTrip('before the rounds');
for (let round = 1; round <= REPEATS; round++) {
  log(`round ${round}/${REPEATS}`);
  idle.push(await waitForQuiet(`round ${round}`));
  // Each ratio's two runs are made back to back (raw then streamfleet, then 1% failing), so a
  // drift of the machine's speed between them is as small as it can be.
  rounds.raw.push(report('1. raw Redis Streams', await rawStreams(events)));
  rounds.fleet.push(report('3. streamfleet', await fleetRun(events)));
  const failed = await fleetRun(events, { failEvery: FAIL_EVERY });
  if (failed.retriesDoneMs !== null) retryTimes.push(failed.retriesDoneMs);
  rounds.fail.push(report('5. streamfleet, 1% failing', failed));
  rounds.failDeferred.push(
    report(
      '5b. streamfleet, 1% failing, retries due after the run',
      await fleetRun(events, { failEvery: FAIL_EVERY, retryBaseDelayMs: DEFERRED_RETRY_MS }),
    ),
  );
  rounds.fanout.push(report('4. streamfleet fan-out, 4 groups', await fleetRun(events, { groups: 4 })));
  rounds.fleetDefault.push(
    report('3b. streamfleet, default batch 200', await fleetRun(events, { batchSize: DEFAULT_BATCH_SIZE })),
  );
  rounds.bull.push(report('2. BullMQ', await bullmqBaseline(events)));
}
const rate = (k: keyof typeof rounds) => median(rounds[k].map((m) => m.perSecond));
/** Whose CPU: this process's, or the Redis server's. */
type CpuOf = 'cpuUsPerEvent' | 'redisCpuUsPerEvent';
const cpu = (k: keyof typeof rounds, which: CpuOf = 'cpuUsPerEvent') => median(rounds[k].map((m) => m[which]));
/** The CPU per event of every throughput scenario, as the report lists them. */
const cpuByScenario = (which: CpuOf): ScenarioCpu => ({
  raw_streams: cpu('raw', which),
  bullmq: cpu('bull', which),
  fleet: cpu('fleet', which),
  fanout4: cpu('fanout', which),
  fail1pct: cpu('fail', which),
  fail1pct_deferred: cpu('failDeferred', which),
});
/** Cores a process kept busy over a run (every thread of it): CPU per event times events per second. */
const cores = (k: keyof typeof rounds, which: CpuOf) =>
  median(rounds[k].map((m) => (m[which] * m.perSecond) / 1e6)).toFixed(2);
const perRound = (a: keyof typeof rounds, b: keyof typeof rounds) =>
  rounds[a].map((m, i) => m.perSecond / (rounds[b][i]?.perSecond ?? Number.NaN));
const paired = (a: keyof typeof rounds, b: keyof typeof rounds) => median(perRound(a, b));
for (const k of Object.keys(rounds) as (keyof typeof rounds)[]) samples[k] = rounds[k].map((m) => m.perSecond);

log('6. ingest');
// Raw pipelined XADD is the batch POST's baseline: it runs right before each batch round.
const xaddRuns: number[] = [];
const xaddRun = async () => {
  const perSecond = (await rawXadd(events)).perSecond;
  xaddRuns.push(perSecond);
  return perSecond;
};
let http: HttpResults = httpNotMeasured();
let latency: LatencyResult | null = null;
if (process.env.BENCH_SKIP_HTTP) {
  notes.push('HTTP scenarios (6, 7) skipped (BENCH_SKIP_HTTP).');
  for (let i = 0; i < REPEATS; i++) log(`  raw pipelined XADD: ${fmt(await xaddRun())}/s`);
} else {
  idle.push(await waitForQuiet('HTTP ingest'));
  http = await httpIngest(xaddRun);
  for (const e of http.errors) notes.push(`not measured: ${e}`);
  log('7. end-to-end latency');
  try {
    idle.push(await waitForQuiet('e2e latency'));
    latency = await e2eLatencyInFreshProcess();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    notes.push(`not measured: e2e latency: ${message}`);
    log(`  e2e latency: not measured (${message})`);
  }
}

const roundTripAfter = await measureRoundTrip('after the last scenario');
const loadAfter = loadavg()[0] ?? 0;
// The same work costs more CPU when the host is contended (a VM's neighbours are invisible to
// the idle check above): the raw loop's CPU per event, round by round, shows that drift.
notes.push(
  `raw loop CPU per event by round: ${rounds.raw.map((m) => `${m.cpuUsPerEvent.toFixed(1)} us`).join(', ')}; ` +
    'the same work, so a spread here is the machine, not the code.',
);
notes.push(
  `CPU idle right before each measurement group: ${idle.map((f) => `${Math.round(f * 100)}%`).join(', ')} ` +
    '(the bench waits up to BENCH_QUIET_WAIT_S for 60%; lower means other work competed with it).',
);
notes.push(
  `1-minute load average ${loadBefore.toFixed(2)} before and ${loadAfter.toFixed(2)} after the run ` +
    `(${machine(version).cores} cores); other work on the machine lowers every figure.`,
);
if (latency) {
  const p = (x: { p50: number; p99: number }) => `p50 ${x.p50.toFixed(2)} ms / p99 ${x.p99.toFixed(2)} ms`;
  notes.push(
    `e2e: ${latency.count} measured events, max ${latency.max.toFixed(2)} ms. Split: send -> 202 ${p(latency.http)}; ` +
      `XADD (stream id time, 1 ms resolution) -> handler start ${p(latency.consumer)}. ` +
      `API process: ${describeStalls(latency.stalls.api)}; load generator and consumer: ` +
      `${describeStalls(latency.stalls.load)} (a delay in both processes that their GC pauses do not explain ` +
      'came from the machine).',
  );
}
const listed = (ratios: readonly number[]) => ratios.map((r) => r.toFixed(2)).join(', ');
const spread = (a: keyof typeof rounds, b: keyof typeof rounds) => listed(perRound(a, b));
notes.push(
  `per-round ratios (their median is reported): streamfleet / raw ${spread('fleet', 'raw')}; ` +
    `1% failing / clean ${spread('fail', 'fleet')}; 5b / clean ${spread('failDeferred', 'fleet')}; ` +
    `fan-out / streamfleet ${spread('fanout', 'fleet')}` +
    (http.http_single_vs_bare_rounds.length > 0
      ? `; single POST / bare route ${listed(http.http_single_vs_bare_rounds)}`
      : '') +
    (http.http_batch_vs_raw_xadd_rounds.length > 0
      ? `; batch POST / raw XADD ${listed(http.http_batch_vs_raw_xadd_rounds)}.`
      : '.'),
);
// What one failed event costs this process, against a happy one: each round's two runs apart
// (made back to back, like the ratios), spread over the failed events (one in FAIL_EVERY); the
// median of the rounds. The medians of each scenario apart could pair a fast round with a slow one.
const perFailure = (k: 'fail' | 'failDeferred', which: CpuOf = 'cpuUsPerEvent') =>
  median(rounds[k].map((m, i) => (m[which] - (rounds.fleet[i]?.[which] ?? Number.NaN)) * FAIL_EVERY));
notes.push(
  `a failed event costs about ${Math.round(perFailure('fail'))} us of this process's CPU, retry included ` +
    `(scenario 5 against 3), ${Math.round(perFailure('failDeferred'))} us of it before its retry runs (5b: storing ` +
    `the BullMQ job, acking); a happy event costs ${cpu('fleet').toFixed(1)} us. At 1% failing, ` +
    `fail1pct_vs_clean >= 0.9 needs a failure to cost under about ${Math.round((cpu('fleet') * FAIL_EVERY) / 9)} us, ` +
    `while BullMQ's own best case (scenario 2: bulk add, one busy worker) costs ${cpu('bull').toFixed(1)} us per job, ` +
    `and each failure is one BullMQ job (stored, waking the group's retry worker, run, completed). ` +
    `One Redis round trip costs this process about ${roundTripBefore.cpuUs.toFixed(0)} us here (sequential PING), ` +
    `so a failure costs as much as ${(perFailure('fail') / roundTripBefore.cpuUs).toFixed(1)} round trips.`,
);
notes.push(
  `which process sets the pace: in scenario 3 this process kept ${cores('fleet', 'cpuUsPerEvent')} cores busy ` +
    `(its GC and I/O threads included) and Redis ${cores('fleet', 'redisCpuUsPerEvent')} (raw loop: ` +
    `${cores('raw', 'cpuUsPerEvent')} and ${cores('raw', 'redisCpuUsPerEvent')}), so a failure's cost to this ` +
    'process comes straight off the happy path. A failed event costs Redis about ' +
    `${Math.round(perFailure('fail', 'redisCpuUsPerEvent'))} us, retry included ` +
    `(${Math.round(perFailure('failDeferred', 'redisCpuUsPerEvent'))} us before its retry runs), against ` +
    `${cpu('fleet', 'redisCpuUsPerEvent').toFixed(1)} us for a happy one.`,
);
const {
  bare_cpu_us_per_request: bareCpu,
  bare_autopipelined_cpu_us_per_request: bareApCpu,
  http_single_cpu_us_per_request: apiCpu,
} = http;
if (bareCpu !== null && bareApCpu !== null && apiCpu !== null) notes.push(singlePostNote(bareCpu, bareApCpu, apiCpu));
if (retryTimes.length > 0) {
  notes.push(
    `1% failing: the failed events' retries had all succeeded ${Math.round(median(retryTimes))} ms after start (median).`,
  );
}

samples.raw_xadd = xaddRuns;
const results: Results = withTargets({
  date: new Date().toISOString(),
  machine: { ...machine(version) },
  redis_round_trip_us: {
    cpu: roundTripBefore.cpuUs,
    wall: roundTripBefore.wallUs,
    cpuAfter: roundTripAfter.cpuUs,
    wallAfter: roundTripAfter.wallUs,
  },
  config: {
    n: N,
    repeats: REPEATS,
    batchSize: FLEET_BATCH_SIZE,
    concurrency: FLEET_CONCURRENCY,
    httpDurationS: HTTP_DURATION_S,
  },
  raw_streams_per_s: rate('raw'),
  bullmq_per_s: rate('bull'),
  fleet_per_s: rate('fleet'),
  fleet_vs_raw: paired('fleet', 'raw'),
  fleet_vs_bullmq: paired('fleet', 'bull'),
  fleet_default_batch_per_s: rate('fleetDefault'),
  fleet_default_batch_vs_raw: paired('fleetDefault', 'raw'),
  fanout4_per_s: rate('fanout'),
  fanout4_vs_fleet: paired('fanout', 'fleet'),
  fail1pct_per_s: rate('fail'),
  fail1pct_vs_clean: paired('fail', 'fleet'),
  fail1pct_retries_done_ms: retryTimes.length > 0 ? median(retryTimes) : null,
  fail1pct_deferred_per_s: rate('failDeferred'),
  fail1pct_deferred_vs_clean: paired('failDeferred', 'fleet'),
  raw_xadd_per_s: median(xaddRuns),
  bare_fastify_per_s: http.bare_fastify_per_s,
  bare_autopipelined_per_s: http.bare_autopipelined_per_s,
  http_single_per_s: http.http_single_per_s,
  http_single_vs_bare: http.http_single_vs_bare,
  http_batch_per_s: http.http_batch_per_s,
  http_batch_vs_raw_xadd: http.http_batch_vs_raw_xadd,
  http_batch_size: HTTP_BATCH_SIZE,
  e2e_rate_per_s: E2E_RATE,
  e2e_count: latency?.count ?? null,
  e2e_p50_ms: latency?.p50 ?? null,
  e2e_p95_ms: latency?.p95 ?? null,
  e2e_p99_ms: latency?.p99 ?? null,
  e2e_http_ms: latency ? latency.http : null,
  e2e_consumer_ms: latency ? latency.consumer : null,
  e2e_stalls: latency ? latency.stalls : null,
  cpu_us_per_event: cpuByScenario('cpuUsPerEvent'),
  redis_cpu_us_per_event: cpuByScenario('redisCpuUsPerEvent'),
  server_cpu_us_per_request: {
    bare_fastify: http.bare_cpu_us_per_request,
    bare_autopipelined: http.bare_autopipelined_cpu_us_per_request,
    http_single: http.http_single_cpu_us_per_request,
  },
  samples,
  notes,
});

writeReports(results);
console.log(`\n${table(results)}\n\n${targetsTable(results)}\n`);
log(
  `wrote bench/results/latest.json, docs/benchmarks.md, docs/benchmarks.svg in ${Math.round((Date.now() - started) / 1000)} s`,
);
process.exit(0);

function report<T extends Measured>(label: string, m: T): T {
  log(
    `  ${label}: ${fmt(m.perSecond)}/s, us CPU per event: ${m.cpuUsPerEvent.toFixed(1)} in this process, ` +
      `${m.redisCpuUsPerEvent.toFixed(1)} in Redis`,
  );
  return m;
}
