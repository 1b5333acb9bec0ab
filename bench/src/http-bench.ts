/**
 * Scenarios 6 and 7 alone, for quick before/after comparisons of the ingestion path:
 * `pnpm --filter @streamfleet/bench exec tsx src/http-bench.ts`. Same env as `pnpm bench`
 * (BENCH_N, BENCH_REPEATS, BENCH_HTTP_SECONDS, BENCH_HTTP_BATCH, BENCH_E2E_*); writes no report.
 * BENCH_HTTP_ONLY=ingest|e2e runs only one of the two.
 */
import { fmt, log, makeEvents, median, N, REPEATS, waitForQuiet } from './common';
import { e2eLatency } from './scenarios/e2e-latency';
import { httpIngest } from './scenarios/http-ingest';
import { rawXadd } from './scenarios/raw-xadd';

const only = process.env.BENCH_HTTP_ONLY;
const out: Record<string, unknown> = {};
if (only !== 'e2e') {
  const events = makeEvents(N);
  const xadd: number[] = [];
  for (let i = 0; i < REPEATS; i++) xadd.push((await rawXadd(events)).perSecond);
  out.raw_xadd_per_s = median(xadd);
  log(`raw pipelined XADD: ${fmt(median(xadd))}/s (${xadd.map(fmt).join(', ')})`);
  await waitForQuiet('HTTP ingest');
  const http = await httpIngest();
  Object.assign(out, http);
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null ? (a / b).toFixed(3) : 'n/a');
  out.batch_vs_xadd = ratio(http.http_batch_per_s, median(xadd));
}
if (only !== 'ingest') {
  await waitForQuiet('e2e latency');
  const l = await e2eLatency();
  out.e2e = { p50: l.p50, p95: l.p95, p99: l.p99, max: l.max, http: l.http, consumer: l.consumer };
}
console.log(JSON.stringify(out, (_k, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v), 2));
process.exit(0);
