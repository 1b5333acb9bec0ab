import { testRedisUrl, waitFor } from '@streamfleet/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { E2E_GROUPS } from '../../src/groups/index';
import { FAULT_TEST_ENV, FleetHarness } from '../support/fleet-harness';

const N = 6000;
const BATCH = 200;

describe('kill -9 of a worker mid-flow', () => {
  const fleet = new FleetHarness(testRedisUrl(), FAULT_TEST_ENV);
  afterAll(() => fleet.close());

  it('every group handles every event; nothing stays pending', async () => {
    const workers = [fleet.spawn(), fleet.spawn(), fleet.spawn()];
    await Promise.all(workers.map((w) => w.ready()));

    // Publish in a steady trickle, so the kill lands while events are still arriving.
    const ids: string[] = [];
    const publishing = (async () => {
      for (let from = 0; from < N; from += BATCH) {
        ids.push(...(await fleet.publishRange(from, Math.min(N, from + BATCH))));
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    await waitFor(async () => (await fleet.tally('e2e-a')).handled >= N / 4, {
      timeoutMs: 60_000,
      message: 'a quarter of the events handled',
    });
    const victim = workers[0]!;
    const inFlight = await fleet.pending('e2e-a');
    const killedAt = Date.now();
    victim.signal('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    const replacement = fleet.spawn();
    await replacement.ready();
    await publishing;
    expect(ids).toHaveLength(N);

    for (const group of E2E_GROUPS) {
      await waitFor(
        async () => {
          const t = await fleet.tally(group);
          return t.handled === N && t.pending === 0;
        },
        { timeoutMs: 90_000, intervalMs: 200, message: `${group} to handle all ${N} events with nothing pending` },
      );
    }
    const tallies = await Promise.all(E2E_GROUPS.map((g) => fleet.tally(g)));
    console.log(
      `[kill -9] N=${N}, pending at kill (e2e-a)=${inFlight}, all handled ${Date.now() - killedAt} ms after the kill;`,
      tallies.map((t) => `${t.group}: handled=${t.handled} calls=${t.calls} duplicates=${t.duplicates}`).join('; '),
    );
    for (const group of E2E_GROUPS) {
      expect(await fleet.missing(group, ids)).toEqual([]);
      const t = await fleet.tally(group);
      expect(t.handled).toBe(N);
      expect(t.pending).toBe(0);
      // Re-deliveries after a crash are allowed (at-least-once), but the effect set is exact.
      expect(t.duplicates).toBeGreaterThanOrEqual(0);
    }
    expect(await fleet.deadLetterLength()).toBe(0);
  });
});
