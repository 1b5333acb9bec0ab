import { silentLogger } from '@streamfleet/core';
import { waitFor } from '@streamfleet/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { handleShutdownSignals } from './signals';

describe('handleShutdownSignals', () => {
  let remove: (() => void) | undefined;
  afterEach(() => remove?.());

  const install = (shutdown: () => Promise<unknown>, hardDeadlineMs = 10_000, repeatWindowMs?: number) => {
    const exits: number[] = [];
    remove = handleShutdownSignals({
      logger: silentLogger,
      async shutdown() {
        const result = await shutdown();
        return typeof result === 'number' ? result : undefined;
      },
      hardDeadlineMs,
      ...(repeatWindowMs === undefined ? {} : { repeatWindowMs }),
      exit: ((code: number) => {
        exits.push(code);
      }) as (code: number) => never,
    });
    return exits;
  };

  it('runs the graceful path once and exits 0', async () => {
    let calls = 0;
    const exits = install(async () => {
      calls++;
    });
    process.emit('SIGTERM');
    await waitFor(() => exits.length === 1, { message: 'exit' });
    expect(exits).toEqual([0]);
    expect(calls).toBe(1);
  });

  it('exits with the code the graceful path resolves to', async () => {
    const exits = install(async () => 1);
    process.emit('SIGTERM');
    await waitFor(() => exits.length === 1, { message: 'exit' });
    expect(exits).toEqual([1]);
  });

  it('a repeat within the window is the same request (Ctrl-C plus a relay): graceful, exit 0', async () => {
    let finish: (() => void) | undefined;
    let calls = 0;
    const exits = install(() => {
      calls++;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    // The terminal's SIGINT, then pnpm's relayed SIGINT and a spawner's SIGTERM a moment later.
    process.emit('SIGINT');
    process.emit('SIGINT');
    process.emit('SIGTERM');
    expect(exits).toEqual([]);
    finish?.();
    await waitFor(() => exits.length === 1, { message: 'graceful exit' });
    expect(exits).toEqual([0]);
    expect(calls).toBe(1);
  });

  it('a signal after the window exits at once with 128 + signal number', async () => {
    let finish: (() => void) | undefined;
    const exits = install(() => new Promise<void>((resolve) => (finish = resolve)), 10_000, 30);
    const first = performance.now();
    process.emit('SIGINT');
    process.emit('SIGINT');
    expect(exits).toEqual([]);
    await waitFor(() => performance.now() - first > 30, { intervalMs: 5, message: 'window to pass' });
    process.emit('SIGINT');
    expect(exits).toEqual([130]);
    finish?.();
  });

  it('SIGTERM after the window gives 143; a failed shutdown exits 1', async () => {
    const exits = install(() => Promise.reject(new Error('boom')), 10_000, 0);
    process.emit('SIGTERM');
    process.emit('SIGTERM');
    await waitFor(() => exits.length === 2, { message: 'both exits' });
    expect(exits).toEqual([143, 1]);
  });

  it('exits 1 when the graceful path overruns its deadline', async () => {
    const exits = install(() => new Promise<void>(() => undefined), 50);
    process.emit('SIGTERM');
    await waitFor(() => exits.length === 1, { message: 'watchdog exit' });
    expect(exits).toEqual([1]);
  });
});
