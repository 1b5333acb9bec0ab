import { ConfigError, loadConfig, silentLogger } from '@streamfleet/core';
import { describe, expect, it } from 'vitest';
import { GroupRegistry, type GroupSet } from './groups/registry';
import { Worker } from './worker';

const set = (name: string, groups: string[], includedByDefault = true): GroupSet => ({
  name,
  groups,
  includedByDefault,
  create: () => {
    throw new Error('must not build groups: the configuration is refused first');
  },
});

describe('Worker.create', () => {
  const registry = new GroupRegistry().add(set('domain', ['payment', 'inventory'])).add(set('test', ['t1'], false));
  // Nothing listens there: a refused configuration must fail before connecting anywhere.
  const base = { REDIS_URL: 'redis://127.0.0.1:1', WORKER_PORT: '0' };

  it.each([
    ['{"paymnet":{"maxAttempts":5}}', 'paymnet'],
    ['{"payment":{"maxAttempts":5},"nope":{},"t2":{"maxAttempts":2}}', 'nope, t2'],
  ])('refuses RETRY_OVERRIDES=%s, naming the variable and the unknown group(s)', async (overrides, unknown) => {
    const config = loadConfig({ ...base, RETRY_OVERRIDES: overrides });
    const created = Worker.create({ config, registry, logger: silentLogger, serveHealth: false });
    await expect(created).rejects.toBeInstanceOf(ConfigError);
    await expect(created).rejects.toThrow(
      `RETRY_OVERRIDES: unknown group(s) ${unknown}; known groups: payment, inventory, t1`,
    );
  });

  it('checks RETRY_OVERRIDES against every known group, whichever WORKER_GROUPS selects', async () => {
    const config = loadConfig({ ...base, WORKER_GROUPS: 't1', RETRY_OVERRIDES: '{"paymnet":{"maxAttempts":5}}' });
    await expect(Worker.create({ config, registry, logger: silentLogger, serveHealth: false })).rejects.toThrow(
      /RETRY_OVERRIDES: unknown group\(s\) paymnet/,
    );
  });
});
