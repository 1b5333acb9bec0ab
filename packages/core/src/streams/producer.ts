import type { EventCatalog } from '../events/catalog';
import { encodeEvent } from '../events/codec';
import type { EventEnvelope } from '../events/envelope';
import type { RedisClient } from './connection';
import type { StreamfleetKeys } from './keys';

export interface StreamProducerOptions {
  redis: RedisClient;
  keys: StreamfleetKeys;
  /** When given, every event's data is validated before it is written. */
  catalog?: EventCatalog;
}

export interface PublishTarget {
  stream: string;
  event: EventEnvelope;
}

/**
 * Appends events to streams with XADD. Never trims: trimming is the `StreamTrimmer`'s job,
 * which respects what consumer groups have not acknowledged. Safe to share across callers;
 * ioredis pipelines concurrent calls on one connection.
 */
export class StreamProducer {
  private readonly redis: RedisClient;
  private readonly keys: StreamfleetKeys;
  private readonly catalog: EventCatalog | undefined;

  constructor(options: StreamProducerOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.catalog = options.catalog;
  }

  /** Appends one event; resolves to its stream entry id. */
  async publish(stream: string, event: EventEnvelope): Promise<string> {
    this.validate(event);
    return this.append(stream, event);
  }

  /**
   * Appends many events in one transaction (MULTI/EXEC, one round trip); resolves to their
   * entry ids, in order. All or nothing when Redis refuses a command as it is queued (out of
   * memory) or the connection drops before EXEC: a batch is never half written, so a client
   * retrying it cannot publish its first events twice.
   */
  async publishMany(targets: readonly PublishTarget[]): Promise<string[]> {
    for (const t of targets) this.validate(t.event);
    if (targets.length === 0) return [];
    if (targets.length === 1) {
      // A one-command pipeline costs more than the command, and on an auto-pipelining
      // connection a plain command joins the other requests' commands in one write.
      const t = targets[0] as PublishTarget;
      return [await this.append(t.stream, t.event)];
    }
    const transaction = this.redis.multi();
    for (const t of targets) transaction.xadd(this.keys.stream(t.stream), '*', ...encodeEvent(t.event));
    const results = (await transaction.exec()) ?? [];
    return results.map(([err, id]) => {
      if (err) throw err;
      return id as string;
    });
  }

  /** XADD with no `MAXLEN`/`NOMKSTREAM`, so Redis always answers an id. */
  private append(stream: string, event: EventEnvelope): Promise<string> {
    return this.redis.xadd(this.keys.stream(stream), '*', ...encodeEvent(event)) as Promise<string>;
  }

  private validate(event: EventEnvelope): void {
    this.catalog?.validate(event.type, event.schemaVersion, event.data);
  }
}
