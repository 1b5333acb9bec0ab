import type { DeadLetterReason } from '../dead-letter/types';
import type { EventEnvelope } from '../events/envelope';
import type { Logger } from '../logging/index';
import type { RetryPolicyOptions } from '../retry/retry-policy';

/**
 * How long a handler may run before its attempt counts as failed (`HandlerTimeoutError`) and
 * its entry moves on to a retry: 5 minutes, Kafka's `max.poll.interval.ms`.
 */
export const DEFAULT_HANDLER_TIMEOUT_MS = 300_000;

/** What a handler learns about the delivery it is running for. */
export interface HandlerContext {
  readonly group: string;
  readonly stream: string;
  /** Source stream entry id. */
  readonly entryId: string;
  /** 1 for the first delivery; counts retries, not crashes. */
  readonly attempt: number;
  /** How often the group's stream delivered this entry (claims after crashes raise it). */
  readonly deliveryCount: number;
  /** How often an operator replayed this event from the dead-letter stream. */
  readonly replayCount: number;
  /** Child logger carrying group, consumer, stream, eventId and eventType. */
  readonly logger: Logger;
  /**
   * Aborted (with a `HandlerTimeoutError`) once the attempt has run longer than the group's
   * handler timeout; its outcome no longer counts then. Pass it to `fetch` and the like.
   */
  readonly signal: AbortSignal;
}

/**
 * Handles one event for one group. Contract: it may be called more than once for the same
 * event (at-least-once), so it must be idempotent; resolving means "done, ack it"; throwing
 * means "retry later", unless the error is a `NonRetryableError`, which dead-letters at once.
 */
export type EventHandler = (event: EventEnvelope, context: HandlerContext) => Promise<void> | void;

/** One consumer group: the service that reads a stream, and how it handles and retries. */
export interface GroupDefinition {
  group: string;
  /** Stream name (not key), e.g. `orders`. */
  stream: string;
  handler: EventHandler;
  /** Event types this group handles; others are acknowledged without a call. Default: all. */
  types?: readonly string[];
  /** Overrides of the fleet's retry policy for this group. */
  retry?: Partial<RetryPolicyOptions>;
  /** Handlers running at once in one process (entries of one aggregate still run in order). */
  concurrency?: number;
  /** Overrides the fleet's `handlerTimeoutMs` for this group (0: no timeout). */
  timeoutMs?: number;
}

/** Hooks for metrics. Called synchronously on the hot path: keep them cheap. */
export interface GroupObserver {
  handled?(group: string, durationMs: number): void;
  failed?(group: string): void;
  /** A handler ran past its timeout (its attempt is also counted as `failed`). */
  timedOut?(group: string): void;
  retried?(group: string): void;
  deadLettered?(group: string, reason: DeadLetterReason): void;
}

/** The handler timeout a group runs with: its own `timeoutMs`, else the fleet's, else the default; 0 = none. */
export function handlerTimeoutOf(definition: Pick<GroupDefinition, 'timeoutMs'>, fleetTimeoutMs?: number): number {
  return Math.max(0, definition.timeoutMs ?? fleetTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS);
}

/**
 * What a handler context needs to time out: `signal`, built only if the handler asks for it,
 * and `timeOut`, which aborts it and marks the attempt as given up.
 */
export abstract class TimedAttempt {
  /** The attempt ran past its timeout: its outcome no longer counts. */
  timedOut = false;
  private abort: AbortController | undefined;

  get signal(): AbortSignal {
    this.abort ??= new AbortController();
    return this.abort.signal;
  }

  timeOut(reason: Error): void {
    this.timedOut = true;
    this.abort ??= new AbortController();
    this.abort.abort(reason);
  }
}
