/**
 * Profiles the streamfleet consumer loop only (not the setup): one run of scenario 3
 * (5 with BENCH_FAIL=1, 5b with BENCH_FAIL=deferred) under the V8 inspector's CPU profiler, written to
 * bench/results/fleet.cpuprofile, then summarised (hottest functions by self time).
 *
 *   pnpm --filter @streamfleet/bench profile
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { log, makeEvents, N } from './common';
import { summarise } from './profile-summary';
import { DEFERRED_RETRY_MS, fleetRun } from './scenarios/fleet';

const out = new URL('../results/fleet.cpuprofile', import.meta.url);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 200 });

const events = makeEvents(N);
const result = await fleetRun(events, {
  ...(process.env.BENCH_FAIL ? { failEvery: 100 } : {}),
  ...(process.env.BENCH_FAIL === 'deferred' ? { retryBaseDelayMs: DEFERRED_RETRY_MS } : {}),
  hooks: {
    started: async () => {
      await session.post('Profiler.start');
    },
    finished: async () => {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(out, JSON.stringify(profile));
    },
  },
});
log(`streamfleet: ${Math.round(result.perSecond)} events/s (profiled, so slower than a bench run)`);
console.log(summarise(out));
