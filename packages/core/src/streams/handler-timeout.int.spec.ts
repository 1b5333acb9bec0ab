import { describe, expect, it } from 'vitest';
import { HandlerTimeoutError } from '../errors/index';
import type { FleetOptions } from '../fleet/fleet';
import { capturingLogger, waitFor } from '../testing/index';
import { group, n, nonEmpty, pendingCount, THING_STREAM as STREAM, ThingFleets, thing } from '../testing/thing-fleet';
import type { GroupDefinition, HandlerContext } from './handler';

const world = new ThingFleets({
  retry: { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 100, jitter: 0 },
  consumer: { blockMs: 100, visibilityTimeoutMs: 5000, maxDeliveries: 3, handlerTimeoutMs: 150 },
});
const startFleet = (groups: GroupDefinition[], overrides: Partial<FleetOptions> = {}) => world.start(groups, overrides);

/** Settles once the attempt's signal is aborted, with the abort's reason. */
const aborted = (ctx: HandlerContext) =>
  new Promise<unknown>((resolve) => ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason)));

world.useHooks();

describe('handler timeout', () => {
  it('a hung handler fails its attempt: its slot goes to the next entry, its signal is aborted, the entry is retried and acked', async () => {
    world.newTest();
    const handled: string[] = [];
    const reasons: unknown[] = [];
    const fleet = await startFleet([
      group(
        'a',
        async (e, ctx) => {
          if (n(e) === 1 && ctx.attempt === 1) {
            reasons.push(await aborted(ctx));
            return new Promise<void>(() => undefined); // hangs for good
          }
          handled.push(`${n(e)}@${ctx.attempt}`);
        },
        { concurrency: 1 },
      ),
    ]);
    await fleet.producer.publish(STREAM, thing(1));
    await fleet.producer.publish(STREAM, thing(2));
    // One slot, held by the hung handler until its timeout; then entry 2 runs, and entry 1's retry.
    await waitFor(() => handled.length === 2, { message: 'entry 2, then entry 1 retried' });
    expect(handled.sort()).toEqual(['1@2', '2@1']);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(reasons[0]).toMatchObject({ code: 'HANDLER_TIMEOUT', timeoutMs: 150 });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'both acked' });
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'retry job done' });
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  it('a timed-out handler that fails later changes nothing but a log line: one retry job, no dead letter', async () => {
    world.newTest();
    const attempts: number[] = [];
    let lateFailure = false;
    const { logger, withMessage } = capturingLogger();
    const fleet = await startFleet(
      [
        group('a', async (_e, ctx) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt > 1) return;
          await aborted(ctx);
          lateFailure = true;
          throw new Error('gave up once aborted');
        }),
      ],
      { logger },
    );
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(async () => (await fleet.retryQueues.counts('a')).completed === 1, { message: 'retry job done' });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'acked' });
    expect(lateFailure).toBe(true);
    expect(attempts).toEqual([1, 2]);
    expect(withMessage('handler timed out')).toHaveLength(1);
    expect(withMessage('handler failed after its timeout; the outcome is ignored')).toMatchObject([
      { error: { name: 'Error', message: 'gave up once aborted' } },
    ]);
    const c = await fleet.retryQueues.counts('a');
    expect(c.waiting + c.delayed + c.active + c.failed + c.completed).toBe(1);
    expect(await fleet.deadLetters.length()).toBe(0);
  });

  it('retry attempts time out too: a handler that always hangs is dead-lettered, every attempt a HandlerTimeoutError', async () => {
    world.newTest();
    let calls = 0;
    const { logger, withMessage } = capturingLogger();
    const observed = { timedOut: 0, failed: 0 };
    const observer = {
      timedOut: () => void observed.timedOut++,
      failed: () => void observed.failed++,
    };
    const fleet = await startFleet(
      [
        group('a', async (_e, ctx) => {
          calls++;
          // Returns once aborted: an outcome after the timeout, which counts for nothing.
          await aborted(ctx);
        }),
      ],
      { logger, observer },
    );
    await fleet.producer.publish(STREAM, thing(1));
    const [item] = await waitFor(async () => nonEmpty((await fleet.deadLetters.list()).items), {
      message: 'the dead letter',
    });
    const entry = await fleet.deadLetters.get(item?.id as string);
    expect(entry).toMatchObject({ reason: 'retries-exhausted', attempts: 3 });
    expect(entry?.lastError).toMatchObject({ name: 'HandlerTimeoutError' });
    expect(entry?.failures.map((f) => [f.attempt, f.name])).toEqual([
      [1, 'HandlerTimeoutError'],
      [2, 'HandlerTimeoutError'],
      [3, 'HandlerTimeoutError'],
    ]);
    expect(calls).toBe(3);
    expect(observed).toEqual({ timedOut: 3, failed: 3 });
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'acked' });
    // Each attempt timed out and then returned: the first in the consumer loop, two in the retry worker.
    expect(withMessage('handler timed out').map((l) => l.component ?? 'consumer')).toEqual([
      'consumer',
      'retry',
      'retry',
    ]);
    await waitFor(() => withMessage('handler finished after its timeout; the outcome is ignored').length === 3, {
      message: 'three late finishes logged',
    });
  });

  it('a handler is given its whole timeout from its own start, even after a busy turn of the event loop', async () => {
    world.newTest();
    const timeoutMs = 500;
    const ranFor: number[] = [];
    const fleet = await startFleet(
      [
        group(
          'a',
          async (e, ctx) => {
            if (n(e) === 0) {
              // Synchronous work first in the batch: the handlers after it start 400 ms late.
              const until = performance.now() + 400;
              while (performance.now() < until);
              return;
            }
            const started = performance.now();
            await aborted(ctx);
            if (ctx.attempt === 1) ranFor.push(performance.now() - started);
          },
          { timeoutMs },
        ),
      ],
      { retry: { maxAttempts: 1 } },
    );
    await fleet.producer.publishMany(Array.from({ length: 21 }, (_, i) => ({ stream: STREAM, event: thing(i) })));
    await waitFor(() => ranFor.length === 20, { message: 'every waiting handler timed out' });
    // Aborted no earlier than the timeout (a millisecond of slack for the clock reads around it).
    expect(Math.min(...ranFor)).toBeGreaterThanOrEqual(timeoutMs - 1);
  });

  it("a group's timeoutMs overrides the fleet's; 0 lets a slow handler run to its end", async () => {
    world.newTest();
    const attempts: number[] = [];
    let abortedA = false;
    let releaseA: () => void = () => undefined;
    let timedOutB = false;
    const fleet = await startFleet([
      group(
        'a',
        async (_e, ctx) => {
          attempts.push(ctx.attempt);
          ctx.signal.addEventListener('abort', () => {
            abortedA = true;
          });
          await new Promise<void>((resolve) => {
            releaseA = resolve;
          });
        },
        { timeoutMs: 0 },
      ),
      // The fleet's timeout, on the same entry at the same time: the clock 'a' is measured against.
      group('b', async (_e, ctx) => {
        if (ctx.attempt === 1) {
          await aborted(ctx);
          timedOutB = true;
        }
      }),
    ]);
    await fleet.producer.publish(STREAM, thing(1));
    await waitFor(async () => timedOutB && (await fleet.retryQueues.counts('b')).completed === 1, {
      message: "b timed out and retried: past the fleet's timeout",
    });
    expect(abortedA).toBe(false);
    releaseA();
    await waitFor(async () => (await pendingCount(fleet, 'a')) === 0, { message: 'a acked' });
    expect(attempts).toEqual([1]);
    expect(await fleet.retryQueues.counts('a')).toMatchObject({ waiting: 0, delayed: 0, active: 0, completed: 0 });
  });
});
