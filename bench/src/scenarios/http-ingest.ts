import autocannon from 'autocannon';
import { EVENT_TYPE, log, orderData, withPrefix } from '../common';
import { startServer } from '../servers/spawn';

export const HTTP_DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
export const HTTP_BATCH_SIZE = Number(process.env.BENCH_HTTP_BATCH ?? 100);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 50);

export interface HttpResults {
  bare_fastify_per_s: number | null;
  http_single_per_s: number | null;
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

/** Requests answered 2xx per second for `seconds`, after a one-second warm-up. */
async function load(url: string, body: string, seconds: number): Promise<number> {
  const options = {
    url,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body,
    connections: CONNECTIONS,
    pipelining: 1,
  };
  await autocannon({ ...options, duration: 1 });
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

/** Scenario 6: bare Fastify route, API single POST, API batch POST (each in a fresh child process). */
export async function httpIngest(): Promise<HttpResults> {
  const out: HttpResults = { bare_fastify_per_s: null, http_single_per_s: null, http_batch_per_s: null, errors: [] };
  const attempt = async (key: keyof Omit<HttpResults, 'errors'>, run: () => Promise<number>) => {
    try {
      out[key] = await run();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      out.errors.push(`${key}: ${message}`);
      log(`  ${key}: not measured (${message})`);
    }
  };
  await attempt('bare_fastify_per_s', () => measure('bare Fastify route', 'bare', '/raw', single, 1));
  await attempt('http_single_per_s', () => measure('POST /v1/events', 'api', '/v1/events', single, 1));
  await attempt('http_batch_per_s', () =>
    measure(`POST /v1/events/batch x${HTTP_BATCH_SIZE}`, 'api', '/v1/events/batch', batch, HTTP_BATCH_SIZE),
  );
  return out;
}
