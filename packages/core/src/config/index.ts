import { isIP } from 'node:net';
import { z } from 'zod';
import { StreamfleetError } from '../errors/index';
import { redisNodesOf } from '../streams/connection';
import { DEFAULT_HANDLER_TIMEOUT_MS } from '../streams/handler';

/**
 * The longest any millisecond setting may be: 24 days. Every `*_MS` value ends up in a
 * `setTimeout` (directly, or as an interval derived from it), and Node runs a delay above
 * 2^31-1 ms (~24.8 days) after 1 ms instead — a claim loop would spin, a shutdown watchdog
 * would fire at once. 24 days also leaves room for the worker's hard shutdown deadline,
 * `SHUTDOWN_TIMEOUT_MS + 10 s`.
 */
export const MAX_DURATION_MS = 24 * 24 * 3_600_000;

/** The ADMIN_TOKEN the README and docker-compose.yml used to show: refused, since anyone can read it. */
const PUBLISHED_EXAMPLE_TOKEN = 'change-me-to-a-long-secret';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** A millisecond setting that is used as a timer delay: at most `MAX_DURATION_MS`. */
const durationMs = (min: number) =>
  int(min).max(MAX_DURATION_MS, `must be at most ${MAX_DURATION_MS} (24 days): longer timers do not work in Node`);
const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .pipe(z.url().optional())
  .optional();
/**
 * Where this process's data lives (`REDIS_URL`, `DATABASE_URL`, `STREAMFLEET_PREFIX`): set but
 * empty is a mistake, e.g. `STREAMFLEET_PREFIX=$TENANT` with TENANT unset, not "use the
 * default", which would point the process at another deployment's keys or database.
 */
const REQUIRED_IF_SET = new Set(['REDIS_URL', 'DATABASE_URL', 'STREAMFLEET_PREFIX']);
const requiredIfSet = (fallback: string, schema: z.ZodType<string, string>) =>
  z
    .string()
    .refine((v) => v.trim() !== '', {
      message: `is set but empty; unset it to use the default (${fallback})`,
      abort: true,
    })
    .pipe(schema)
    .default(fallback);
const redisUrl = z.url({ protocol: /^rediss?$/ });
/** One Redis URL, or a Redis Cluster's nodes separated by commas (checked against REDIS_CLUSTER below). */
const redisUrls = z.string().superRefine((value, ctx) => {
  const nodes = redisNodesOf(value);
  const bad = nodes.findIndex((node) => !redisUrl.safeParse(node).success);
  if (nodes.length <= 1 && bad !== -1) ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
  else if (bad !== -1) {
    // Which one, not its text: a URL may carry a password.
    ctx.addIssue({ code: 'custom', message: `node ${bad + 1} of ${nodes.length} must be a redis:// or rediss:// URL` });
  }
});
/**
 * Requests per client per minute; 0 turns the limit off. Whole decimal digits only: `z.coerce`
 * would read `" "` as 0, which here means "no limit", and `1e3` or `0x10` as numbers.
 */
const perMinute = z
  .string()
  .regex(/^\d+$/, 'must be a whole number of requests per minute (0: no limit)')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER, `must be at most ${Number.MAX_SAFE_INTEGER}`));

const MAX_PROXY_HOPS = 100;
const TRUST_PROXY_FORMS = 'true, false, a hop count (e.g. 1) or comma-separated proxy IP addresses/CIDRs';
/** One trusted proxy: an IP address, or a CIDR range with a prefix of 1 to 32 (IPv4) or 128 (IPv6). */
function proxyAddressProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/');
  const address = slash === -1 ? entry : entry.slice(0, slash);
  // A zone id (`fe80::1%eth0`) names an interface of this host, not a proxy's address.
  const family = address.includes('%') ? 0 : isIP(address);
  if (family === 0) return `${JSON.stringify(entry)} is not an IP address or CIDR range`;
  if (slash === -1) return undefined;
  const bits = entry.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  // 0 is refused as the proxy-address library Fastify uses refuses it: /0 would trust every address.
  if (!/^\d{1,3}$/.test(bits) || Number(bits) < 1 || Number(bits) > max) {
    return `${JSON.stringify(entry)} has no valid prefix length (1 to ${max} for IPv${family})`;
  }
  return undefined;
}
/**
 * `TRUST_PROXY`: whose `X-Forwarded-For` to believe. `false` (0 hops) or `true`, a hop count,
 * or the proxies' addresses. `1` is a hop count, not `true`: Fastify treats the two differently.
 */
const trustProxy = z
  .string()
  .default('false')
  .transform((raw, ctx): boolean | number | string[] => {
    const value = raw.trim();
    if (value === 'true') return true;
    if (value === 'false') return false;
    if (/^\d+$/.test(value)) {
      const hops = Number(value);
      if (hops <= MAX_PROXY_HOPS) return hops === 0 ? false : hops;
      // More likely a port than a chain of proxies, and as a hop count it would trust any peer.
      ctx.addIssue({
        code: 'custom',
        message: `is a hop count above ${MAX_PROXY_HOPS}: give the number of proxies in front of the API, or their addresses`,
      });
      return z.NEVER;
    }
    const entries = value
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    const problems = entries.flatMap((entry) => proxyAddressProblem(entry) ?? []);
    if (entries.length === 0 || problems.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must be ${TRUST_PROXY_FORMS}${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`,
      });
      return z.NEVER;
    }
    return entries;
  });
const probability = (message: string) => z.coerce.number({ error: message }).min(0, message).max(1, message);

/**
 * One group's entry in `RETRY_OVERRIDES`. Parsed JSON, not an env string: values must be
 * JSON integers already (no coercion, so `true`, `null` or `[7]` are refused), within the
 * bounds of the matching global variables.
 */
const strictInt = (min: number, max: number) =>
  z
    .number({ error: 'must be a JSON number' })
    .int('must be an integer')
    .min(min, `must be >= ${min}`)
    .max(max, max === MAX_DURATION_MS ? `must be at most ${MAX_DURATION_MS} (24 days)` : `must be <= ${max}`);
const retryOverride = z
  .object({
    maxAttempts: strictInt(1, 100).optional(),
    baseDelayMs: strictInt(0, MAX_DURATION_MS).optional(),
    maxDelayMs: strictInt(0, MAX_DURATION_MS).optional(),
  })
  .strict();

/**
 * The whole environment contract in one schema. Only entrypoints call `loadConfig`;
 * everything else receives the parsed `Config`.
 */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    REDIS_URL: requiredIfSet('redis://127.0.0.1:6379', redisUrls),
    REDIS_CLUSTER: z
      .enum(['', 'true', 'false', '1', '0'], { error: 'must be true or false' })
      .default('')
      .transform((v) => v === 'true' || v === '1'),
    DATABASE_URL: requiredIfSet(
      'postgres://postgres@127.0.0.1:5432/streamfleet',
      z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }),
    ),
    DATABASE_POOL_MAX: int(1, 1000).default(10),
    PORT: int(0, 65535).default(3000),
    HOST: z.string().default('0.0.0.0'),
    WORKER_PORT: int(0, 65535).default(3001),
    RATE_LIMIT_INGEST_PER_MIN: perMinute.default(6000),
    RATE_LIMIT_ADMIN_PER_MIN: perMinute.default(600),
    TRUST_PROXY: trustProxy,
    ADMIN_TOKEN: z
      .string()
      .min(16, 'must be at least 16 characters')
      // A bearer token is one word: a token with whitespace could never authenticate.
      .regex(/^\S*$/, 'must not contain whitespace (spaces, tabs or newlines)')
      .refine((token) => token !== PUBLISHED_EXAMPLE_TOKEN, 'is the published example value; set a secret of your own')
      .optional()
      .or(z.literal('').transform(() => undefined)),
    STREAMFLEET_PREFIX: requiredIfSet(
      'sf',
      z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash and underscore only (1-64)'),
    ),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    RETRY_MAX_ATTEMPTS: int(1, 100).default(3),
    RETRY_BASE_DELAY_MS: durationMs(0).default(1000),
    RETRY_MAX_DELAY_MS: durationMs(0).default(10_000),
    RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
    RETRY_OVERRIDES: z
      .string()
      .optional()
      .transform((raw, ctx) => {
        if (!raw) return {};
        try {
          return JSON.parse(raw) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON, e.g. {"payment":{"maxAttempts":5}}' });
          return z.NEVER;
        }
      })
      .pipe(z.record(z.string(), retryOverride)),
    VISIBILITY_TIMEOUT_MS: durationMs(100).default(30_000),
    MAX_DELIVERIES: int(1, 1000).default(5),
    HANDLER_TIMEOUT_MS: durationMs(0).default(DEFAULT_HANDLER_TIMEOUT_MS),
    CONSUMER_CONCURRENCY: int(1, 10_000).default(50),
    CONSUMER_BATCH_SIZE: int(1, 10_000).default(200),
    CONSUMER_BLOCK_MS: int(10, 60_000).default(2000),
    WORKER_GROUPS: z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) return undefined;
        const names = v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        // Set but naming nothing (",") is a mistake, not "all groups": unset it to run every group.
        if (names.length === 0) {
          ctx.addIssue({ code: 'custom', message: 'names no group; give comma-separated group names or unset it' });
          return z.NEVER;
        }
        return names;
      }),
    SHUTDOWN_TIMEOUT_MS: durationMs(0).default(15_000),
    PAYMENT_GATEWAY_URL: optionalUrl,
    PAYMENT_SIMULATOR_FAILURE_RATE: probability(
      'must be a number from 0 to 1 (the share of simulated payment calls that fail transiently)',
    ).default(0),
    NOTIFICATION_WEBHOOK_URL: optionalUrl,
    SAGA_TIMEOUT_MS: durationMs(0).default(600_000),
    DEDUP_RETENTION_HOURS: int(0).default(168),
  })
  .superRefine((env, ctx) => {
    const redisNodes = redisNodesOf(env.REDIS_URL).length;
    if (redisNodes > 1 && !env.REDIS_CLUSTER) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_URL'],
        message: `lists ${redisNodes} nodes, which is for a Redis Cluster: set REDIS_CLUSTER=true, or give one URL`,
      });
    }
    if (env.RETRY_MAX_DELAY_MS < env.RETRY_BASE_DELAY_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['RETRY_MAX_DELAY_MS'],
        message: `must be >= RETRY_BASE_DELAY_MS (${env.RETRY_BASE_DELAY_MS})`,
      });
    }
    // An override's missing side is the global value, so check each group's effective pair.
    // Each attempt may run up to the handler timeout before its retry is even scheduled.
    const attemptMs = env.HANDLER_TIMEOUT_MS;
    let retryWindowMs = env.RETRY_MAX_ATTEMPTS * (env.RETRY_MAX_DELAY_MS + attemptMs);
    for (const [group, o] of Object.entries(env.RETRY_OVERRIDES)) {
      const base = o.baseDelayMs ?? env.RETRY_BASE_DELAY_MS;
      const max = o.maxDelayMs ?? env.RETRY_MAX_DELAY_MS;
      if (max < base) {
        ctx.addIssue({
          code: 'custom',
          path: ['RETRY_OVERRIDES', group, o.maxDelayMs === undefined ? 'baseDelayMs' : 'maxDelayMs'],
          message:
            o.maxDelayMs === undefined
              ? `must be <= RETRY_MAX_DELAY_MS (${max}), or give this group a maxDelayMs`
              : `must be >= ${o.baseDelayMs === undefined ? 'RETRY_BASE_DELAY_MS' : 'baseDelayMs'} (${base})`,
        });
      }
      retryWindowMs = Math.max(retryWindowMs, (o.maxAttempts ?? env.RETRY_MAX_ATTEMPTS) * (max + attemptMs));
    }
    // A handler's dedup row must outlive every redelivery of its event: a claim after the
    // visibility timeout, then up to maxAttempts attempts, each running up to the handler
    // timeout and retried at most maxDelay later. (Pauses and DLQ replays have no bound: README.)
    // (Skipped when a duration is out of range: that is reported already, and is the real mistake.)
    const neededMs = env.VISIBILITY_TIMEOUT_MS + retryWindowMs;
    const durationsInRange = [env.VISIBILITY_TIMEOUT_MS, env.RETRY_MAX_DELAY_MS, env.HANDLER_TIMEOUT_MS]
      .concat(Object.values(env.RETRY_OVERRIDES).map((o) => o.maxDelayMs ?? 0))
      .every((ms) => ms <= MAX_DURATION_MS);
    if (durationsInRange && env.DEDUP_RETENTION_HOURS > 0 && env.DEDUP_RETENTION_HOURS * 3_600_000 < neededMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEDUP_RETENTION_HOURS'],
        message:
          `must be 0 (forever) or at least ${Math.ceil(neededMs / 3_600_000)}: an event can still be redelivered ` +
          `${neededMs} ms after its first delivery ` +
          '(VISIBILITY_TIMEOUT_MS + attempts x (max retry delay + HANDLER_TIMEOUT_MS))',
      });
    }
  });

export type Env = z.infer<typeof configSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  redisUrl: string;
  /** `REDIS_URL` names nodes of a Redis Cluster (one or several, comma-separated). */
  redisCluster: boolean;
  databaseUrl: string;
  /** Postgres pool size of each process (a worker's outbox relay takes two more: its LISTEN and its lock session). */
  databasePoolMax: number;
  port: number;
  host: string;
  workerPort: number;
  /** The API's per-client (per IP) request limits, per minute, in each API process's memory. 0: no limit. */
  rateLimit: {
    /** Each ingest route (`POST /v1/events`, `/v1/events/batch`) on its own. */
    ingestPerMin: number;
    /** All admin routes together: one budget per client. */
    adminPerMin: number;
  };
  /**
   * Which peers' `X-Forwarded-For` the API believes to find a client's IP (Fastify's
   * `trustProxy`): `false` none, `true` any, a hop count, or the proxies' addresses/CIDRs.
   */
  trustProxy: boolean | number | string[];
  adminToken: string | undefined;
  prefix: string;
  logLevel: Env['LOG_LEVEL'];
  retry: {
    maxAttempts: number;
    baseDelayMs: number;
    maxDelayMs: number;
    jitter: number;
    overrides: Record<string, { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number }>;
  };
  consumer: {
    visibilityTimeoutMs: number;
    maxDeliveries: number;
    /** 0: handlers never time out. */
    handlerTimeoutMs: number;
    concurrency: number;
    batchSize: number;
    blockMs: number;
  };
  workerGroups: string[] | undefined;
  shutdownTimeoutMs: number;
  paymentGatewayUrl: string | undefined;
  /**
   * Probability (0..1) that a call to the built-in payment simulator fails transiently
   * (retryable). Ignored when `paymentGatewayUrl` is set.
   */
  paymentSimulatorFailureRate: number;
  notificationWebhookUrl: string | undefined;
  /** A saga waiting this long for inventory or payment is given up (order cancelled). 0: never. */
  sagaTimeoutMs: number;
  /** How long handlers' dedup rows (`processed_events`) are kept. 0: forever. */
  dedupRetentionMs: number;
}

/** Invalid environment. The message names every offending variable. */
export class ConfigError extends StreamfleetError {
  constructor(message: string, issues: { variable: string; message: string }[]) {
    super('CONFIG_INVALID', message, { details: { issues } });
  }
}

/** Variables whose values never appear in an error message (it ends up in logs). */
const SECRET_VARIABLES = new Set(['ADMIN_TOKEN']);

/** Parses the environment once. Throws `ConfigError` naming each bad variable. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // Empty strings mean "unset", as in most dotenv tooling, except where the data lives.
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([k, v]) => v !== undefined && (v !== '' || REQUIRED_IF_SET.has(k))),
  );
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? 'environment');
      const rest = issue.path.slice(1).join('.');
      const value = source[variable];
      const shown =
        value === undefined
          ? 'unset'
          : SECRET_VARIABLES.has(variable)
            ? `${value.length} characters, not shown`
            : JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
      return { variable, message: `${rest ? `${rest}: ` : ''}${issue.message} (got ${shown})` };
    });
    const text = issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n');
    throw new ConfigError(`Invalid environment:\n${text}`, issues);
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    port: e.PORT,
    host: e.HOST,
    workerPort: e.WORKER_PORT,
    rateLimit: { ingestPerMin: e.RATE_LIMIT_INGEST_PER_MIN, adminPerMin: e.RATE_LIMIT_ADMIN_PER_MIN },
    trustProxy: e.TRUST_PROXY,
    adminToken: e.ADMIN_TOKEN,
    prefix: e.STREAMFLEET_PREFIX,
    logLevel: e.LOG_LEVEL,
    retry: {
      maxAttempts: e.RETRY_MAX_ATTEMPTS,
      baseDelayMs: e.RETRY_BASE_DELAY_MS,
      maxDelayMs: e.RETRY_MAX_DELAY_MS,
      jitter: e.RETRY_JITTER,
      overrides: e.RETRY_OVERRIDES,
    },
    consumer: {
      visibilityTimeoutMs: e.VISIBILITY_TIMEOUT_MS,
      maxDeliveries: e.MAX_DELIVERIES,
      handlerTimeoutMs: e.HANDLER_TIMEOUT_MS,
      concurrency: e.CONSUMER_CONCURRENCY,
      batchSize: e.CONSUMER_BATCH_SIZE,
      blockMs: e.CONSUMER_BLOCK_MS,
    },
    workerGroups: e.WORKER_GROUPS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    paymentGatewayUrl: e.PAYMENT_GATEWAY_URL,
    paymentSimulatorFailureRate: e.PAYMENT_SIMULATOR_FAILURE_RATE,
    notificationWebhookUrl: e.NOTIFICATION_WEBHOOK_URL,
    sagaTimeoutMs: e.SAGA_TIMEOUT_MS,
    dedupRetentionMs: e.DEDUP_RETENTION_HOURS * 3_600_000,
  };
}
