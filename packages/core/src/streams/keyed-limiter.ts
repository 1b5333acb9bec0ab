/** Something the limiter schedules: items of one key run one at a time, in submission order. */
export interface Keyed {
  readonly key: string;
}

/**
 * Bounded concurrency that keeps the items of one key in submission order. Items of
 * different keys run in parallel up to `concurrency`; a key's next item starts only once
 * its previous one is released.
 *
 * The owner starts an item's work in `start(item)` and calls `release(item.key)` when that
 * work has settled, possibly from inside `start` (a synchronous handler). It sits on the
 * consumer's hot path, so it allocates nothing per item beyond a queue for a key that is
 * already busy. Not thread-safe by design: one event loop owns it. `start` must not throw.
 */
export class KeyedLimiter<T extends Keyed> {
  private active = 0;
  /** Busy key -> items queued behind the one of that key that is running or ready (`null`: none). */
  private readonly busy = new Map<string, T[] | null>();
  /** Items whose key is free, waiting for a slot, oldest first. */
  private ready: (T | undefined)[] = [];
  private readyHead = 0;
  private pumping = false;

  constructor(
    private readonly concurrency: number,
    private readonly start: (item: T) => void,
  ) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be >= 1');
  }

  /** Items started and not yet released. */
  get running(): number {
    return this.active;
  }

  submit(item: T): void {
    const queued = this.busy.get(item.key);
    if (queued === null) this.busy.set(item.key, [item]);
    else if (queued !== undefined) queued.push(item);
    else {
      this.busy.set(item.key, null);
      this.ready.push(item);
      this.pump();
    }
  }

  /** The item of `key` that was started has settled: frees its slot and readies the key's next item. */
  release(key: string): void {
    this.active--;
    const queued = this.busy.get(key);
    const next = queued?.shift();
    if (next === undefined) this.busy.delete(key);
    else {
      if (queued?.length === 0) this.busy.set(key, null);
      this.ready.push(next);
    }
    this.pump();
  }

  /**
   * Takes every item not started yet (ready for a slot, or queued behind its key's running
   * item) out of the limiter and returns them, oldest of each key first; the running items
   * stay, and their release starts nothing more of their keys.
   */
  takeQueued(): T[] {
    const taken: T[] = [];
    const readyKeys = new Set<string>();
    for (let i = this.readyHead; i < this.ready.length; i++) {
      const item = this.ready[i] as T;
      taken.push(item);
      readyKeys.add(item.key);
    }
    this.ready = [];
    this.readyHead = 0;
    for (const [key, queued] of this.busy) {
      if (queued) taken.push(...queued);
      if (readyKeys.has(key)) this.busy.delete(key);
      else this.busy.set(key, null);
    }
    return taken;
  }

  /** Starts ready items while slots are free. A loop, not recursion, when `start` releases at once. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.active < this.concurrency && this.readyHead < this.ready.length) {
        const item = this.ready[this.readyHead] as T;
        this.ready[this.readyHead++] = undefined;
        this.active++;
        this.start(item);
      }
      if (this.readyHead === this.ready.length) {
        this.ready.length = 0;
        this.readyHead = 0;
      } else if (this.readyHead >= 1024 && this.readyHead * 2 >= this.ready.length) {
        // Never fully drained under steady load: drop the started prefix now and then.
        this.ready.splice(0, this.readyHead);
        this.readyHead = 0;
      }
    } finally {
      this.pumping = false;
    }
  }
}
