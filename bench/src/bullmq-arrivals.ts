/**
 * What one BullMQ job costs by how jobs arrive: the floor under scenario 5's failures.
 * `pnpm --filter @streamfleet/bench exec tsx src/bullmq-arrivals.ts` (BENCH_REPEATS rounds; writes no report).
 *
 * Both patterns store and run the same 500 jobs (1% of BENCH_N's default 50,000) through one
 * Queue and one Worker (concurrency 10, a retry worker's default), timed from the first add
 * until the last job completed:
 * - `at once`: one addBulk of all of them, due at once (scenario 2's pattern, adds included);
 * - `as retries`: addBulk of 25 every 10 ms, each due 10 ms later: how a 1% failure rate hands
 *   jobs to BullMQ while the consumer loop reads 2,500 events per 10 ms.
 */
import { Queue, Worker } from 'bullmq';
import { makeEvents, median, newRedis, REPEATS, startClocks, waitUntil, withPrefix } from './common';

const JOBS = 500;
const CHUNK = 25;
const EVERY_MS = 10;

type Pattern = 'at once' | 'as retries';

const events = makeEvents(JOBS);

async function run(pattern: Pattern): Promise<{ cpu: number; redisCpu: number }> {
  return withPrefix('arrivals', async (prefix) => {
    const connection = newRedis();
    const workerConnection = newRedis();
    const bullPrefix = `{${prefix}}:bull`;
    const queue = new Queue('arrivals', { connection, prefix: bullPrefix });
    let completed = 0;
    const worker = new Worker('arrivals', async () => undefined, {
      connection: workerConnection,
      prefix: bullPrefix,
      concurrency: 10,
    });
    worker.on('completed', () => {
      completed++;
    });
    try {
      await worker.waitUntilReady();
      const chunk = pattern === 'at once' ? JOBS : CHUNK;
      const delay = pattern === 'at once' ? 0 : EVERY_MS;
      const clock = await startClocks(connection);
      for (let i = 0; i < JOBS; i += chunk) {
        await queue.addBulk(
          events.slice(i, i + chunk).map((data, k) => ({
            name: 'order.created',
            data,
            opts: { jobId: `j${i + k}`, delay, removeOnComplete: { age: 3600 } },
          })),
        );
        if (i + chunk < JOBS) await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
      }
      await waitUntil(() => completed >= JOBS, 60_000, 'jobs to complete');
      const m = await clock.stop(JOBS);
      return { cpu: m.cpuUsPerEvent, redisCpu: m.redisCpuUsPerEvent };
    } finally {
      await worker.close();
      await queue.close();
      connection.disconnect();
      workerConnection.disconnect();
    }
  });
}

const results: Record<Pattern, { cpu: number[]; redisCpu: number[] }> = {
  'at once': { cpu: [], redisCpu: [] },
  'as retries': { cpu: [], redisCpu: [] },
};
// One unmeasured round of each warms both paths up; then the patterns alternate.
for (let round = 0; round <= REPEATS; round++) {
  for (const pattern of ['at once', 'as retries'] as const) {
    const r = await run(pattern);
    if (round === 0) continue;
    results[pattern].cpu.push(r.cpu);
    results[pattern].redisCpu.push(r.redisCpu);
  }
}
for (const [pattern, r] of Object.entries(results)) {
  const us = (values: number[]) => `${median(values).toFixed(0)} us (${values.map((v) => v.toFixed(0)).join(', ')})`;
  console.log(`${pattern.padEnd(10)} CPU per job: this process ${us(r.cpu)}; Redis ${us(r.redisCpu)}`);
}
process.exit(0);
