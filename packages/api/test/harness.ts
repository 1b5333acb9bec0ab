import {
  type Config,
  createCatalog,
  createRedis,
  DeadLetterStream,
  type EventCatalog,
  type Logger,
  loadConfig,
  RetryQueues,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from '@streamfleet/core/testing';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { type ApiApp, buildApp } from '../src/app';
import type { ApiDeps } from '../src/deps';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * The reference catalog (whose types services publish through their outboxes, so the API
 * refuses them) plus two types anyone may post, each on its own stream.
 */
export function testCatalog(): EventCatalog {
  return createCatalog()
    .register({
      type: 'test.thing',
      schemaVersion: 1,
      stream: 'things',
      schema: z.strictObject({ name: z.string().min(1).max(100), fail: z.boolean().optional() }),
      description: 'A thing used by the API tests.',
      example: { name: 'widget' },
    })
    .register({
      type: 'test.note',
      schemaVersion: 1,
      stream: 'notes',
      schema: z.strictObject({ text: z.string().min(1), lang: z.string().default('en') }),
      description: 'A note, with a default.',
      example: { text: 'hello' },
    });
}

export interface Harness {
  app: ApiApp;
  prefix: string;
  keys: StreamfleetKeys;
  redis: Redis;
  config: Config;
  deps: ApiDeps;
  /** Every key under the prefix, sorted. */
  keyList(): Promise<string[]>;
  close(): Promise<void>;
}

export async function createHarness(
  options: {
    adminToken?: string | null;
    deps?: Partial<ApiDeps>;
    catalog?: EventCatalog;
    /** Connection the app's producer, dead letters and idempotency store use (default: a live one). */
    appRedis?: Redis;
    /** More environment for `loadConfig`, e.g. `{ TRUST_PROXY: '10.0.0.1' }`. */
    env?: Record<string, string>;
  } = {},
): Promise<Harness> {
  const prefix = uniquePrefix('api');
  const url = testRedisUrl();
  const config = loadConfig({
    REDIS_URL: url,
    STREAMFLEET_PREFIX: prefix,
    ...(options.adminToken === null ? {} : { ADMIN_TOKEN: options.adminToken ?? ADMIN_TOKEN }),
    ...options.env,
  });
  const keys = new StreamfleetKeys(prefix);
  const redis = createRedis(url);
  const catalog = options.catalog ?? testCatalog();
  const retryQueues = new RetryQueues({ connection: redis, keys });
  const appRedis = options.appRedis ?? redis;
  const deps: ApiDeps = {
    redis: appRedis,
    catalog,
    producer: new StreamProducer({ redis: appRedis, keys, catalog }),
    deadLetters: new DeadLetterStream({ redis: appRedis, keys, retryQueues, catalog }),
    retryQueues,
    ...options.deps,
  };
  const app = buildApp(config, deps);
  await app.ready();
  return {
    app,
    prefix,
    keys,
    redis,
    config,
    deps,
    async keyList() {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', keys.pattern, 'COUNT', 1000);
        cursor = next;
        found.push(...batch);
      } while (cursor !== '0');
      return found.sort();
    },
    async close() {
      await app.close();
      await retryQueues.close();
      await cleanupPrefix(url, prefix);
      await redis.quit();
    },
  };
}

export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

export type LogLine = Record<string, unknown> & { level: string; msg?: string };

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * A pino-shaped logger that keeps every line in memory, with the bindings of its children
 * (Fastify binds `reqId` on each request's child logger). Enough of pino for Fastify.
 */
export function recordingLogger(lines: LogLine[], level = 'debug', bindings: Record<string, unknown> = {}): Logger {
  const enabled = (l: string) => LEVELS.indexOf(l as (typeof LEVELS)[number]) >= LEVELS.indexOf(level as 'debug');
  const write =
    (l: string) =>
    (objOrMsg?: unknown, msg?: string): void => {
      if (!enabled(l)) return;
      const fields = typeof objOrMsg === 'object' && objOrMsg !== null ? (objOrMsg as Record<string, unknown>) : {};
      const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
      lines.push({ ...bindings, ...fields, level: l, ...(text === undefined ? {} : { msg: text }) });
    };
  const logger = {
    level,
    silent: () => undefined,
    isLevelEnabled: enabled,
    child: (more: Record<string, unknown>) => recordingLogger(lines, level, { ...bindings, ...more }),
    ...Object.fromEntries(LEVELS.map((l) => [l, write(l)])),
  };
  return logger as unknown as Logger;
}
