import autocannon from 'autocannon';
import { fmt, INGEST_TYPE, log, median, orderData, withPrefix } from '../common';
import { type RunningServer, startServer } from '../servers/spawn';

export const HTTP_DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 4);
/** Alternating rounds of the bare route and the single POST; their ratio is the median of per-round ratios. */
export const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 5);
export const HTTP_BATCH_SIZE = Number(process.env.BENCH_HTTP_BATCH ?? 100);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 50);

export interface HttpResults {
  bare_fastify_per_s: number | null;
  /** The bare route on an auto-pipelining connection (reference, not a target). */
  bare_autopipelined_per_s: number | null;
  http_single_per_s: number | null;
  /** Median of the per-round ratios single / bare (rounds alternate, so both see the same drift). */
  http_single_vs_bare: number | null;
  /** The per-round ratios single / bare, in round order. */
  http_single_vs_bare_rounds: number[];
  /** CPU time of the server process per request (median of the rounds): bare route (plain, auto-pipelined), single POST. */
  bare_cpu_us_per_request: number | null;
  bare_autopipelined_cpu_us_per_request: number | null;
  http_single_cpu_us_per_request: number | null;
  http_batch_per_s: number | null;
  /** Raw pipelined XADD from one client, run right before each batch round (median). */
  raw_xadd_per_s: number | null;
  /** Median of the per-round ratios batch / raw XADD, and the ratios in round order. */
  http_batch_vs_raw_xadd: number | null;
  http_batch_vs_raw_xadd_rounds: number[];
  errors: string[];
}

const single = JSON.stringify({ type: INGEST_TYPE, aggregateId: 'ord-1', data: orderData('ord-1') });
const batch = JSON.stringify({
  events: Array.from({ length: HTTP_BATCH_SIZE }, (_, i) => ({
    type: INGEST_TYPE,
    aggregateId: `ord-${i}`,
    data: orderData(`ord-${i}`),
  })),
});

/** Requests answered 2xx (per second, and in all) in `seconds`, after a one-second warm-up (unless `warm`). */
async function load(
  url: string,
  body: string,
  seconds: number,
  warm = false,
): Promise<{ perSecond: number; requests: number }> {
  const options = {
    url,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    pipelining: 1,
  };
  if (!warm) await autocannon({ ...options, duration: 1 });
  const result = await autocannon({ ...options, duration: seconds });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  return { perSecond: result['2xx'] / (result.duration || seconds), requests: result['2xx'] };
}

/**
 * The batch POST and raw pipelined XADD (the caller's `xadd`, in this process) in alternating
 * rounds against one API server, so that both see the same drift of the machine's speed.
 */
async function batchVsXadd(xadd: () => Promise<number>) {
  return withPrefix('http-api', async (prefix) => {
    const api = await startServer('api', prefix);
    try {
      const url = `${api.url}/v1/events/batch`;
      await load(url, batch, 1, true);
      const xadds: number[] = [];
      const batches: number[] = [];
      for (let r = 0; r < HTTP_ROUNDS; r++) {
        const x = await xadd();
        const b = (await load(url, batch, HTTP_DURATION_S, true)).perSecond * HTTP_BATCH_SIZE;
        xadds.push(x);
        batches.push(b);
        log(
          `  round ${r + 1}: raw pipelined XADD ${fmt(x)}/s, POST /v1/events/batch x${HTTP_BATCH_SIZE} ${fmt(b)} events/s`,
        );
      }
      const ratios = batches.map((b, i) => b / (xadds[i] as number));
      return { xadd: median(xadds), batch: median(batches), ratio: median(ratios), ratios };
    } finally {
      await api.stop();
    }
  });
}

/**
 * The bare route, the single POST and the auto-pipelined bare route, each in its own child
 * process started once, loaded in turn in every round: a drift of the machine's speed during
 * the run then hits all three alike.
 */
async function singleVsBare() {
  return withPrefix('http-bare', (barePrefix) =>
    withPrefix('http-api', async (apiPrefix) => {
      // Started together, so that one failing to start still lets the others be stopped.
      const started = await Promise.allSettled([
        startServer('bare', barePrefix),
        startServer('api', apiPrefix),
        startServer('bare-ap', barePrefix),
      ]);
      const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) {
        await Promise.all(servers.map((s) => s.stop()));
        throw failed.reason;
      }
      const [bare, api, bareAp] = servers as [RunningServer, RunningServer, RunningServer];
      // The server's own CPU time per request: less disturbed by other load than the rate.
      const round = async (server: RunningServer, path: string) => {
        server.resetStats();
        const { perSecond, requests } = await load(`${server.url}${path}`, single, HTTP_DURATION_S, true);
        const { cpuUs } = await server.stats();
        return { perSecond, cpuUsPerRequest: cpuUs / requests };
      };
      try {
        await load(`${bare.url}/raw`, single, 1, true);
        await load(`${api.url}/v1/events`, single, 1, true);
        await load(`${bareAp.url}/raw`, single, 1, true);
        const bares: { perSecond: number; cpuUsPerRequest: number }[] = [];
        const singles: typeof bares = [];
        const bareAps: typeof bares = [];
        const said = (m: { perSecond: number; cpuUsPerRequest: number }) =>
          `${fmt(m.perSecond)}/s (${m.cpuUsPerRequest.toFixed(0)} us CPU/request)`;
        for (let r = 0; r < HTTP_ROUNDS; r++) {
          const b = await round(bare, '/raw');
          const s = await round(api, '/v1/events');
          const a = await round(bareAp, '/raw');
          bares.push(b);
          singles.push(s);
          bareAps.push(a);
          log(
            `  round ${r + 1}: bare Fastify route ${said(b)}, POST /v1/events ${said(s)}, ` +
              `bare route auto-pipelined ${said(a)}`,
          );
        }
        const ratios = singles.map((s, i) => s.perSecond / (bares[i] as { perSecond: number }).perSecond);
        return {
          bare: median(bares.map((b) => b.perSecond)),
          single: median(singles.map((s) => s.perSecond)),
          ratio: median(ratios),
          ratios,
          bareCpu: median(bares.map((b) => b.cpuUsPerRequest)),
          singleCpu: median(singles.map((s) => s.cpuUsPerRequest)),
          bareAp: median(bareAps.map((a) => a.perSecond)),
          bareApCpu: median(bareAps.map((a) => a.cpuUsPerRequest)),
        };
      } finally {
        await Promise.all(servers.map((s) => s.stop()));
      }
    }),
  );
}

/** Scenario 6's results before (or without) measuring. */
export function httpNotMeasured(): HttpResults {
  return {
    bare_fastify_per_s: null,
    bare_autopipelined_per_s: null,
    http_single_per_s: null,
    http_single_vs_bare: null,
    http_single_vs_bare_rounds: [],
    bare_cpu_us_per_request: null,
    bare_autopipelined_cpu_us_per_request: null,
    http_single_cpu_us_per_request: null,
    http_batch_per_s: null,
    raw_xadd_per_s: null,
    http_batch_vs_raw_xadd: null,
    http_batch_vs_raw_xadd_rounds: [],
    errors: [],
  };
}

/**
 * Scenario 6: bare Fastify route vs API single POST, then the API batch POST vs `xadd` (raw
 * pipelined XADD, events/s), each pair in alternating rounds.
 */
export async function httpIngest(xadd: () => Promise<number>): Promise<HttpResults> {
  const out = httpNotMeasured();
  const attempt = async (key: 'http_single_vs_bare' | 'http_batch_vs_raw_xadd', run: () => Promise<number>) => {
    try {
      out[key] = await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      out.errors.push(`${key}: ${message}`);
      log(`  ${key}: not measured (${message})`);
    }
  };
  await attempt('http_single_vs_bare', async () => {
    const r = await singleVsBare();
    out.bare_fastify_per_s = r.bare;
    out.http_single_per_s = r.single;
    out.http_single_vs_bare_rounds = r.ratios;
    out.bare_cpu_us_per_request = r.bareCpu;
    out.http_single_cpu_us_per_request = r.singleCpu;
    out.bare_autopipelined_per_s = r.bareAp;
    out.bare_autopipelined_cpu_us_per_request = r.bareApCpu;
    return r.ratio;
  });
  await attempt('http_batch_vs_raw_xadd', async () => {
    const r = await batchVsXadd(xadd);
    out.raw_xadd_per_s = r.xadd;
    out.http_batch_per_s = r.batch;
    out.http_batch_vs_raw_xadd_rounds = r.ratios;
    return r.ratio;
  });
  return out;
}
