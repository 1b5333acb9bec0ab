import type { EventEnvelope } from '@streamfleet/core';
import { Queue, Worker } from 'bullmq';
import { type Measured, newRedis, startClocks, waitUntil, withPrefix } from '../common';

/**
 * Baseline: N jobs (each carrying the same event envelope) added with addBulk (before timing), then one Worker with a no-op
 * processor and concurrency 50. Returns jobs per second from worker start until the
 * last job completed. Finished jobs are removed (`removeOnComplete`), the usual setting
 * for high-volume queues.
 */
export async function bullmqBaseline(events: readonly EventEnvelope[]): Promise<Measured> {
  const n = events.length;
  return withPrefix('bull', async (prefix) => {
    const connection = newRedis();
    const workerConnection = newRedis();
    const bullPrefix = `{${prefix}}:bull`;
    const queue = new Queue('bench', { connection, prefix: bullPrefix });
    let worker: Worker | undefined;
    try {
      for (let i = 0; i < n; i += 1000) {
        const chunk = [];
        for (let j = i; j < Math.min(n, i + 1000); j++) {
          chunk.push({ name: 'order.created', data: events[j], opts: { removeOnComplete: true, removeOnFail: true } });
        }
        await queue.addBulk(chunk);
      }
      let completed = 0;
      const clock = await startClocks(connection);
      worker = new Worker('bench', async () => undefined, {
        connection: workerConnection,
        prefix: bullPrefix,
        concurrency: 50,
      });
      worker.on('completed', () => {
        completed++;
      });
      await waitUntil(() => completed >= n, 300_000, 'BullMQ jobs to complete');
      return await clock.stop(n);
    } finally {
      await worker?.close();
      await queue.close();
      connection.disconnect();
      workerConnection.disconnect();
    }
  });
}
