import { readFileSync } from 'node:fs';
import { AUDIT_MAX_LEN, auditFields, byOperator } from '../audit/audit-log';
import type { OperatorContext } from '../audit/types';
import type { RetryQueues } from '../retry/retry-queues';
import type { RedisClient } from './connection';
import type { StreamfleetKeys } from './keys';

const SET_GROUP_PAUSED = readFileSync(new URL('./set-group-paused-2.lua', import.meta.url), 'utf8');

type PausesRedis = RedisClient & {
  sfSetGroupPaused(...args: string[]): Promise<number>;
};

/**
 * Pausing a consumer group, fleet-wide: like pausing a BullMQ queue or quieting Sidekiq, for
 * when what a group calls is down and its events had better wait in the stream than burn
 * their attempts into the dead-letter stream. A paused group's consumers, in every process,
 * read no new entries and claim none (each notices within `pauseCheckMs`, a second by
 * default); handlers already running finish and are acked. Its retry queue is paused too
 * (BullMQ's own pause): no retry job starts, delayed ones wait until the group resumes.
 * Other groups of the same stream go on as before.
 *
 * Every pause and resume that changes the group's state is audited (`AuditLog`) with its
 * operator, in the same script as the change; one that finds the group in that state already
 * changes nothing and records nothing.
 */
export class GroupPauses {
  private readonly redis: PausesRedis;

  constructor(
    redis: RedisClient,
    private readonly keys: StreamfleetKeys,
    private readonly retryQueues: RetryQueues,
  ) {
    this.redis = redis as PausesRedis;
    if (typeof this.redis.sfSetGroupPaused !== 'function') {
      this.redis.defineCommand('sfSetGroupPaused', { numberOfKeys: 2, lua: SET_GROUP_PAUSED });
    }
  }

  /** Pauses the group; false when it was paused already. */
  async pause(group: string, operator: OperatorContext): Promise<boolean> {
    const changed = await this.set(group, true, operator);
    // After the flag and its record, not in their script: BullMQ's pause is BullMQ's own. A
    // crash in between leaves the retry queue running until the next pause call for the group,
    // which pauses it (BullMQ's pause is idempotent) and, changing no flag, records nothing.
    await this.retryQueues.queue(group).pause();
    return changed;
  }

  /** Resumes the group; false when it was not paused. */
  async resume(group: string, operator: OperatorContext): Promise<boolean> {
    const changed = await this.set(group, false, operator);
    // As in pause(): a crash before this leaves the queue paused until the next resume call.
    await this.retryQueues.queue(group).resume();
    return changed;
  }

  /** The groups paused now. */
  async paused(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.keys.pausedGroups));
  }

  private async set(group: string, paused: boolean, operator: OperatorContext): Promise<boolean> {
    const audit = auditFields({ action: paused ? 'pause' : 'resume', group, ...byOperator(operator) });
    const changed = await this.redis.sfSetGroupPaused(
      this.keys.pausedGroups,
      this.keys.audit,
      paused ? '1' : '0',
      group,
      String(AUDIT_MAX_LEN),
      ...audit,
    );
    return changed === 1;
  }
}
