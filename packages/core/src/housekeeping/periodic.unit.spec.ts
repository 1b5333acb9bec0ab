import { describe, expect, it } from 'vitest';
import { waitFor } from '../testing/index';
import { Periodic } from './periodic';

describe('Periodic', () => {
  it('runs again after a failing run, never two runs at once, and close() waits for the run in progress', async () => {
    let runs = 0;
    let running = 0;
    let overlapped = false;
    let finished = 0;
    const task = new Periodic({ name: 'test-task', intervalMs: 5 }, async () => {
      runs++;
      running++;
      if (running > 1) overlapped = true;
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      finished++;
      if (runs === 2) throw new Error('second run fails');
    });
    task.start();
    await waitFor(() => runs >= 4, { message: 'four runs' });
    await task.close();
    expect(running).toBe(0);
    expect(finished).toBe(runs);
    expect(overlapped).toBe(false);
  });
});
