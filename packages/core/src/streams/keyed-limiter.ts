type Task = () => Promise<unknown>;

/**
 * Runs tasks with bounded concurrency while keeping tasks of one key in submission order.
 * Tasks of different keys run in parallel up to `concurrency`; a key's next task starts
 * only after its previous one settled.
 *
 * Built on plain queues rather than promise chains: it sits on the consumer's hot path,
 * where a chain of awaits per entry cost more than the handler. Not thread-safe by
 * design: one event loop owns it.
 */
export class KeyedLimiter {
  private active = 0;
  /** Key -> tasks queued behind the one of that key that is running or ready. */
  private readonly keys = new Map<string, Task[]>();
  /** Tasks whose key is free, waiting for a slot, oldest first. */
  private ready: [string, Task][] = [];
  private readyHead = 0;

  constructor(private readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be >= 1');
  }

  /** Tasks running now. */
  get running(): number {
    return this.active;
  }

  /**
   * Queues a task. Fire and forget: the task owns its errors (a rejection is swallowed
   * here, after which the key moves on).
   */
  submit(key: string, task: Task): void {
    const queued = this.keys.get(key);
    if (queued) {
      queued.push(task);
      return;
    }
    this.keys.set(key, []);
    if (this.active < this.concurrency) this.start(key, task);
    else this.ready.push([key, task]);
  }

  /** Like `submit`, resolving or rejecting with the task's own result. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.submit(key, () => task().then(resolve, reject));
    });
  }

  private start(key: string, task: Task): void {
    this.active++;
    let outcome: Promise<unknown>;
    try {
      outcome = task();
    } catch (err) {
      outcome = Promise.reject(err);
    }
    outcome.then(
      () => this.finish(key),
      () => this.finish(key),
    );
  }

  private finish(key: string): void {
    this.active--;
    const queued = this.keys.get(key);
    const next = queued?.shift();
    if (next) this.ready.push([key, next]);
    else this.keys.delete(key);
    while (this.active < this.concurrency && this.readyHead < this.ready.length) {
      const [k, t] = this.ready[this.readyHead++] as [string, Task];
      this.start(k, t);
    }
    if (this.readyHead === this.ready.length) {
      this.ready = [];
      this.readyHead = 0;
    }
  }
}
