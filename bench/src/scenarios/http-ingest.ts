import autocannon from 'autocannon';
import { EVENT_TYPE, fmt, log, median, orderData, withPrefix } from '../common';
import { startServer } from '../servers/spawn';

export const HTTP_DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
/** Alternating rounds of the bare route and the single POST; their ratio is the median of per-round ratios. */
export const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
export const HTTP_BATCH_SIZE = Number(process.env.BENCH_HTTP_BATCH ?? 100);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 50);

export interface HttpResults {
  bare_fastify_per_s: number | null;
  http_single_per_s: number | null;
  /** Median of the per-round ratios single / bare (rounds alternate, so both see the same drift). */
  http_single_vs_bare: number | null;
  http_batch_per_s: number | null;
  errors: string[];
}

const single = JSON.stringify({ type: EVENT_TYPE, aggregateId: 'ord-1', data: orderData('ord-1') });
const batch = JSON.stringify({
  events: Array.from({ length: HTTP_BATCH_SIZE }, (_, i) => ({
    type: EVENT_TYPE,
    aggregateId: `ord-${i}`,
    data: orderData(`ord-${i}`),
  })),
});

/** Requests answered 2xx per second for `seconds`, after a one-second warm-up (unless `warm`). */
async function load(url: string, body: string, seconds: number, warm = false): Promise<number> {
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
  return result['2xx'] / (result.duration || seconds);
}

async function measure(label: string, mode: 'api' | 'bare', path: string, body: string, perRequest: number) {
  return withPrefix(`http-${mode}`, async (prefix) => {
    const server = await startServer(mode, prefix);
    try {
      const perSecond = (await load(`${server.url}${path}`, body, HTTP_DURATION_S)) * perRequest;
      log(`  ${label}: ${Math.round(perSecond)} events/s`);
      return perSecond;
    } finally {
      await server.stop();
    }
  });
}

/**
 * The bare route and the single POST, each in its own child process started once, loaded in
 * alternating rounds: a drift of the machine's speed during the run then hits both alike.
 */
async function singleVsBare(): Promise<{ bare: number; single: number; ratio: number }> {
  return withPrefix('http-bare', (barePrefix) =>
    withPrefix('http-api', async (apiPrefix) => {
      const bare = await startServer('bare', barePrefix);
      const api = await startServer('api', apiPrefix);
      try {
        const bares: number[] = [];
        const singles: number[] = [];
        for (let round = 0; round < HTTP_ROUNDS; round++) {
          bares.push(await load(`${bare.url}/raw`, single, HTTP_DURATION_S, round > 0));
          singles.push(await load(`${api.url}/v1/events`, single, HTTP_DURATION_S, round > 0));
          log(
            `  round ${round + 1}: bare Fastify route ${fmt(bares[round] as number)}/s, POST /v1/events ${fmt(singles[round] as number)}/s`,
          );
        }
        return {
          bare: median(bares),
          single: median(singles),
          ratio: median(singles.map((s, i) => s / (bares[i] as number))),
        };
      } finally {
        await Promise.all([bare.stop(), api.stop()]);
      }
    }),
  );
}

/** Scenario 6: bare Fastify route vs API single POST (alternating rounds), then the API batch POST. */
export async function httpIngest(): Promise<HttpResults> {
  const out: HttpResults = {
    bare_fastify_per_s: null,
    http_single_per_s: null,
    http_single_vs_bare: null,
    http_batch_per_s: null,
    errors: [],
  };
  const attempt = async (key: keyof Omit<HttpResults, 'errors'>, run: () => Promise<number>) => {
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
    return r.ratio;
  });
  await attempt('http_batch_per_s', () =>
    measure(`POST /v1/events/batch x${HTTP_BATCH_SIZE}`, 'api', '/v1/events/batch', batch, HTTP_BATCH_SIZE),
  );
  return out;
}
