import { withTimeout } from '../timing';

/** A readiness check: resolves when the dependency answers, throws (or rejects) when not. */
export type ReadinessCheck = () => Promise<unknown>;

export interface ReadinessCheckOptions {
  /** How long one check may take before it counts as failed. Default 2000 ms. */
  timeoutMs?: number;
}

/** What a readiness check gets before it counts as failed: a probe must answer, not hang. */
export const DEFAULT_READINESS_TIMEOUT_MS = 2000;

/**
 * Runs the checks concurrently and reports each by name: `'ok'`, or why it failed (the
 * error's message, or `no answer within <n> ms` when it outlived the timeout). Never
 * throws. A check that times out is not cancelled; the caller's check should be cheap
 * (`select 1`, `PING`) so that an abandoned one costs nothing.
 */
export async function runReadinessChecks(
  checks: Readonly<Record<string, ReadinessCheck>>,
  options: ReadinessCheckOptions = {},
): Promise<Record<string, string>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;
  const entries = Object.entries(checks);
  const results = await Promise.all(entries.map(([, check]) => report(check, timeoutMs)));
  return Object.fromEntries(entries.map(([name], i) => [name, results[i] ?? 'unknown']));
}

async function report(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  try {
    await withTimeout(check(), timeoutMs, `no answer within ${timeoutMs} ms`);
    return 'ok';
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
