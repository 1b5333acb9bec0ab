import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { isPostgresClientError } from '../store/client';

/** A connection to a single Redis server, or to a Redis Cluster through one of its nodes. */
export type RedisClient = Redis | Cluster;

export interface RedisConnectionOptions extends RedisOptions {
  /**
   * `url` names nodes of a Redis Cluster (`REDIS_CLUSTER=true`), one or several separated by
   * commas: the client learns the others from the first that answers and follows slot moves
   * and failovers. Every key of a fleet shares one hash tag (`StreamfleetKeys`), so every
   * multi-key command and script stays in one slot.
   */
  cluster?: boolean;
}

/**
 * A Redis connection for workers: commands wait through reconnects instead of failing
 * (`maxRetriesPerRequest: null`, which BullMQ also requires), reconnect backs off to 2 s.
 */
export function createRedis(url: string, options?: RedisConnectionOptions & { cluster?: false }): Redis;
export function createRedis(url: string, options: RedisConnectionOptions): RedisClient;
export function createRedis(url: string, options: RedisConnectionOptions = {}): RedisClient {
  const { cluster, ...redisOptions } = options;
  const seeds = redisNodesOf(url);
  if (seeds.length > 1 && !cluster) {
    throw new Error(`${seeds.length} Redis URLs given; a list of nodes is for a Redis Cluster (REDIS_CLUSTER=true)`);
  }
  const perNode: RedisOptions = {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    ...redisOptions,
  };
  if (!cluster) return new Redis(seeds[0]!, perNode);
  // While a master fails over (the cluster's node timeout, 15 s by default, then an election),
  // its slots answer MOVED to the dead node or CLUSTERDOWN. A connection that waits through
  // reconnects waits through that too, ~5 minutes at most; one that gives up early (the API's)
  // keeps ioredis's ~2 s.
  const patient = perNode.maxRetriesPerRequest === null;
  return new Cluster(seeds, {
    // Nodes learnt from the cluster need the seeds' credentials and TLS too.
    redisOptions: { ...credentialsOf(seeds[0]!), ...perNode },
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    maxRedirections: patient ? 1500 : 10,
  });
}

/** A second connection like `client` (e.g. for blocking reads), under its own name. */
export function duplicateRedis(client: RedisClient, connectionName: string): RedisClient {
  if (client instanceof Cluster) {
    return client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, connectionName } });
  }
  return client.duplicate({ connectionName });
}

/** The name a connection gives itself on the server (`CLIENT SETNAME`), if any. */
export function connectionNameOf(client: RedisClient): string | undefined {
  return client instanceof Cluster ? client.options.redisOptions?.connectionName : client.options.connectionName;
}

/** The servers behind a client, for per-server commands (`CLIENT ...`): itself, or every master of a cluster. */
export function serversOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/**
 * The node URLs in a `REDIS_URL`: one, or several separated by commas (a cluster's seeds, so
 * that a process can start while one of them is down).
 */
export function redisNodesOf(url: string): string[] {
  return url
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
}

function credentialsOf(url: string): RedisOptions {
  const { protocol, username, password } = new URL(url);
  return {
    ...(username ? { username: decodeURIComponent(username) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
    ...(protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

const UNREACHABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|ENOTFOUND|Connection is closed|enableOfflineQueue|max retries per request|CLUSTERDOWN|Failed to refresh slots cache|None of startup nodes is available/i;

/**
 * A Redis that cannot be reached right now (refused, reset, closed, a cluster without a
 * master for the slot, or ioredis giving up on a command), as opposed to Redis answering
 * with an error. ioredis reconnects by itself. A postgres.js error is never one, though its
 * message may say ECONNREFUSED too (`isPostgresUnavailable` classifies those).
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error) || isPostgresClientError(err)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError' || UNREACHABLE.test(err.message)
  );
}
