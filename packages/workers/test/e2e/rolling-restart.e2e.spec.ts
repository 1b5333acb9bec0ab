import { testRedisUrl, waitFor } from '@streamfleet/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { E2E_GROUPS } from '../../src/groups/index';
import { FAULT_TEST_ENV, FleetHarness } from '../support/fleet-harness';

const MIN_EVENTS = 4000;
const BATCH = 50;
const SHUTDOWN_TIMEOUT_MS = 5000;

describe('rolling SIGTERM restart under load', () => {
  const fleet = new FleetHarness(testRedisUrl(), {
    ...FAULT_TEST_ENV,
    E2E_HANDLER_DELAY_MS: '5',
    RETRY_BASE_DELAY_MS: '50',
    RETRY_MAX_DELAY_MS: '200',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  });
  afterAll(() => fleet.close());

  it('loses nothing, leaves no retry job behind, and every process exits 0 in time', async () => {
    const first = [fleet.spawn(), fleet.spawn(), fleet.spawn()];
    await Promise.all(first.map((w) => w.ready()));

    // One event in 50 fails its first attempt, so retry jobs are in flight during the restarts.
    // Publishing goes on until every worker has been replaced, so each restart happens under load.
    const ids: string[] = [];
    let restartsDone = false;
    const publishing = (async () => {
      while (!restartsDone || ids.length < MIN_EVENTS) {
        ids.push(...(await fleet.publishRange(ids.length, ids.length + BATCH, 50)));
        await fleet.keepPace('e2e-a', ids.length);
      }
    })();

    const exits: { pid: number; code: number | null; ms: number }[] = [];
    for (const old of first) {
      const replacement = fleet.spawn();
      await replacement.ready();
      const stoppedAt = Date.now();
      old.signal('SIGTERM');
      const exit = await old.exited;
      exits.push({ pid: old.pid, code: exit.code, ms: Date.now() - stoppedAt });
    }
    restartsDone = true;
    await publishing;
    const N = ids.length;

    for (const group of E2E_GROUPS) {
      await waitFor(
        async () => {
          const t = await fleet.tally(group);
          const r = await fleet.retryCounts(group);
          return t.handled === N && t.pending === 0 && r.active + r.waiting + r.delayed === 0;
        },
        { timeoutMs: 90_000, intervalMs: 200, message: `${group}: all ${N} handled, nothing pending or retrying` },
      );
    }
    const tallies = await Promise.all(E2E_GROUPS.map((g) => fleet.tally(g)));
    console.log(
      `[rolling restart] N=${N}, published during the restarts;`,
      `exits: ${exits.map((e) => `pid ${e.pid} code ${e.code} in ${e.ms} ms`).join(', ')};`,
      tallies.map((t) => `${t.group}: handled=${t.handled} duplicates=${t.duplicates}`).join('; '),
    );
    for (const e of exits) {
      expect(e.code).toBe(0);
      expect(e.ms).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 2000);
    }
    for (const group of E2E_GROUPS) {
      expect(await fleet.missing(group, ids)).toEqual([]);
      const r = await fleet.retryCounts(group);
      expect(r.active).toBe(0);
      expect(r.failed).toBe(0);
    }
    expect(await fleet.deadLetterLength()).toBe(0);
  });
});
