import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness } from './harness';

const PAYMENT = 'payment';

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
});
