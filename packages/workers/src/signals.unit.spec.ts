import { silentLogger } from '@streamfleet/core';
import { waitFor } from '@streamfleet/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { handleShutdownSignals } from './signals';

describe('handleShutdownSignals', () => {
  let remove: (() => void) | undefined;
  afterEach(() => remove?.());

  const install = (shutdown: () => Promise<void>, hardDeadlineMs = 10_000) => {
    const exits: number[] = [];
    remove = handleShutdownSignals({
      logger: silentLogger,
      shutdown,
      hardDeadlineMs,
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

  it('a second signal exits at once with 128 + signal number', async () => {
    let finish: (() => void) | undefined;
    const exits = install(() => new Promise<void>((resolve) => (finish = resolve)));
    process.emit('SIGINT');
    process.emit('SIGINT');
    expect(exits).toEqual([130]);
    finish?.();
  });

  it('SIGTERM twice gives 143; a failed shutdown exits 1', async () => {
    const exits = install(() => Promise.reject(new Error('boom')));
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
