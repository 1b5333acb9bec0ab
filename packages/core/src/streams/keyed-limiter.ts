/**
 * Runs tasks with bounded concurrency while keeping tasks of one key in submission order.
 * Tasks of different keys run in parallel up to `concurrency`; a key's next task starts
 * only after its previous one settled. Not thread-safe by design: one event loop owns it.
 */
export class KeyedLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly tails = new Map<string, Promise<unknown>>();

  constructor(private readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be >= 1');
  }

  /** Resolves with the task's result; a failing task rejects only its own promise. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const start = () => this.withSlot(task);
    const result = previous ? previous.then(start, start) : start();
    this.tails.set(key, result);
    const forget = () => {
      if (this.tails.get(key) === result) this.tails.delete(key);
    };
    result.then(forget, forget);
    return result;
  }

  private async withSlot<T>(task: () => Promise<T>): Promise<T> {
    // A finishing task hands its slot straight to the next waiter, so `active` never
    // overshoots `concurrency` between the release and the waiter resuming.
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
