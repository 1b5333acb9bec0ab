import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { z } from 'zod';
import { AuditLog } from '../audit/audit-log';
import { DeadLetterStream } from '../dead-letter/dead-letter-stream';
import { EventCatalog } from '../events/catalog';
import { RetryQueues } from '../retry/retry-queues';
import { StreamfleetKeys } from '../streams/keys';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from './index';

/**
 * The dead-letter specs' world: a `DeadLetterStream` under a key prefix of the spec's own,
 * with retry queues (replays go there) and a catalog of `thing.happened` events carrying a
 * number `n` (so `n: 'one'` fails today's schema). `useHooks()` connects before the spec's
 * tests and closes and cleans up after them.
 */
export class DeadLetterWorld {
  readonly prefix = uniquePrefix();
  readonly keys = new StreamfleetKeys(this.prefix);
  readonly catalog = new EventCatalog().register({
    type: 'thing.happened',
    schemaVersion: 1,
    stream: 'things',
    schema: z.object({ n: z.number() }),
  });
  private connected: { redis: Redis; queues: RetryQueues; dlq: DeadLetterStream } | undefined;

  get redis(): Redis {
    return this.live().redis;
  }

  get queues(): RetryQueues {
    return this.live().queues;
  }

  get dlq(): DeadLetterStream {
    return this.live().dlq;
  }

  /** The audit log the dead-letter stream writes to. */
  get audit(): AuditLog {
    return new AuditLog(this.redis, this.keys);
  }

  useHooks(): this {
    beforeAll(() => {
      const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
      const queues = new RetryQueues({ connection: redis, keys: this.keys });
      const dlq = new DeadLetterStream({ redis, keys: this.keys, retryQueues: queues, catalog: this.catalog });
      this.connected = { redis, queues, dlq };
    });
    afterAll(async () => {
      const connected = this.connected;
      this.connected = undefined;
      await connected?.queues.close();
      connected?.redis.disconnect();
      await cleanupPrefix(testRedisUrl(), this.prefix);
    });
    return this;
  }

  private live() {
    if (!this.connected) throw new Error('DeadLetterWorld: used outside its spec (call useHooks() at the top)');
    return this.connected;
  }
}
