import { mkdirSync, writeFileSync } from 'node:fs';
import { fmt } from './common';
import type { ProcessStats } from './process-watch';

/**
 * What the HTTP servers' CPU per request says of the single POST against the bare route: the
 * API's own work against what auto-pipelining saves it.
 */
export function singlePostNote(bareCpu: number, bareApCpu: number, apiCpu: number): string {
  const measured =
    `single POST, server CPU per request: auto-pipelining saves ${(bareCpu - bareApCpu).toFixed(1)} us ` +
    `(bare route ${bareCpu.toFixed(1)} us, auto-pipelined ${bareApCpu.toFixed(1)} us); the API's own work ` +
    '(validation against the catalog, request id, rate limit, metrics, strict UTF-8 JSON parsing) costs ' +
    `${(apiCpu - bareApCpu).toFixed(1)} us on top (${apiCpu.toFixed(1)} us)`;
  return apiCpu > bareCpu
    ? `${measured}: more than auto-pipelining saves here, so the API server is the slower of the two, and the single ` +
        "POST reaches the bare route's rate only where a round trip's system calls cost more."
    : `${measured}: less than auto-pipelining saves here, so the API server costs less per request than the bare ` +
        'route, and where their rates still differ the rest of the machine set them (the load generator and Redis ' +
        'share its cores).';
}

/** Microseconds of CPU per event (per job for BullMQ), median of the rounds, by throughput scenario. */
export interface ScenarioCpu {
  raw_streams: number;
  bullmq: number;
  fleet: number;
  fanout4: number;
  fail1pct: number;
  fail1pct_deferred: number;
}

export interface Results {
  date: string;
  machine: { cores: number; cpu: string; node: string; redisVersion: string };
  /** One Redis round trip from the bench process (sequential PING), measured before the rounds and after the last scenario. */
  redis_round_trip_us: { cpu: number; wall: number; cpuAfter: number; wallAfter: number };
  config: { n: number; repeats: number; batchSize: number; concurrency: number; httpDurationS: number };
  raw_streams_per_s: number;
  bullmq_per_s: number;
  fleet_per_s: number;
  fleet_vs_raw: number;
  fleet_vs_bullmq: number;
  /** Scenario 3 with streamfleet's default batch size (200) instead of the raw loop's 500. */
  fleet_default_batch_per_s: number;
  fleet_default_batch_vs_raw: number;
  fanout4_per_s: number;
  fanout4_vs_fleet: number;
  fail1pct_per_s: number;
  fail1pct_vs_clean: number;
  fail1pct_retries_done_ms: number | null;
  /** Scenario 5b: 1% failing, retries due only after the measured window (the loop's own cost of a failure). */
  fail1pct_deferred_per_s: number;
  fail1pct_deferred_vs_clean: number;
  raw_xadd_per_s: number;
  bare_fastify_per_s: number | null;
  /** The bare route on an auto-pipelining connection, like the API's (reference, not a target). */
  bare_autopipelined_per_s: number | null;
  http_single_per_s: number | null;
  http_batch_per_s: number | null;
  http_batch_size: number;
  http_batch_vs_raw_xadd: number | null;
  http_single_vs_bare: number | null;
  e2e_rate_per_s: number;
  e2e_count: number | null;
  e2e_p50_ms: number | null;
  e2e_p95_ms: number | null;
  e2e_p99_ms: number | null;
  /** Send -> 202 (HTTP part of the e2e latency). */
  e2e_http_ms: { p50: number; p95: number; p99: number; max: number } | null;
  /** XADD -> handler start (consumer part of the e2e latency). */
  e2e_consumer_ms: { p50: number; p95: number; p99: number; max: number } | null;
  /** Event-loop delay and GC pauses during the e2e run: the API process, and the load generator with the consumer. */
  e2e_stalls: { api: ProcessStats; load: ProcessStats } | null;
  /** CPU time of the bench process per event (user + system, microseconds): less sensitive to other load on the machine. */
  cpu_us_per_event: ScenarioCpu;
  /** CPU time of the Redis server per event over the same runs (user + system, from INFO; microseconds). */
  redis_cpu_us_per_event: ScenarioCpu;
  /** CPU time of the HTTP server process per request in scenario 6 (median of the rounds), microseconds. */
  server_cpu_us_per_request: {
    bare_fastify: number | null;
    bare_autopipelined: number | null;
    http_single: number | null;
  };
  /** Every run of every repeated scenario, for judging the spread. */
  samples: Record<string, number[]>;
  notes: string[];
  targets: Target[];
}

export interface Target {
  name: string;
  goal: string;
  value: string;
  met: boolean | null;
}

const r2 = (n: number | null) => (n === null ? 'not measured' : n.toFixed(3));

export function targets(r: Omit<Results, 'targets'>): Target[] {
  const check = (value: number | null, ok: (v: number) => boolean) => (value === null ? null : ok(value));
  return [
    {
      name: 'streamfleet vs raw Streams',
      goal: 'fleet_vs_raw >= 0.7',
      value: r2(r.fleet_vs_raw),
      met: r.fleet_vs_raw >= 0.7,
    },
    {
      name: 'streamfleet vs BullMQ',
      goal: 'fleet_vs_bullmq >= 5',
      value: r2(r.fleet_vs_bullmq),
      met: r.fleet_vs_bullmq >= 5,
    },
    {
      name: 'fan-out, 4 groups',
      goal: 'fanout4_per_s >= 0.9 x fleet_per_s',
      value: `${r2(r.fanout4_vs_fleet)}x`,
      met: r.fanout4_vs_fleet >= 0.9,
    },
    {
      name: '1% failing handlers',
      goal: 'fail1pct_vs_clean >= 0.9',
      value: r2(r.fail1pct_vs_clean),
      met: r.fail1pct_vs_clean >= 0.9,
    },
    {
      name: 'HTTP batch ingest',
      goal: 'http_batch_per_s >= 0.5 x raw_xadd_per_s',
      value: r.http_batch_vs_raw_xadd === null ? 'not measured' : `${r2(r.http_batch_vs_raw_xadd)}x`,
      met: check(r.http_batch_vs_raw_xadd, (v) => v >= 0.5),
    },
    {
      name: 'HTTP single ingest',
      goal: 'http_single_per_s >= bare Fastify route',
      value: r.http_single_vs_bare === null ? 'not measured' : `${r2(r.http_single_vs_bare)}x`,
      met: check(r.http_single_vs_bare, (v) => v >= 1),
    },
    {
      name: 'end-to-end latency',
      goal: 'e2e p99 < 25 ms',
      value: r.e2e_p99_ms === null ? 'not measured' : `${r.e2e_p99_ms.toFixed(1)} ms`,
      met: check(r.e2e_p99_ms, (v) => v < 25),
    },
  ];
}

export function withTargets(r: Omit<Results, 'targets'>): Results {
  return { ...r, targets: targets(r) };
}

interface Row {
  label: string;
  value: number | null;
  unit: string;
}

function rows(r: Results): Row[] {
  return [
    { label: '1. raw Streams (XREADGROUP 500 + XACK)', value: r.raw_streams_per_s, unit: 'events/s' },
    { label: '2. BullMQ (addBulk, 1 worker, concurrency 50)', value: r.bullmq_per_s, unit: 'jobs/s' },
    {
      label: `3. streamfleet (1 group, no-op handler, batch ${r.config.batchSize})`,
      value: r.fleet_per_s,
      unit: 'events/s',
    },
    {
      label: '3b. streamfleet, default batch 200',
      value: r.fleet_default_batch_per_s,
      unit: 'events/s',
    },
    { label: '4. streamfleet fan-out (4 groups, total)', value: r.fanout4_per_s, unit: 'events/s' },
    { label: '5. streamfleet, 1% failing (happy path)', value: r.fail1pct_per_s, unit: 'events/s' },
    { label: '5b. 1% failing, retries due after the run', value: r.fail1pct_deferred_per_s, unit: 'events/s' },
    { label: '6. raw pipelined XADD (1 client)', value: r.raw_xadd_per_s, unit: 'events/s' },
    { label: `6. HTTP POST /v1/events/batch (${r.http_batch_size}/req)`, value: r.http_batch_per_s, unit: 'events/s' },
    { label: '6. HTTP POST /v1/events (single)', value: r.http_single_per_s, unit: 'events/s' },
    { label: '6. bare Fastify route, one XADD', value: r.bare_fastify_per_s, unit: 'events/s' },
    {
      label: '6. the bare route, auto-pipelined (reference)',
      value: r.bare_autopipelined_per_s,
      unit: 'events/s',
    },
  ];
}

export function table(r: Results): string {
  const lines = rows(r).map((row) => `| ${row.label} | ${fmt(row.value)} ${row.value === null ? '' : row.unit} |`);
  const ratios = [
    `| fleet_vs_raw | ${r2(r.fleet_vs_raw)} |`,
    `| fleet_vs_bullmq | ${r2(r.fleet_vs_bullmq)} |`,
    `| 3b (default batch) / raw | ${r2(r.fleet_default_batch_vs_raw)} |`,
    `| fanout4 / fleet | ${r2(r.fanout4_vs_fleet)} |`,
    `| fail1pct_vs_clean | ${r2(r.fail1pct_vs_clean)} |`,
    `| 5b / clean (the loop's own cost of failures) | ${r2(r.fail1pct_deferred_vs_clean)} |`,
    `| http batch / raw XADD | ${r2(r.http_batch_vs_raw_xadd)} |`,
    `| http single / bare route | ${r2(r.http_single_vs_bare)} |`,
    `| 7. e2e latency p50 / p95 / p99 at ${r.e2e_rate_per_s}/s | ${ms(r.e2e_p50_ms)} / ${ms(r.e2e_p95_ms)} / ${ms(r.e2e_p99_ms)} |`,
  ];
  return ['| scenario | result |', '| --- | ---: |', ...lines, ...ratios].join('\n');
}

function cpuPerRequest(v: number | null): string {
  return v === null ? 'not measured' : v.toFixed(1);
}

function ms(v: number | null): string {
  return v === null ? 'not measured' : `${v.toFixed(2)} ms`;
}

export function targetsTable(r: Results): string {
  const mark = (m: boolean | null) => (m === null ? 'not measured' : m ? 'met' : '**missed**');
  return [
    '| target | goal | measured | status |',
    '| --- | --- | ---: | --- |',
    ...r.targets.map((t) => `| ${t.name} | ${t.goal} | ${t.value} | ${mark(t.met)} |`),
  ].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A horizontal bar chart of every throughput figure, as a standalone SVG. */
export function svg(r: Results): string {
  const data = rows(r);
  const max = Math.max(...data.map((d) => d.value ?? 0), 1);
  const labelW = 330;
  const barW = 420;
  const rowH = 30;
  const top = 50;
  const width = labelW + barW + 130;
  const height = top + data.length * rowH + 56;
  const bars = data
    .map((d, i) => {
      const y = top + i * rowH;
      const w = d.value === null ? 0 : Math.max(1, (d.value / max) * barW);
      const color = d.label.includes('streamfleet') || d.label.includes('HTTP') ? '#2f6fde' : '#9aa5b1';
      const text = d.value === null ? 'not measured' : `${fmt(d.value)} ${d.unit}`;
      return [
        `<text x="${labelW - 8}" y="${y + 19}" text-anchor="end">${esc(d.label)}</text>`,
        `<rect x="${labelW}" y="${y + 5}" width="${w.toFixed(1)}" height="${rowH - 10}" fill="${color}" rx="2"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 19}">${esc(text)}</text>`,
      ].join('');
    })
    .join('\n  ');
  const m = r.machine;
  const footer = `${m.cores} cores, Node ${m.node}, Redis ${m.redisVersion}, N=${r.config.n}, median of ${r.config.repeats}; ${r.date.slice(0, 10)}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">
  <title>streamfleet benchmark: throughput side by side with raw Redis Streams and BullMQ</title>
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="12" y="26" font-size="16" font-weight="bold">streamfleet throughput (pnpm bench); blue = streamfleet, grey = baselines</text>
  ${bars}
  <text x="12" y="${height - 30}" fill="#555">${esc(footer)}</text>
  <text x="12" y="${height - 12}" fill="#555">e2e latency at ${r.e2e_rate_per_s}/s, send to handler start, p50 / p95 / p99: ${ms(r.e2e_p50_ms)} / ${ms(r.e2e_p95_ms)} / ${ms(r.e2e_p99_ms)}</text>
</svg>
`;
}

function cpuRow(label: string, r: Results, scenario: keyof ScenarioCpu): string {
  return `| ${label} | ${r.cpu_us_per_event[scenario].toFixed(1)} | ${r.redis_cpu_us_per_event[scenario].toFixed(1)} |`;
}

export function markdown(r: Results): string {
  const m = r.machine;
  const rt = r.redis_round_trip_us;
  return `# Benchmarks

Measured by \`pnpm bench\` (the \`bench/\` package) on ${r.date}. Every scenario runs against a local Redis
under a random key prefix that is deleted afterwards. Throughput scenarios use N = ${r.config.n.toLocaleString('en-US')}
pre-filled \`order.created\` events (written with streamfleet's own producer, so entry sizes match) and report
the median of ${r.config.repeats} runs, after one unmeasured warm-up pass; the ratios are medians of per-round ratios.

![benchmark chart](benchmarks.svg)

## Machine

- ${m.cores} cores (${m.cpu})
- Node ${m.node}
- Redis ${m.redisVersion}, on the same machine (loopback)
- one Redis round trip from the bench process (sequential \`PING\`): ${rt.cpu.toFixed(1)} us of CPU, ${rt.wall.toFixed(1)} us wall before the rounds; ${rt.cpuAfter.toFixed(1)} us / ${rt.wallAfter.toFixed(1)} us after the last scenario. Mostly system calls, whose cost differs a lot between hosts (and over time on a shared VM); it sets how costly every path that makes round trips is, a failed event's above all.

## Results

${table(r)}

CPU time per event (user + system; the figures least disturbed by other load), of the bench process
and of the Redis server over the same runs:

| scenario | us CPU / event, bench process | us CPU / event, Redis |
| --- | ---: | ---: |
${cpuRow('raw Streams', r, 'raw_streams')}
${cpuRow('BullMQ (per job)', r, 'bullmq')}
${cpuRow('streamfleet', r, 'fleet')}
${cpuRow('streamfleet fan-out (per handled event)', r, 'fanout4')}
${cpuRow('streamfleet, 1% failing', r, 'fail1pct')}
${cpuRow('5b. 1% failing, retries due after the run', r, 'fail1pct_deferred')}

CPU time of the HTTP server process per request in scenario 6 (median of the rounds):

| server | us CPU / request |
| --- | ---: |
| bare Fastify route, one XADD | ${cpuPerRequest(r.server_cpu_us_per_request.bare_fastify)} |
| the bare route, auto-pipelined (reference) | ${cpuPerRequest(r.server_cpu_us_per_request.bare_autopipelined)} |
| API, POST /v1/events | ${cpuPerRequest(r.server_cpu_us_per_request.http_single)} |

## Targets

${targetsTable(r)}

${r.notes.length > 0 ? `## Notes\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
## Scenarios

1. **raw Streams**: one ioredis client, \`XREADGROUP COUNT 500\` then \`XACK\` of the ids (pipelined with the next read), no work per entry.
2. **BullMQ**: N jobs carrying the same envelope, added with \`addBulk\` before timing; one \`Worker\`, no-op processor, concurrency 50, \`removeOnComplete\`.
3. **streamfleet**: \`Fleet\` with one group, no-op handler, one consumer loop (batch ${r.config.batchSize} like the raw loop's COUNT, concurrency ${r.config.concurrency}); timed from \`start()\` until the handler saw all N and \`XPENDING\` is 0. Every entry is decoded and validated against the catalog (zod), as in production. **3b** is the same with streamfleet's default \`CONSUMER_BATCH_SIZE\` (200), which trades some throughput for spreading a burst over more workers.
4. **fan-out**: four groups on the one stream in one process; total handled events/s (4 x N) until every group's \`XPENDING\` is 0.
5. **1% failing**: every 100th event throws on its first attempt (retry base delay 10 ms); happy-path events/s until all happy events are handled and nothing is pending (failed entries are acked once their BullMQ retry job is stored; a job waits for others to be stored with it, one \`addBulk\`, up to 20 ms and never past its due time, so here at most about 10 ms). \`fail1pct_vs_clean\` = this / scenario 3. The retries run inside the measured window, in the same process and on the same Redis: each retried event costs a few BullMQ round trips (store the delayed job, move it to active, finish it), which on this machine cost far more CPU per event than the happy path (see the notes). **5b** is the same with the retries due 60 s later, after the window: what a failure costs the consumer loop itself (storing the retry job and acking), without the retry's own work.
6. **HTTP ingest**: the API (\`buildApp\`) in a child process, loaded by autocannon (50 connections) for ${r.config.httpDurationS} s per run: \`POST /v1/events\` (one event) and \`POST /v1/events/batch\`, of type \`bench.order_placed\` (the data and schema of \`order.created\`, which as the order service's own event the API refuses); next to one client doing pipelined \`XADD\` and a bare Fastify route doing one \`XADD\` per request on a plain connection (baseline for the single POST). The bare route and the single POST run in alternating rounds (\`BENCH_HTTP_ROUNDS\`, default 5) against servers started once; their ratio is the median of the per-round ratios, and each server reports its own CPU time per request. Each round also loads the same bare route on an auto-pipelining connection, like the API's (a reference, not a target): against the bare route it shows what auto-pipelining saves, against the API what the API's own work costs (validation, rate limits, metrics, request ids, logging). The batch POST alternates in the same way with the raw pipelined XADD (run in the bench process right before each batch round). autocannon, the server and Redis share the machine's cores.
7. **end-to-end latency**: events POSTed to the API at a fixed ${r.e2e_rate_per_s} events/s; the send time travels in the event and the handler records \`now - sent\` when it starts (so it includes the HTTP request itself).

## How to run

\`\`\`sh
pnpm install
pnpm bench                      # needs Redis on REDIS_URL (default redis://127.0.0.1:6379)
BENCH_N=100000 BENCH_REPEATS=7 pnpm bench
BENCH_RETRY_LINGER_MS=0 BENCH_SKIP_HTTP=1 pnpm bench   # failure path without the retry-job linger (before/after)
pnpm --filter @streamfleet/bench profile   # CPU profile of the streamfleet consumer loop
\`\`\`

Results: \`bench/results/latest.json\`; this page and \`docs/benchmarks.svg\` are regenerated on every run.
`;
}

export function writeReports(r: Results): void {
  const root = new URL('../../', import.meta.url);
  mkdirSync(new URL('bench/results/', root), { recursive: true });
  mkdirSync(new URL('docs/', root), { recursive: true });
  writeFileSync(new URL('bench/results/latest.json', root), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(new URL('docs/benchmarks.svg', root), svg(r));
  writeFileSync(new URL('docs/benchmarks.md', root), markdown(r));
}
