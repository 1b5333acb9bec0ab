/**
 * Scenarios 6 and 7 alone, for quick before/after comparisons of the ingestion path:
 * `pnpm --filter @streamfleet/bench exec tsx src/http-bench.ts`. Same env as `pnpm bench`
 * (BENCH_N, BENCH_HTTP_SECONDS, BENCH_HTTP_ROUNDS, BENCH_HTTP_BATCH, BENCH_E2E_*); writes no report.
 * BENCH_HTTP_ONLY=ingest|e2e runs only one of the two.
 */
import { makeEvents, N, waitForQuiet } from './common';
import { e2eLatencyInFreshProcess } from './scenarios/e2e-latency';
import { httpIngest } from './scenarios/http-ingest';
import { rawXadd } from './scenarios/raw-xadd';

const only = process.env.BENCH_HTTP_ONLY;
const out: Record<string, unknown> = {};
if (only !== 'e2e') {
  const events = makeEvents(N);
  await waitForQuiet('HTTP ingest');
  Object.assign(out, await httpIngest(async () => (await rawXadd(events)).perSecond));
}
if (only !== 'ingest') {
  await waitForQuiet('e2e latency');
  const l = await e2eLatencyInFreshProcess();
  out.e2e = { p50: l.p50, p95: l.p95, p99: l.p99, max: l.max, http: l.http, consumer: l.consumer };
}
console.log(JSON.stringify(out, (_k, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v), 2));
process.exit(0);
