import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@streamfleet/core';

/** A readiness verdict; when not ready, `reason` says why and `checks` (if any ran) reports each. */
export interface Readiness {
  ready: boolean;
  reason?: string;
  /** Each dependency check by name: `ok`, or why it failed. */
  checks?: Record<string, string>;
}

export interface HealthServerOptions {
  port: number;
  host?: string;
  logger: Logger;
  /**
   * `/readyz` answers 200 only while this resolves to `ready: true`. Runs on every probe, so
   * it must be cheap and must settle (bound its dependency checks with a timeout).
   */
  readiness(): Promise<Readiness>;
  /** `/metrics` body. */
  metrics(): Promise<{ contentType: string; body: string }>;
}

const ALLOW = 'GET, HEAD';

/**
 * The worker's operational endpoints: `/healthz` (the process is alive), `/readyz` (it is
 * consuming; 503 while starting, shutting down, without Redis or when a group set's check,
 * e.g. Postgres, fails), `/metrics` (Prometheus).
 * Plain `node:http`: three routes do not need a framework, and it keeps the worker light.
 * Errors are RFC 9457 problems (`application/problem+json`) shaped as the API's are: an
 * unknown path is 404, another method on a known path 405 with `Allow`.
 */
export class HealthServer {
  private server: Server | undefined;

  constructor(private readonly options: HealthServerOptions) {}

  /**
   * Listens on the port (0 = ephemeral) and resolves to the bound port. If the port is
   * taken, logs and resolves to `undefined`: a worker without endpoints still consumes,
   * which beats a crash loop when several workers share a host.
   */
  async listen(): Promise<number | undefined> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      void this.handle(path, req.method ?? 'GET').then(
        ({ status, contentType, body, headers }) => {
          res.writeHead(status, { ...headers, 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          this.options.logger.error({ err }, 'health endpoint failed');
          const { status, contentType, body } = problem(
            500,
            'INTERNAL_ERROR',
            'the endpoint failed; it has been logged',
            path,
          );
          res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
      );
    });
    // Don't let keep-alive sockets of a scraper hold the process open on shutdown.
    server.keepAliveTimeout = 5000;
    const host = this.options.host ?? '0.0.0.0';
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.options.port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.options.logger.error(
        { err, port: this.options.port },
        'health/metrics server could not listen; worker continues without it',
      );
      return undefined;
    }
    server.on('error', (err) => this.options.logger.error({ err }, 'health/metrics server error'));
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    return port;
  }

  /** The endpoints, each answering GET and HEAD. */
  private readonly routes: Record<string, () => Promise<Answer>> = {
    '/healthz': async () => json(200, { status: 'ok' }),
    '/readyz': async () => {
      const r = await this.options.readiness();
      if (r.ready) return json(200, { status: 'ready' });
      return json(503, { status: 'not-ready', reason: r.reason, ...(r.checks ? { checks: r.checks } : {}) });
    },
    '/metrics': async () => {
      const m = await this.options.metrics();
      return { status: 200, contentType: m.contentType, body: m.body };
    },
  };

  private async handle(path: string, method: string): Promise<Answer> {
    const route = Object.hasOwn(this.routes, path) ? this.routes[path] : undefined;
    if (!route) return problem(404, 'ROUTE_NOT_FOUND', `no route ${method} ${path}`, path);
    if (method !== 'GET' && method !== 'HEAD') {
      return {
        ...problem(405, 'METHOD_NOT_ALLOWED', `${path} does not answer ${method}; it answers ${ALLOW}`, path),
        headers: { allow: ALLOW },
      };
    }
    return route();
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

function json(status: number, value: unknown): Answer {
  return { status, contentType: 'application/json; charset=utf-8', body: `${JSON.stringify(value)}\n` };
}

const TITLES: Record<number, string> = { 404: 'Not Found', 405: 'Method Not Allowed', 500: 'Internal Server Error' };

/** A problem document as the API writes them (`type` derived from the code, `errors` per field: none here). */
function problem(status: 404 | 405 | 500, code: string, detail: string, instance: string): Answer {
  const type = `/problems/${code.toLowerCase().replaceAll('_', '-')}`;
  const body = { type, title: TITLES[status], status, detail, code, errors: [], instance };
  return { status, contentType: 'application/problem+json; charset=utf-8', body: `${JSON.stringify(body)}\n` };
}
