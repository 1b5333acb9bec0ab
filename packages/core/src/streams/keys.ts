/**
 * Every Redis key streamfleet touches is built here, under one prefix.
 *
 * The prefix is wrapped in a hash tag (`sf` -> `{sf}`) so that every key of a fleet hashes
 * to one Redis Cluster slot: the Lua scripts that write a dead letter and ack its source
 * entry, and BullMQ's own multi-key scripts, then stay legal on a cluster. A prefix that
 * already contains `{...}` is used as given.
 */
export class StreamfleetKeys {
  readonly root: string;

  constructor(readonly prefix: string) {
    this.root = prefix.includes('{') ? prefix : `{${prefix}}`;
  }

  /** The stream an event type is published to, e.g. `{sf}:stream:orders`. */
  stream(name: string): string {
    return `${this.root}:stream:${name}`;
  }

  /** Set of stream names that have consumer groups: lets admin tools enumerate them. */
  get streams(): string {
    return `${this.root}:streams`;
  }

  /** The one dead-letter stream of the fleet. */
  get deadLetter(): string {
    return `${this.root}:dlq`;
  }

  /** Hash: `<group>|<event id>|<replay count>` -> dead-letter entry id; makes writes idempotent. */
  get deadLetterMarkers(): string {
    return `${this.root}:dlq:markers`;
  }

  /** Hash: group -> number of its entries in the dead-letter stream. */
  get deadLetterCounts(): string {
    return `${this.root}:dlq:counts`;
  }

  /** Short-lived record of a dead-letter entry that was replayed or discarded. */
  deadLetterTombstone(entryId: string): string {
    return `${this.root}:dlq:gone:${entryId}`;
  }

  /**
   * Short-lived record that the dead letter of a marker (`<group>|<event id>|<replay count>`)
   * was replayed or discarded: a late write of that same round stays a no-op.
   */
  deadLetterMarkerGone(marker: string): string {
    return `${this.root}:dlq:marker-gone:${marker}`;
  }

  /** Set of consumer groups an operator paused: their consumers read nothing new until resumed. */
  get pausedGroups(): string {
    return `${this.root}:paused`;
  }

  /** Audit stream of operator actions (`AuditLog`): dead letters replayed, discarded or made, groups paused, retries run now. */
  get audit(): string {
    return `${this.root}:audit`;
  }

  /** BullMQ prefix; retry queues are named after their group. */
  get bullPrefix(): string {
    return `${this.root}:retry`;
  }

  /** HTTP idempotency keys of the ingestion API. */
  idempotency(key: string): string {
    return `${this.root}:idem:${key}`;
  }

  /** SCAN pattern matching every key of this fleet (tests and teardown). */
  get pattern(): string {
    return `${this.root.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  }
}
