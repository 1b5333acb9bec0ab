/**
 * HTTP server for scenarios 6 and 7, run in a child process (`fork`) so that the load
 * generator does not share its event loop. argv: `api|bare|bare-ap <prefix>`. Sends `{ port }`
 * (or `{ error }`) to the parent over IPC and exits on `'stop'` or disconnect.
 *
 * - `api`: the real `buildApp(config, deps)` of `@streamfleet/api`, with deps built as
 *   `packages/api/src/server.ts` builds them (own command connection with
 *   `maxRetriesPerRequest: 2` and auto-pipelining, a separate BullMQ connection, a producer
 *   that leaves validation to the routes, a pino logger), except: log level `warn` (at the default `info`
 *   the API logs no line per successful request either; `warn` keeps Fastify's startup line
 *   out of the bench output), an ingest rate limit too high to be reached (the default would
 *   cap the load; the limiter still runs), no orders plugin.
 * - `bare`: a bare Fastify route doing what the API's single POST must at least do:
 *   build the envelope and XADD it (no validation, no idempotency, no metrics).
 * - `bare-ap`: the same route on an auto-pipelining connection, like the API's. Not a target:
 *   set beside `bare` and `api`, it splits the gap into what auto-pipelining saves and what
 *   the API's own work (validation, limits, metrics, request ids, logging) costs.
 */

import {
  createEvent,
  createLogger,
  createRedis,
  DeadLetterStream,
  encodeEvent,
  loadConfig,
  RetryQueues,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import Fastify from 'fastify';
import { catalog, REDIS_URL, STREAM } from '../common';
import { watchProcess } from '../process-watch';

interface Closable {
  close(): Promise<unknown>;
  listen(options: { port: number; host: string }): Promise<string>;
  server: { address(): unknown };
}

const [mode, prefix] = process.argv.slice(2);
if (!prefix || (mode !== 'api' && mode !== 'bare' && mode !== 'bare-ap')) {
  throw new Error('usage: http-server api|bare|bare-ap <prefix>');
}

const keys = new StreamfleetKeys(prefix);
// The API's command connection exactly as server.ts opens it; the bare route keeps a plain
// client (no auto-pipelining), the baseline a hand-written route would start from.
const redis = createRedis(REDIS_URL, {
  connectionName: 'sf:bench-api',
  maxRetriesPerRequest: 2,
  ...(mode === 'bare' ? {} : { enableAutoPipelining: true }),
});
const bullConnection = createRedis(REDIS_URL, { connectionName: 'sf:bench-api:retry' });
const retryQueues = new RetryQueues({ connection: bullConnection, keys });
let app: Closable;

async function closeConnections(): Promise<void> {
  await retryQueues.close().catch(() => undefined);
  redis.disconnect();
  bullConnection.disconnect();
}

try {
  if (mode === 'api') {
    const { buildApp } = await import('@streamfleet/api');
    const config = loadConfig({ REDIS_URL, STREAMFLEET_PREFIX: prefix, LOG_LEVEL: 'silent', NODE_ENV: 'production' });
    app = buildApp(config, {
      redis,
      catalog,
      producer: new StreamProducer({ redis, keys }),
      deadLetters: new DeadLetterStream({ redis, keys, retryQueues, catalog }),
      retryQueues,
      logger: createLogger({ level: 'warn', name: 'bench-api' }),
      // The limiter runs (its cost is part of every request) with a ceiling the load never reaches.
      rateLimit: { ingest: { max: 1_000_000_000, timeWindowMs: 60_000 } },
    });
  } else {
    const key = keys.stream(STREAM);
    const bare = Fastify({ logger: false });
    bare.post('/raw', async (request, reply) => {
      const body = request.body as { type: string; data: unknown; aggregateId?: string };
      const event = createEvent({
        type: body.type,
        data: body.data,
        ...(body.aggregateId ? { aggregateId: body.aggregateId } : {}),
      });
      const entryId = await redis.xadd(key, '*', ...encodeEvent(event));
      return reply.code(202).send({ eventId: event.id, entryId, stream: STREAM });
    });
    app = bare;
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as { port: number };
  if (process.send) process.send({ port: address.port });
  else process.stderr.write(`listening on http://127.0.0.1:${address.port} (Ctrl-C stops)\n`);
} catch (err) {
  process.send?.({ error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  await closeConnections();
  process.exit(1);
}

const stop = async () => {
  await app.close().catch(() => undefined);
  await closeConnections();
  process.exit(0);
};
// Event-loop delay, GC pauses and CPU time of this process, for the bench to tell the server's
// own cost and stalls apart from the load generator's ('stats-reset' starts a window, 'stats'
// reports it).
const watch = watchProcess();
process.on('message', (m) => {
  if (m === 'stop') void stop();
  if (m === 'stats-reset') watch.reset();
  if (m === 'stats') process.send?.({ stats: watch.stats() });
});
process.on('disconnect', () => void stop());
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
