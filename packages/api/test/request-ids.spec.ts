import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness, type LogLine, recordingLogger } from './harness';

describe('request ids', () => {
  let h: Harness;
  const lines: LogLine[] = [];
  beforeAll(async () => {
    h = await createHarness({ deps: { logger: recordingLogger(lines) } });
  });
  afterAll(async () => {
    await h.close();
  });

  const linesOf = (reqId: string) => lines.filter((l) => l.reqId === reqId);

  it('echoes a sent x-request-id and logs the request under it', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'x-request-id': 'trace-ok-1' },
      payload: { type: 'test.thing', data: { name: 'logged' } },
    });
    expect(res.statusCode).toBe(202);
    expect(res.headers['x-request-id']).toBe('trace-ok-1');
    expect(linesOf('trace-ok-1')).toContainEqual(
      expect.objectContaining({ msg: 'request completed', status: 202, url: '/v1/events' }),
    );
  });

  it('puts the id in the problem, its header and the log line of a refused request, with its method, URL and client IP', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/admin/dlq?limit=0',
      headers: { ...adminHeaders, 'x-request-id': 'trace-bad-2' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['x-request-id']).toBe('trace-bad-2');
    expect(res.json().requestId).toBe('trace-bad-2');
    expect(linesOf('trace-bad-2')).toContainEqual(
      expect.objectContaining({
        msg: 'request refused',
        code: 'VALIDATION_ERROR',
        status: 400,
        method: 'GET',
        url: '/admin/dlq?limit=0',
        ip: '127.0.0.1',
      }),
    );
  });

  it('generates, answers and logs a fresh id when none is sent', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/nowhere' });
    expect(res.statusCode).toBe(404);
    const id = String(res.headers['x-request-id']);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.json().requestId).toBe(id);
    expect(linesOf(id).length).toBeGreaterThan(0);
  });

  it('gives two requests without an id two different ids', async () => {
    const [a, b] = await Promise.all([
      h.app.inject({ method: 'GET', url: '/healthz' }),
      h.app.inject({ method: 'GET', url: '/healthz' }),
    ]);
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });
});
