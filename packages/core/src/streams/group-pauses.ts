import type { RetryQueues } from '../retry/retry-queues';
import type { RedisClient } from './connection';
import type { StreamfleetKeys } from './keys';

/**
 * Pausing a consumer group, fleet-wide: like pausing a BullMQ queue or quieting Sidekiq, for
 * when what a group calls is down and its events had better wait in the stream than burn
 * their attempts into the dead-letter stream. A paused group's consumers, in every process,
 * read no new entries and claim none (each notices within `pauseCheckMs`, a second by
 * default); handlers already running finish and are acked. Its retry queue is paused too
 * (BullMQ's own pause): no retry job starts, delayed ones wait until the group resumes.
 * Other groups of the same stream go on as before.
 */
export class GroupPauses {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamfleetKeys,
    private readonly retryQueues: RetryQueues,
  ) {}

  /** Pauses the group; false when it was paused already. */
  async pause(group: string): Promise<boolean> {
    const added = await this.redis.sadd(this.keys.pausedGroups, group);
    await this.retryQueues.queue(group).pause();
    return added === 1;
  }

  /** Resumes the group; false when it was not paused. */
  async resume(group: string): Promise<boolean> {
    const removed = await this.redis.srem(this.keys.pausedGroups, group);
    await this.retryQueues.queue(group).resume();
    return removed === 1;
  }

  /** The groups paused now. */
  async paused(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.keys.pausedGroups));
  }
}
