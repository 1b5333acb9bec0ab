import type { Logger } from '@streamfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createHarness, type Harness } from './harness';

type Line = Record<string, unknown> & { level: string; msg?: string };

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * A pino-shaped logger that keeps every line in memory, with the bindings of its children
 * (Fastify binds `reqId` on each request's child logger). Enough of pino for Fastify.
 */
function recordingLogger(lines: Line[], level = 'debug', bindings: Record<string, unknown> = {}): Logger {
  const enabled = (l: string) => LEVELS.indexOf(l as (typeof LEVELS)[number]) >= LEVELS.indexOf(level as 'debug');
  const write =
    (l: string) =>
    (objOrMsg?: unknown, msg?: string): void => {
      if (!enabled(l)) return;
      const fields = typeof objOrMsg === 'object' && objOrMsg !== null ? (objOrMsg as Record<string, unknown>) : {};
      const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
      lines.push({ ...bindings, ...fields, level: l, ...(text === undefined ? {} : { msg: text }) });
    };
  const logger = {
    level,
    silent: () => undefined,
    isLevelEnabled: enabled,
    child: (more: Record<string, unknown>) => recordingLogger(lines, level, { ...bindings, ...more }),
    ...Object.fromEntries(LEVELS.map((l) => [l, write(l)])),
  };
  return logger as unknown as Logger;
}

describe('request ids', () => {
  let h: Harness;
  const lines: Line[] = [];
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

  it('puts the id in the problem, its header and the log line of a refused request, with its method and URL', async () => {
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
