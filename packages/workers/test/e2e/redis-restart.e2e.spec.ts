import { TestRedisServer, waitFor } from '@streamfleet/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2E_GROUPS } from '../../src/groups/index';
import { FAULT_TEST_ENV, FleetHarness } from '../support/fleet-harness';

const MIN_EVENTS = 3000;
const BATCH = 50;

describe('Redis restart under load', () => {
  const redis = new TestRedisServer();
  let fleet: FleetHarness;

  beforeAll(async () => {
    await redis.start();
    fleet = new FleetHarness(redis.url, FAULT_TEST_ENV);
  });
  afterAll(async () => {
    await fleet?.close();
    await redis.stop();
  });

  it('workers reconnect and every acknowledged event is handled', async () => {
    const workers = [fleet.spawn(), fleet.spawn()];
    await Promise.all(workers.map((w) => w.ready()));

    // Only ids whose XADD Redis acknowledged count: those must not be lost.
    const acknowledged: string[] = [];
    let restarted = false;
    let publishErrors = 0;
    const publishing = (async () => {
      let n = 0;
      while (!restarted || acknowledged.length < MIN_EVENTS) {
        try {
          acknowledged.push(...(await fleet.publishRange(n, n + BATCH)));
        } catch {
          publishErrors++;
        }
        n += BATCH;
        // While Redis is down the tally fails and keepPace keeps polling until it is back.
        await fleet.keepPace('e2e-a', acknowledged.length).catch(() => publishErrors++);
      }
    })();

    await waitFor(async () => (await fleet.tally('e2e-a')).handled >= 1000, {
      timeoutMs: 30_000,
      message: '1000 events handled before the restart',
    });
    const killedAt = Date.now();
    await redis.kill();
    // While Redis is away the workers say so on /readyz (and keep their handlers' work pending).
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${await workers[0]!.port()}/readyz`);
        return res.status === 503;
      },
      { timeoutMs: 10_000, intervalMs: 20, message: '/readyz to report the outage' },
    );
    await redis.start();
    const restartMs = Date.now() - killedAt;
    // Readiness follows the connection: every worker must come back on its own.
    await Promise.all(workers.map((w) => w.ready(30_000)));
    const reconnectMs = Date.now() - killedAt;
    restarted = true;
    await publishing;

    for (const group of E2E_GROUPS) {
      await waitFor(
        async () => (await fleet.missing(group, acknowledged)).length === 0 && (await fleet.pending(group)) === 0,
        { timeoutMs: 90_000, intervalMs: 250, message: `${group} to handle every acknowledged event` },
      );
    }
    const tallies = await Promise.all(E2E_GROUPS.map((g) => fleet.tally(g)));
    console.log(
      `[redis restart] acknowledged=${acknowledged.length}, publish errors=${publishErrors},`,
      `redis down+up in ${restartMs} ms, workers ready again ${reconnectMs} ms after the kill;`,
      tallies.map((t) => `${t.group}: handled=${t.handled} calls=${t.calls} duplicates=${t.duplicates}`).join('; '),
    );
    for (const w of workers) expect(w.exit).toBeUndefined();
    for (const group of E2E_GROUPS) expect(await fleet.missing(group, acknowledged)).toEqual([]);
    expect(await fleet.deadLetterLength()).toBe(0);
    // The outage is logged once per connection (warn) and its recovery (info); nothing at error
    // level repeats per reconnect attempt.
    for (const w of workers) {
      const errors = w.logs().filter((l) => Number(l.level) >= 50);
      expect(errors.map((l) => l.msg)).toEqual([]);
      expect(w.logs().some((l) => l.msg === 'redis connection lost; reconnecting')).toBe(true);
    }
  });
});
