export interface RetryPolicyOptions {
  /** Every attempt counts, the first delivery included. 1 means "never retry". */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Fraction (0..1) of each delay that is randomised away, so retries of a burst spread out. */
  jitter: number;
}

export const DEFAULT_RETRY: RetryPolicyOptions = {
  maxAttempts: 3,
  baseDelayMs: 1000,
  maxDelayMs: 10_000,
  jitter: 0.2,
};

/**
 * Exponential backoff: the delay after attempt n is `base * 2^(n-1)`, capped at `maxDelayMs`,
 * then reduced by up to `jitter` of itself. Jitter only ever shortens a delay, so the cap
 * holds and consecutive delays below the cap still grow.
 */
export class RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly jitter: number;

  constructor(
    options: Partial<RetryPolicyOptions> = {},
    private readonly random: () => number = Math.random,
  ) {
    const o = { ...DEFAULT_RETRY, ...stripUndefined(options) };
    if (!Number.isInteger(o.maxAttempts) || o.maxAttempts < 1)
      throw new RangeError('maxAttempts must be an integer >= 1');
    if (o.baseDelayMs < 0 || o.maxDelayMs < 0) throw new RangeError('delays must be >= 0');
    if (o.jitter < 0 || o.jitter > 1) throw new RangeError('jitter must be between 0 and 1');
    this.maxAttempts = o.maxAttempts;
    this.baseDelayMs = o.baseDelayMs;
    this.maxDelayMs = Math.max(o.maxDelayMs, o.baseDelayMs);
    this.jitter = o.jitter;
  }

  /** Delay before attempt `failedAttempt + 1`, in ms. */
  delayAfter(failedAttempt: number): number {
    const exponent = Math.max(0, failedAttempt - 1);
    const raw = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(exponent, 52));
    return Math.round(raw - raw * this.jitter * this.random());
  }

  /** True when another attempt is allowed after `attempt` failed. */
  canRetryAfter(attempt: number): boolean {
    return attempt < this.maxAttempts;
  }

  /** The policy for one group: defaults overlaid with that group's overrides. */
  static forGroup(
    defaults: RetryPolicyOptions,
    overrides: Record<string, Partial<RetryPolicyOptions>> | undefined,
    group: string,
    definitionOverride?: Partial<RetryPolicyOptions>,
  ): RetryPolicy {
    return new RetryPolicy({
      ...defaults,
      ...stripUndefined(definitionOverride ?? {}),
      ...stripUndefined(overrides?.[group] ?? {}),
    });
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
