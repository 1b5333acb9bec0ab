import { silentLogger } from '@streamfleet/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthServer } from './health-server';

describe('HealthServer errors', () => {
  let failReadiness = false;
  const server = new HealthServer({
    port: 0,
    host: '127.0.0.1',
    logger: silentLogger,
    readiness: async () => {
      if (failReadiness) throw new Error('check crashed');
      return { ready: true };
    },
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'up 1\n' }),
  });
  let base: string;
  beforeAll(async () => {
    const port = await server.listen();
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await server.close();
  });

  const expectProblem = async (res: Response, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = (await res.json()) as { title: string; detail: string; instance: string; errors: unknown[] };
    expect(body).toMatchObject({ type: `/problems/${code.toLowerCase().replaceAll('_', '-')}`, status, code });
    expect(body.title).toEqual(expect.any(String));
    expect(body.errors).toEqual([]);
    return body;
  };

  it('answers an unknown path, whatever the method, with a 404 problem', async () => {
    for (const method of ['GET', 'POST', 'DELETE']) {
      const body = await expectProblem(await fetch(`${base}/nope?x=1`, { method }), 404, 'ROUTE_NOT_FOUND');
      expect(body.title).toBe('Not Found');
      expect(body.instance).toBe('/nope');
    }
    const head = await fetch(`${base}/nope`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(head.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('answers another method on a known path with a 405 problem and Allow', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`${base}${path}`, { method: 'POST', body: '{}' });
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      const body = await expectProblem(res, 405, 'METHOD_NOT_ALLOWED');
      expect(body.title).toBe('Method Not Allowed');
      expect(body.detail).toContain('GET, HEAD');
    }
  });

  it('answers a failing endpoint with a 500 problem that hides the error', async () => {
    failReadiness = true;
    try {
      const res = await fetch(`${base}/readyz`);
      const body = await expectProblem(res, 500, 'INTERNAL_ERROR');
      expect(body.title).toBe('Internal Server Error');
      expect(JSON.stringify(body)).not.toContain('check crashed');
    } finally {
      failReadiness = false;
    }
    // The known paths still answer as before.
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${base}/metrics`)).text()).toBe('up 1\n');
  });
});
