import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ApiProblem } from './problem';

/** Distinct clients one limiter keeps counters for; past it the oldest counters are dropped. */
const MAX_CLIENTS = 100_000;

interface Window {
  count: number;
  endsAt: number;
}

/**
 * Fixed-window request counter per client, in memory. One per limited route, or one per
 * `groupId` shared by its routes, like the `@fastify/rate-limit` local store it replaces:
 * the same keys (the IP; IPv6 grouped by /64), windows and `x-ratelimit-*` / `retry-after`
 * headers, for a plain `Map` lookup per request instead of the plugin's two async
 * functions, promise-wrapped store call and IPv6 regex.
 */
export class FixedWindowLimiter {
  private readonly windows = new Map<string, Window>();
  private nextSweep = 0;

  constructor(
    readonly max: number,
    readonly windowMs: number,
  ) {}

  /** Counts one request of `client`; returns its count in the current window and the ms left. */
  hit(client: string, now: number): { count: number; msLeft: number } {
    let window = this.windows.get(client);
    if (window === undefined || window.endsAt <= now) {
      if (now >= this.nextSweep || this.windows.size >= MAX_CLIENTS) this.sweep(now);
      window = { count: 0, endsAt: now + this.windowMs };
      this.windows.set(client, window);
    }
    window.count++;
    return { count: window.count, msLeft: window.endsAt - now };
  }

  /** Drops finished windows (at most once per window length), and the oldest when still too many. */
  private sweep(now: number): void {
    this.nextSweep = now + this.windowMs;
    for (const [client, window] of this.windows) if (window.endsAt <= now) this.windows.delete(client);
    for (const client of this.windows.keys()) {
      if (this.windows.size < MAX_CLIENTS) break;
      this.windows.delete(client);
    }
  }
}

/** The rate-limit key of a request: its IP, IPv6 addresses grouped by /64. */
export function clientKey(ip: string): string {
  return ip.includes(':') ? normalizeIP(ip) : ip;
}

/**
 * Limits every route whose `config.rateLimit` is set (routes registered after this call).
 * Each route counts on its own, except routes naming the same `groupId`, which share one
 * counter per client. Past the limit the route answers a 429 problem with `retry-after`.
 */
export function installRateLimits(app: FastifyInstance): void {
  const groups = new Map<string, FixedWindowLimiter>();
  app.addHook('onRoute', (route) => {
    // `config.rateLimit` is what `limitedBy` sets: `{ max, timeWindow, groupId? }` in requests and ms.
    const limit = route.config?.rateLimit;
    if (!limit || typeof limit.max !== 'number' || typeof limit.timeWindow !== 'number') return;
    const limiter = limiterFor(groups, limit.max, limit.timeWindow, limit.groupId, route.url);
    const hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      const { count, msLeft } = limiter.hit(clientKey(request.ip), Date.now());
      const resetSeconds = Math.ceil(msLeft / 1000);
      reply.header('x-ratelimit-limit', limiter.max);
      reply.header('x-ratelimit-remaining', Math.max(0, limiter.max - count));
      reply.header('x-ratelimit-reset', resetSeconds);
      if (count <= limiter.max) {
        done();
        return;
      }
      done(
        new ApiProblem(
          429,
          'RATE_LIMITED',
          `rate limit of ${limiter.max} requests per ${Math.round(limiter.windowMs / 1000)} s exceeded; retry in ${resetSeconds} s`,
          { headers: { 'retry-after': String(resetSeconds) } },
        ),
      );
    };
    const existing = route.onRequest;
    route.onRequest = existing === undefined ? [hook] : [...(Array.isArray(existing) ? existing : [existing]), hook];
  });
}

/** The group's shared limiter (made on its first route), or a route's own when it names no group. */
function limiterFor(
  groups: Map<string, FixedWindowLimiter>,
  max: number,
  windowMs: number,
  groupId: string | undefined,
  url: string,
): FixedWindowLimiter {
  if (groupId === undefined) return new FixedWindowLimiter(max, windowMs);
  const shared = groups.get(groupId);
  if (shared === undefined) {
    const limiter = new FixedWindowLimiter(max, windowMs);
    groups.set(groupId, limiter);
    return limiter;
  }
  if (shared.max !== max || shared.windowMs !== windowMs) {
    throw new Error(`route ${url} limits rate group ${groupId} differently from the group's other routes`);
  }
  return shared;
}
