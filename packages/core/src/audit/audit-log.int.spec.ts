import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors/index';
import { StreamfleetKeys } from '../streams/keys';
import { PAGE_SCAN_BUDGET } from '../streams/newest-first';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from '../testing/index';
import { type AuditFilter, AuditLog } from './audit-log';

describe('the audit log', () => {
  let redis: Redis;
  let keys: StreamfleetKeys;
  let audit: AuditLog;
  const prefixes: string[] = [];

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  // Each test its own prefix: it reads the whole log back.
  beforeEach(() => {
    const prefix = uniquePrefix('audit');
    prefixes.push(prefix);
    keys = new StreamfleetKeys(prefix);
    audit = new AuditLog(redis, keys);
  });
  afterAll(async () => {
    for (const prefix of prefixes) await cleanupPrefix(testRedisUrl(), prefix);
    redis.disconnect();
  });

  it('reads back each kind of record as written, newest first, one page after another', async () => {
    await audit.record([
      { action: 'pause', actor: 'alice', at: '2026-01-02T09:00:00.000Z', group: 'payment' },
      {
        action: 'run-now',
        actor: 'alice',
        at: '2026-01-02T09:01:00.000Z',
        group: 'payment',
        jobId: 'payment.e-1',
        eventId: 'e-1',
        type: 'order.created',
        batchId: 'b-1',
      },
    ]);
    await audit.record([
      {
        action: 'replay',
        actor: 'bob',
        at: '2026-01-02T09:02:00.000Z',
        group: 'payment',
        deadLetterId: '1767344520000-0',
        eventId: 'e-2',
        type: 'order.created',
      },
      { action: 'resume', actor: 'bob', at: '2026-01-02T09:03:00.000Z', group: 'payment' },
    ]);

    const first = await audit.list({ limit: 3 });
    expect(first.items).toEqual([
      { id: expect.any(String), action: 'resume', actor: 'bob', at: '2026-01-02T09:03:00.000Z', group: 'payment' },
      {
        id: expect.any(String),
        action: 'replay',
        actor: 'bob',
        at: '2026-01-02T09:02:00.000Z',
        group: 'payment',
        deadLetterId: '1767344520000-0',
        eventId: 'e-2',
        type: 'order.created',
      },
      {
        id: expect.any(String),
        action: 'run-now',
        actor: 'alice',
        at: '2026-01-02T09:01:00.000Z',
        group: 'payment',
        jobId: 'payment.e-1',
        eventId: 'e-1',
        type: 'order.created',
        batchId: 'b-1',
      },
    ]);
    expect(first.nextCursor).toBe(first.items[2]?.id);
    const second = await audit.list({ limit: 3, cursor: first.nextCursor as string });
    expect(second).toEqual({
      items: [
        { id: expect.any(String), action: 'pause', actor: 'alice', at: '2026-01-02T09:00:00.000Z', group: 'payment' },
      ],
    });
  });

  it('reads records written before it covered groups as it reads its own', async () => {
    // As the dead-letter removal script and the retry worker wrote them, field for field.
    const old = [
      ['action', 'replay', 'actor', 'alice', 'at', '2025-06-01T10:00:00.000Z', 'deadLetterId', '1748772000000-0'],
      ['group', 'payment', 'eventId', 'e-old', 'type', 'order.created', 'batchId', 'b-old'],
    ].flat();
    await redis.xadd(keys.audit, '*', ...old);
    const dead = ['action', 'dead-letter', 'actor', 'bob', 'at', '2025-06-01T11:00:00.000Z', 'deadLetterId', '1-1'];
    await redis.xadd(keys.audit, '*', ...dead, 'group', 'payment', 'eventId', 'e-dead', 'type', 'order.created');

    expect((await audit.list()).items).toEqual([
      {
        id: expect.any(String),
        action: 'dead-letter',
        actor: 'bob',
        at: '2025-06-01T11:00:00.000Z',
        group: 'payment',
        deadLetterId: '1-1',
        eventId: 'e-dead',
        type: 'order.created',
      },
      {
        id: expect.any(String),
        action: 'replay',
        actor: 'alice',
        at: '2025-06-01T10:00:00.000Z',
        group: 'payment',
        deadLetterId: '1748772000000-0',
        eventId: 'e-old',
        type: 'order.created',
        batchId: 'b-old',
      },
    ]);
  });

  it('leaves out an action it does not know, and reads on past it to fill the page', async () => {
    await audit.record([{ action: 'pause', actor: 'alice', at: '2026-01-02T09:00:00.000Z', group: 'a' }]);
    const unknown = await redis.xadd(keys.audit, '*', 'action', 'rename', 'actor', 'x', 'group', 'a');
    const page = await audit.list({ limit: 1 });
    expect(page.items.map((r) => r.action)).toEqual(['pause']);
    expect((await audit.list({ limit: 1, cursor: unknown as string })).items.map((r) => r.action)).toEqual(['pause']);
  });

  it('refuses a cursor that is not a stream entry id', async () => {
    await expect(audit.list({ cursor: 'yesterday' })).rejects.toBeInstanceOf(ValidationError);
  });

  it('keeps the records of one group, action or actor; sparse matches page on past the scan budget', async () => {
    const at = '2026-01-02T09:00:00.000Z';
    await audit.record([
      { action: 'pause', actor: 'alice', at, group: 'payment' },
      { action: 'pause', actor: 'bob', at, group: 'inventory' },
    ]);
    // More records of other groups than one call reads.
    const noise = Array.from({ length: PAGE_SCAN_BUDGET + 50 }, () => ({
      action: 'resume' as const,
      actor: 'carol',
      at,
      group: 'notification',
    }));
    for (let i = 0; i < noise.length; i += 1000) await audit.record(noise.slice(i, i + 1000));
    await audit.record([{ action: 'resume', actor: 'alice', at, group: 'payment' }]);

    /** Every match, following the cursor. */
    const walk = async (filter: AuditFilter) => {
      const found: string[] = [];
      let cursor: string | undefined;
      let calls = 0;
      do {
        const page = await audit.list({ filter, limit: 10, ...(cursor ? { cursor } : {}) });
        found.push(...page.items.map((r) => `${r.action}:${r.group}:${r.actor}`));
        cursor = page.nextCursor;
        calls++;
      } while (cursor && calls < 100);
      return { found, calls };
    };
    const payment = await walk({ group: 'payment' });
    expect(payment.found).toEqual(['resume:payment:alice', 'pause:payment:alice']);
    expect(payment.calls).toBeGreaterThan(1);
    expect((await walk({ action: 'pause' })).found).toEqual(['pause:inventory:bob', 'pause:payment:alice']);
    expect((await walk({ actor: 'alice', action: 'resume' })).found).toEqual(['resume:payment:alice']);
    expect((await walk({ actor: 'nobody' })).found).toEqual([]);
    // The first page of a sparse filter: what it found within its budget, and where to go on.
    const first = await audit.list({ filter: { group: 'payment' }, limit: 10 });
    expect(first.items.map((r) => r.action)).toEqual(['resume']);
    expect(first.nextCursor).toBeDefined();
  });
});
