import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, MAX_DURATION_MS } from './index';

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
      HANDLER_TIMEOUT_MS: '0',
      RETRY_OVERRIDES: '{"payment":{"maxAttempts":7}}',
      WORKER_GROUPS: 'inventory, payment',
    });
    expect(config.retry).toMatchObject({ maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 100 });
    expect(config.retry.overrides).toEqual({ payment: { maxAttempts: 7 } });
    expect(config.consumer.visibilityTimeoutMs).toBe(500);
    expect(config.consumer.handlerTimeoutMs).toBe(0);
    expect(loadConfig({}).consumer.handlerTimeoutMs).toBe(300_000);
    expect(config.workerGroups).toEqual(['inventory', 'payment']);
  });

  it.each([
    ['RETRY_MAX_ATTEMPTS', 'abc'],
    ['RETRY_MAX_ATTEMPTS', '0'],
    ['HANDLER_TIMEOUT_MS', '-1'],
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

  it('refuses the example ADMIN_TOKEN the README and docker-compose.yml once published, naming the variable', () => {
    expect(() => loadConfig({ ADMIN_TOKEN: 'change-me-to-a-long-secret' })).toThrow(
      /ADMIN_TOKEN: is the published example value; set a secret of your own/,
    );
    expect(loadConfig({ ADMIN_TOKEN: 'change-me-to-a-long-secret-2' }).adminToken).toBe('change-me-to-a-long-secret-2');
  });

  it.each([',', ' , ', ',,', '   '])('refuses WORKER_GROUPS=%j, which names no group', (value) => {
    expect(() => loadConfig({ WORKER_GROUPS: value })).toThrow(/WORKER_GROUPS: names no group/);
  });

  it('leaves WORKER_GROUPS unset or empty as "every group", and drops empty names between real ones', () => {
    expect(loadConfig({}).workerGroups).toBeUndefined();
    expect(loadConfig({ WORKER_GROUPS: '' }).workerGroups).toBeUndefined();
    expect(loadConfig({ WORKER_GROUPS: ',payment,,' }).workerGroups).toEqual(['payment']);
  });

  it.each(['REDIS_URL', 'DATABASE_URL', 'STREAMFLEET_PREFIX'])(
    'refuses %s set but empty: the default would point this process at other data (e.g. an unset TENANT)',
    (variable) => {
      expect(() => loadConfig({ [variable]: '' })).toThrow(
        new RegExp(`${variable}: is set but empty; unset it to use the default`),
      );
      expect(() => loadConfig({ [variable]: '  ' })).toThrow(new RegExp(`${variable}: is set but empty`));
    },
  );

  it.each([
    ['REDIS_URL', 'http://127.0.0.1:6379', /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/],
    ['DATABASE_URL', 'mysql://db/app', /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/],
  ])('refuses %s=%j, which its client cannot connect to', (variable, value, message) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(message);
  });

  it('accepts each URL scheme its client takes', () => {
    expect(loadConfig({ REDIS_URL: 'rediss://cache:6380/2' }).redisUrl).toBe('rediss://cache:6380/2');
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@db/app' }).databaseUrl).toBe('postgresql://u@db/app');
  });

  it('reads REDIS_CLUSTER: REDIS_URL is then one node of a Redis Cluster', () => {
    expect(loadConfig({}).redisCluster).toBe(false);
    expect(loadConfig({ REDIS_CLUSTER: '' }).redisCluster).toBe(false);
    expect(loadConfig({ REDIS_CLUSTER: 'true' }).redisCluster).toBe(true);
    expect(loadConfig({ REDIS_CLUSTER: '1' }).redisCluster).toBe(true);
    expect(loadConfig({ REDIS_CLUSTER: 'false' }).redisCluster).toBe(false);
    expect(() => loadConfig({ REDIS_CLUSTER: 'cluster' })).toThrow(/REDIS_CLUSTER: must be true or false/);
  });

  it("takes a Redis Cluster's nodes as a comma-separated REDIS_URL, so a process starts while one is down", () => {
    const seeds = 'redis://node-1:6379, redis://node-2:6379,rediss://u:secret@node-3:6379';
    expect(loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: seeds }).redisUrl).toBe(seeds);
    expect(() => loadConfig({ REDIS_URL: seeds })).toThrow(
      /REDIS_URL: lists 3 nodes, which is for a Redis Cluster: set REDIS_CLUSTER=true, or give one URL/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://node-1:6379,http://node-2' })).toThrow(
      /REDIS_URL: node 2 of 2 must be a redis:\/\/ or rediss:\/\/ URL/,
    );
  });

  it('reads DATABASE_POOL_MAX, the Postgres pool size of each process (default 10)', () => {
    expect(loadConfig({}).databasePoolMax).toBe(10);
    expect(loadConfig({ DATABASE_POOL_MAX: '4' }).databasePoolMax).toBe(4);
    expect(() => loadConfig({ DATABASE_POOL_MAX: '0' })).toThrow(/DATABASE_POOL_MAX/);
  });

  it('reads the API rate limits per minute; 0 turns one off', () => {
    expect(loadConfig({}).rateLimit).toEqual({ ingestPerMin: 6000, adminPerMin: 600 });
    expect(loadConfig({ RATE_LIMIT_INGEST_PER_MIN: '3', RATE_LIMIT_ADMIN_PER_MIN: '0' }).rateLimit).toEqual({
      ingestPerMin: 3,
      adminPerMin: 0,
    });
    expect(loadConfig({ RATE_LIMIT_INGEST_PER_MIN: '', RATE_LIMIT_ADMIN_PER_MIN: '' }).rateLimit).toEqual({
      ingestPerMin: 6000,
      adminPerMin: 600,
    });
  });

  it.each(['RATE_LIMIT_INGEST_PER_MIN', 'RATE_LIMIT_ADMIN_PER_MIN'])(
    'refuses %s unless it is whole decimal digits (a blank would otherwise read as 0, no limit)',
    (variable) => {
      for (const value of [' ', '-1', '1.5', '3.0', '1e3', '0x10', 'unlimited', '100/min']) {
        expect(() => loadConfig({ [variable]: value }), value).toThrow(
          new RegExp(`${variable}: must be a whole number of requests per minute \\(0: no limit\\)`),
        );
      }
      expect(() => loadConfig({ [variable]: '99999999999999999999' })).toThrow(
        new RegExp(`${variable}: must be at most ${Number.MAX_SAFE_INTEGER}`),
      );
    },
  );

  it("reads TRUST_PROXY as Fastify takes it: off, true, a hop count or the proxies' addresses", () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '0' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    // A hop count, not a boolean: `1` trusts one proxy's X-Forwarded-For entry, `true` all of them.
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: ' 2 ' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '100' }).trustProxy).toBe(100);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 10.1.0.0/16,,::1,2001:db8::/32 ' }).trustProxy).toEqual([
      '10.0.0.1',
      '10.1.0.0/16',
      '::1',
      '2001:db8::/32',
    ]);
    expect(loadConfig({ TRUST_PROXY: '::ffff:10.0.0.1' }).trustProxy).toEqual(['::ffff:10.0.0.1']);
  });

  it.each([
    ['TRUE', /"TRUE" is not an IP address or CIDR range/],
    ['yes', /"yes" is not an IP address or CIDR range/],
    ['1.5', /"1.5" is not an IP address or CIDR range/],
    ['-1', /"-1" is not an IP address or CIDR range/],
    ['loopback', /"loopback" is not an IP address or CIDR range/],
    ['10.0.0.1,proxy.internal', /"proxy.internal" is not an IP address or CIDR range/],
    ['10.0.0.1:8080', /"10.0.0.1:8080" is not an IP address or CIDR range/],
    ['010.0.0.1', /"010.0.0.1" is not an IP address or CIDR range/],
    ['fe80::1%eth0', /"fe80::1%eth0" is not an IP address or CIDR range/],
    ['10.0.0.0/33', /"10.0.0.0\/33" has no valid prefix length \(1 to 32 for IPv4\)/],
    ['10.0.0.0/0', /"10.0.0.0\/0" has no valid prefix length \(1 to 32 for IPv4\)/],
    ['10.0.0.0/255.0.0.0', /"10.0.0.0\/255.0.0.0" has no valid prefix length/],
    ['2001:db8::/129', /"2001:db8::\/129" has no valid prefix length \(1 to 128 for IPv6\)/],
    [',', /TRUST_PROXY: must be true, false, a hop count/],
  ])('refuses TRUST_PROXY=%j, naming the variable and the forms it takes', (value, message) => {
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(ConfigError);
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(
      /TRUST_PROXY: must be true, false, a hop count \(e\.g\. 1\) or comma-separated proxy IP addresses\/CIDRs/,
    );
    expect(() => loadConfig({ TRUST_PROXY: value })).toThrow(message);
  });

  it('refuses a TRUST_PROXY hop count above 100, more likely a port, which would trust any peer', () => {
    expect(() => loadConfig({ TRUST_PROXY: '8080' })).toThrow(
      /TRUST_PROXY: is a hop count above 100: give the number of proxies in front of the API, or their addresses/,
    );
  });

  it('refuses a max delay below the base delay', () => {
    expect(() => loadConfig({ RETRY_BASE_DELAY_MS: '500', RETRY_MAX_DELAY_MS: '100' })).toThrow(/RETRY_MAX_DELAY_MS/);
  });

  it.each([
    ['{"payment":{"maxAttempts":true}}', /payment\.maxAttempts: must be a JSON number/],
    ['{"payment":{"maxAttempts":"5"}}', /payment\.maxAttempts: must be a JSON number/],
    ['{"payment":{"baseDelayMs":null}}', /payment\.baseDelayMs: must be a JSON number/],
    ['{"payment":{"maxAttempts":[7]}}', /payment\.maxAttempts: must be a JSON number/],
    ['{"payment":{"maxAttempts":2.5}}', /payment\.maxAttempts: must be an integer/],
    ['{"payment":{"maxAttempts":0}}', /payment\.maxAttempts: must be >= 1/],
    ['{"payment":{"maxAttempts":101}}', /payment\.maxAttempts: must be <= 100/],
    ['{"payment":{"baseDelayMs":-1}}', /payment\.baseDelayMs: must be >= 0/],
    [`{"payment":{"maxDelayMs":${MAX_DURATION_MS + 1}}}`, /payment\.maxDelayMs: must be at most 2073600000/],
    ['{"payment":{"maxAtempts":5}}', /payment: Unrecognized key/],
  ])('refuses RETRY_OVERRIDES=%s without coercing it', (value, message) => {
    expect(() => loadConfig({ RETRY_OVERRIDES: value })).toThrow(ConfigError);
    expect(() => loadConfig({ RETRY_OVERRIDES: value })).toThrow(/RETRY_OVERRIDES: /);
    expect(() => loadConfig({ RETRY_OVERRIDES: value })).toThrow(message);
  });

  it('refuses an override whose max delay ends up below its base delay, its own or the global one', () => {
    expect(() => loadConfig({ RETRY_OVERRIDES: '{"payment":{"baseDelayMs":5000,"maxDelayMs":100}}' })).toThrow(
      /RETRY_OVERRIDES: payment\.maxDelayMs: must be >= baseDelayMs \(5000\)/,
    );
    // Missing sides are the global values (1000 / 10000 by default).
    expect(() => loadConfig({ RETRY_OVERRIDES: '{"payment":{"maxDelayMs":500}}' })).toThrow(
      /RETRY_OVERRIDES: payment\.maxDelayMs: must be >= RETRY_BASE_DELAY_MS \(1000\)/,
    );
    expect(() => loadConfig({ RETRY_OVERRIDES: '{"payment":{"baseDelayMs":50000}}' })).toThrow(
      /RETRY_OVERRIDES: payment\.baseDelayMs: must be <= RETRY_MAX_DELAY_MS \(10000\)/,
    );
    expect(
      loadConfig({ RETRY_OVERRIDES: '{"payment":{"baseDelayMs":50000,"maxDelayMs":60000,"maxAttempts":5}}' }).retry
        .overrides,
    ).toEqual({ payment: { baseDelayMs: 50_000, maxDelayMs: 60_000, maxAttempts: 5 } });
    expect(loadConfig({ RETRY_OVERRIDES: '{"payment":{"maxDelayMs":1000}}' }).retry.overrides).toEqual({
      payment: { maxDelayMs: 1000 },
    });
  });

  it('caps every timer setting at 24 days, which Node timers can wait (2^31-1 ms is the limit)', () => {
    // The worker's hard shutdown deadline adds 10 s to SHUTDOWN_TIMEOUT_MS.
    expect(MAX_DURATION_MS + 10_000).toBeLessThanOrEqual(2 ** 31 - 1);
    const timers = [
      'VISIBILITY_TIMEOUT_MS',
      'HANDLER_TIMEOUT_MS',
      'SHUTDOWN_TIMEOUT_MS',
      'RETRY_BASE_DELAY_MS',
      'RETRY_MAX_DELAY_MS',
      'SAGA_TIMEOUT_MS',
    ];
    // CONSUMER_BLOCK_MS keeps its own, lower cap (60 s).
    expect(() => loadConfig({ CONSUMER_BLOCK_MS: String(2 ** 31) })).toThrow(/CONSUMER_BLOCK_MS: /);
    for (const variable of timers) {
      for (const value of [String(2 ** 31), String(100 * 86_400_000)]) {
        // A max delay as long as the base, so only the cap can refuse it.
        const env = variable === 'RETRY_BASE_DELAY_MS' ? { RETRY_MAX_DELAY_MS: String(MAX_DURATION_MS) } : {};
        expect(() => loadConfig({ DEDUP_RETENTION_HOURS: '0', ...env, [variable]: value }), variable).toThrow(
          new RegExp(`${variable}: must be at most`),
        );
      }
    }
    const atCap = loadConfig({
      DEDUP_RETENTION_HOURS: '0',
      VISIBILITY_TIMEOUT_MS: String(MAX_DURATION_MS),
      SHUTDOWN_TIMEOUT_MS: String(MAX_DURATION_MS),
      RETRY_BASE_DELAY_MS: String(MAX_DURATION_MS),
      RETRY_MAX_DELAY_MS: String(MAX_DURATION_MS),
      SAGA_TIMEOUT_MS: String(MAX_DURATION_MS),
    });
    expect(atCap.consumer.visibilityTimeoutMs).toBe(MAX_DURATION_MS);
    expect(atCap.shutdownTimeoutMs).toBe(MAX_DURATION_MS);
    expect(atCap.sagaTimeoutMs).toBe(MAX_DURATION_MS);
  });

  it('refuses a DEDUP_RETENTION_HOURS shorter than the time an event can still be redelivered', () => {
    // 2 h visibility timeout: rows pruned after 1 h would be gone when the entry is claimed again.
    expect(() => loadConfig({ VISIBILITY_TIMEOUT_MS: '7200000', DEDUP_RETENTION_HOURS: '1' })).toThrow(
      /DEDUP_RETENTION_HOURS: must be 0 \(forever\) or at least 3/,
    );
    // 3 attempts x 1 h max delay, plus the default 30 s visibility timeout.
    expect(() => loadConfig({ RETRY_MAX_DELAY_MS: '3600000', DEDUP_RETENTION_HOURS: '3' })).toThrow(
      /DEDUP_RETENTION_HOURS: must be 0 \(forever\) or at least 4/,
    );
    // A group's override counts too.
    expect(() =>
      loadConfig({
        RETRY_OVERRIDES: '{"payment":{"maxAttempts":10,"maxDelayMs":3600000}}',
        DEDUP_RETENTION_HOURS: '5',
      }),
    ).toThrow(/DEDUP_RETENTION_HOURS: must be 0 \(forever\) or at least 11/);
    expect(loadConfig({ RETRY_MAX_DELAY_MS: '3600000', DEDUP_RETENTION_HOURS: '4' }).dedupRetentionMs).toBe(
      4 * 3_600_000,
    );
    // Every attempt may also run up to the handler timeout: 3 x (1 h + 30 min) + 30 s; none with 0.
    expect(() =>
      loadConfig({ RETRY_MAX_DELAY_MS: '3600000', HANDLER_TIMEOUT_MS: '1800000', DEDUP_RETENTION_HOURS: '4' }),
    ).toThrow(/DEDUP_RETENTION_HOURS: must be 0 \(forever\) or at least 5: .*HANDLER_TIMEOUT_MS/);
    expect(
      loadConfig({ RETRY_MAX_DELAY_MS: '3600000', HANDLER_TIMEOUT_MS: '0', DEDUP_RETENTION_HOURS: '4' })
        .dedupRetentionMs,
    ).toBe(4 * 3_600_000);
    // A hung handler's attempts alone: 3 x 3 h.
    expect(() => loadConfig({ HANDLER_TIMEOUT_MS: '10800000', DEDUP_RETENTION_HOURS: '1' })).toThrow(
      /DEDUP_RETENTION_HOURS: must be 0 \(forever\) or at least 10/,
    );
    expect(loadConfig({ VISIBILITY_TIMEOUT_MS: '7200000', DEDUP_RETENTION_HOURS: '0' }).dedupRetentionMs).toBe(0);
    expect(loadConfig({}).dedupRetentionMs).toBe(168 * 3_600_000);
  });
});
