/**
 * Scenario 7's load generator and consumer, as a process of their own (forked by
 * `e2eLatencyInFreshProcess`): sends the result to its parent and exits.
 */
import { e2eLatency } from './scenarios/e2e-latency';

let message: { result: unknown } | { error: string };
try {
  message = { result: await e2eLatency() };
} catch (err) {
  message = { error: err instanceof Error ? err.message : String(err) };
}
process.send?.(message, () => process.exit(0));
