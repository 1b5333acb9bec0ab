import { createEvent, encodeEvent, type RetryJobData, retryJobId } from '@streamfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness } from './harness';

const PAYMENT = 'payment';
const HOUR = 3_600_000;

/** A retry job of the payment group after its first delivery failed. */
function retrying(name: string): RetryJobData {
  const event = createEvent({ type: 'test.thing', schemaVersion: 1, data: { name } });
  const at = new Date().toISOString();
  return {
    group: PAYMENT,
    stream: 'things',
    entryId: '1700000000000-0',
    fields: encodeEvent(event),
    eventId: event.id,
    type: event.type,
    attemptOffset: 1,
    replayCount: 0,
    firstFailedAt: at,
    failures: [{ attempt: 1, at, name: 'Error', message: `${name} failed` }],
  };
}
const idOf = (data: RetryJobData) => retryJobId(data.group, data.eventId, data.replayCount);

/**
 * The audit log as operators read it (GET /admin/audit) after acting on groups through the
 * admin API. Dead-letter replays and discards are audited in dead-letters.spec.ts.
 */
describe('group actions in the audit log', () => {
  let h: Harness;
  const post = (url: string, actor?: string, payload?: object) =>
    h.app.inject({
      method: 'POST',
      url,
      headers: { ...adminHeaders, ...(actor ? { 'x-actor': actor } : {}) },
      ...(payload ? { payload } : {}),
    });
  const auditLog = async (query = '') => {
    const res = await h.app.inject({ method: 'GET', url: `/admin/audit${query}`, headers: adminHeaders });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { items: Record<string, unknown>[]; nextCursor?: string };
  };

  beforeAll(async () => {
    h = await createHarness();
    await h.redis.xgroup('CREATE', h.keys.stream('things'), PAYMENT, '$', 'MKSTREAM');
    await h.redis.sadd(h.keys.streams, 'things');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records a pause and its resume with who and when, newest first; calls that change nothing record nothing', async () => {
    const started = Date.now();
    expect((await post(`/admin/groups/${PAYMENT}/resume`, 'dave')).json()).toMatchObject({ changed: false });
    expect((await post(`/admin/groups/${PAYMENT}/pause`, 'alice@example.com')).json()).toEqual({
      group: PAYMENT,
      paused: true,
      changed: true,
    });
    expect((await post(`/admin/groups/${PAYMENT}/pause`, 'bob')).json()).toMatchObject({ changed: false });
    expect((await post(`/admin/groups/${PAYMENT}/resume`, 'carol')).json()).toMatchObject({ changed: true });
    expect((await post(`/admin/groups/${PAYMENT}/resume`)).json()).toMatchObject({ changed: false });

    const { items, nextCursor } = await auditLog();
    expect(items).toEqual([
      { id: expect.any(String), action: 'resume', actor: 'carol', at: expect.any(String), group: PAYMENT },
      { id: expect.any(String), action: 'pause', actor: 'alice@example.com', at: expect.any(String), group: PAYMENT },
    ]);
    expect(nextCursor).toBeUndefined();
    const [resumedAt, pausedAt] = items.map((r) => Date.parse(String(r.at)));
    expect(pausedAt).toBeGreaterThanOrEqual(started);
    expect(resumedAt).toBeGreaterThanOrEqual(pausedAt as number);
    expect(resumedAt).toBeLessThanOrEqual(Date.now());

    // Without X-Actor the actor is `admin`, as for dead-letter actions.
    await post(`/admin/groups/${PAYMENT}/pause`);
    await post(`/admin/groups/${PAYMENT}/resume`);
    const page = await auditLog('?limit=2');
    expect(page.items.map((r) => [r.action, r.actor])).toEqual([
      ['resume', 'admin'],
      ['pause', 'admin'],
    ]);
    const rest = await auditLog(`?limit=2&cursor=${page.nextCursor}`);
    expect(rest.items.map((r) => [r.action, r.actor])).toEqual([
      ['resume', 'carol'],
      ['pause', 'alice@example.com'],
    ]);
  });

  it('filters the log by group, action and actor, and names a bad filter', async () => {
    await post(`/admin/groups/${PAYMENT}/pause`, 'erin');
    await post(`/admin/groups/${PAYMENT}/resume`, 'frank');
    const summary = (items: Record<string, unknown>[]) => items.map((r) => `${r.action}:${r.actor}`);
    expect(summary((await auditLog('?action=pause&actor=erin')).items)).toEqual(['pause:erin']);
    expect(summary((await auditLog(`?group=${PAYMENT}&actor=frank`)).items)).toEqual(['resume:frank']);
    expect((await auditLog('?group=inventory')).items).toEqual([]);

    for (const [query, field] of [
      ['?action=rename', 'query.action'],
      ['?actor=not%20one%20word', 'query.actor'],
      ['?group=a%2Fb', 'query.group'],
    ]) {
      const res = await h.app.inject({ method: 'GET', url: `/admin/audit${query}`, headers: adminHeaders });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json().errors.map((e: { field: string }) => e.field)).toEqual([field]);
    }
  });

  it('refuses a bad X-Actor or an unknown group with a problem, and neither pauses nor records anything', async () => {
    const before = (await auditLog()).items;
    const badActor = await post(`/admin/groups/${PAYMENT}/pause`, 'eve; rm -rf /');
    expect(badActor.statusCode).toBe(400);
    expect(badActor.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(badActor.json().errors.map((e: { field: string }) => e.field)).toEqual(['headers.x-actor']);
    const unknown = await post('/admin/groups/nobody/pause', 'alice');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(unknown.json().errors).toEqual([{ field: 'params.group', message: 'unknown consumer group' }]);

    expect(await h.redis.smembers(h.keys.pausedGroups)).toEqual([]);
    expect((await auditLog()).items).toEqual(before);
  });

  it('records each retry run now with who, the job and its event; a bulk call’s records share its batchId', async () => {
    const [one, other] = [retrying('one'), retrying('other')];
    for (const data of [one, other]) await h.deps.retryQueues.schedule(data, HOUR);

    const single = await post(`/admin/retries/${PAYMENT}/${idOf(one)}/run-now`, 'alice');
    expect(single.statusCode, single.body).toBe(200);
    // Already due now: refused, and nothing more recorded.
    const again = await post(`/admin/retries/${PAYMENT}/${idOf(one)}/run-now`, 'alice');
    expect(again.statusCode).toBe(409);
    const bulk = await post(`/admin/retries/${PAYMENT}/run-now`, 'bob', {});
    expect(bulk.statusCode, bulk.body).toBe(200);
    const { batchId } = bulk.json();
    expect(bulk.json()).toMatchObject({ promoted: 1, promotedIds: [idOf(other)] });
    expect(batchId).toEqual(expect.any(String));
    // Nothing delayed is left: a call that makes nothing due records nothing.
    expect((await post(`/admin/retries/${PAYMENT}/run-now`, 'bob', {})).json()).toMatchObject({ promoted: 0 });

    const { items } = await auditLog();
    expect(items.filter((r) => r.action === 'run-now')).toEqual([
      {
        id: expect.any(String),
        action: 'run-now',
        actor: 'bob',
        at: expect.any(String),
        group: PAYMENT,
        jobId: idOf(other),
        eventId: other.eventId,
        type: 'test.thing',
        batchId,
      },
      {
        id: expect.any(String),
        action: 'run-now',
        actor: 'alice',
        at: expect.any(String),
        group: PAYMENT,
        jobId: idOf(one),
        eventId: one.eventId,
        type: 'test.thing',
      },
    ]);
  });
});
