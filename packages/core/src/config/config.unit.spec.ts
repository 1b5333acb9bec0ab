import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config.retry).toMatchObject({ maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 10_000 });
    expect(config.prefix).toBe('sf');
    expect(config.port).toBe(3000);
    expect(config.adminToken).toBeUndefined();
  });

  it('reads every retry and consumer knob from the environment', () => {
    const config = loadConfig({
      RETRY_MAX_ATTEMPTS: '5',
      RETRY_BASE_DELAY_MS: '10',
      RETRY_MAX_DELAY_MS: '100',
      VISIBILITY_TIMEOUT_MS: '500',
      RETRY_OVERRIDES: '{"payment":{"maxAttempts":7}}',
      WORKER_GROUPS: 'inventory, payment',
    });
    expect(config.retry).toMatchObject({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 100 });
    expect(config.retry.overrides).toEqual({ payment: { maxAttempts: 7 } });
    expect(config.consumer.visibilityTimeoutMs).toBe(500);
    expect(config.workerGroups).toEqual(['inventory', 'payment']);
  });

  it.each([
    ['RETRY_MAX_ATTEMPTS', 'abc'],
    ['RETRY_MAX_ATTEMPTS', '0'],
    ['REDIS_URL', 'not a url'],
    ['PORT', '70000'],
    ['STREAMFLEET_PREFIX', 'has spaces'],
    ['ADMIN_TOKEN', 'short'],
    ['RETRY_OVERRIDES', '{not json'],
    ['LOG_LEVEL', 'loud'],
  ])('names %s when it is %j', (variable, value) => {
    try {
      loadConfig({ [variable]: value });
      expect.unreachable('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(variable);
    }
  });

  it('refuses a max delay below the base delay', () => {
    expect(() => loadConfig({ RETRY_BASE_DELAY_MS: '500', RETRY_MAX_DELAY_MS: '100' })).toThrow(/RETRY_MAX_DELAY_MS/);
  });
});
