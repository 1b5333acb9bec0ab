import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config.retry).toMatchObject({ maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 10_000 });
    expect(config.prefix).toBe('sf');
    expect(config.port).toBe(3000);
    expect(config.adminToken).toBeUndefined();
    expect(config.paymentSimulatorFailureRate).toBe(0);
  });

  it('reads PAYMENT_SIMULATOR_FAILURE_RATE as a probability', () => {
    expect(loadConfig({ PAYMENT_SIMULATOR_FAILURE_RATE: '0.25' }).paymentSimulatorFailureRate).toBe(0.25);
    expect(loadConfig({ PAYMENT_SIMULATOR_FAILURE_RATE: '1' }).paymentSimulatorFailureRate).toBe(1);
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
    ['PAYMENT_SIMULATOR_FAILURE_RATE', '1.5'],
    ['PAYMENT_SIMULATOR_FAILURE_RATE', '-0.1'],
    ['PAYMENT_SIMULATOR_FAILURE_RATE', 'often'],
    ['ADMIN_TOKEN', 'a token with spaces in it'],
    ['WORKER_GROUPS', ','],
  ])('names %s when it is %j', (variable, value) => {
    try {
      loadConfig({ [variable]: value });
      expect.unreachable('should have thrown');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(variable);
    }
  });

  it.each(['1.5', '-0.1', 'often'])('says PAYMENT_SIMULATOR_FAILURE_RATE=%j must be a number from 0 to 1', (value) => {
    expect(() => loadConfig({ PAYMENT_SIMULATOR_FAILURE_RATE: value })).toThrow(
      /PAYMENT_SIMULATOR_FAILURE_RATE: must be a number from 0 to 1/,
    );
  });

  it.each(['token-with-a space', 'token-with-a\ttab-0123', 'token-0123456789abcdef\n', ' token-0123456789abcdef'])(
    'refuses ADMIN_TOKEN=%j, which no bearer header could carry, without printing it',
    (value) => {
      let message = '';
      try {
        loadConfig({ ADMIN_TOKEN: value });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toMatch(/ADMIN_TOKEN: must not contain whitespace/);
      expect(message).not.toContain('token-');
      expect(loadConfig({ ADMIN_TOKEN: value.replace(/\s/g, '') }).adminToken).toBe(value.replace(/\s/g, ''));
    },
  );

  it.each([',', ' , ', ',,', '   '])('refuses WORKER_GROUPS=%j, which names no group', (value) => {
    expect(() => loadConfig({ WORKER_GROUPS: value })).toThrow(/WORKER_GROUPS: names no group/);
  });

  it('leaves WORKER_GROUPS unset or empty as "every group", and drops empty names between real ones', () => {
    expect(loadConfig({}).workerGroups).toBeUndefined();
    expect(loadConfig({ WORKER_GROUPS: '' }).workerGroups).toBeUndefined();
    expect(loadConfig({ WORKER_GROUPS: ',payment,,' }).workerGroups).toEqual(['payment']);
  });

  it('refuses a max delay below the base delay', () => {
    expect(() => loadConfig({ RETRY_BASE_DELAY_MS: '500', RETRY_MAX_DELAY_MS: '100' })).toThrow(/RETRY_MAX_DELAY_MS/);
  });
});
