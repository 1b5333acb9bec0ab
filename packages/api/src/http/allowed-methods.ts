import type { FastifyInstance } from 'fastify';

interface KnownRoute {
  pattern: RegExp;
  /** Names of the path's parameters, in the order of the pattern's groups. */
  params: string[];
  /** Each method, with the route's `schema.params` (if any). */
  methods: Map<string, unknown>;
}

/** A route a path matches for one method: its parameters (raw, as in the URL) and their schema. */
export interface MatchedRoute {
  url: string;
  rawParams: Record<string, string>;
  paramsSchema: unknown;
}

/**
 * Remembers every route's path, methods and params schema as routes are added. Only the
 * paths the router did not serve use it, so matched requests never pay for it:
 * - a known path asked with a method it does not serve is answered 405 with `Allow`
 *   (RFC 9110 15.5.6) rather than 404;
 * - a URL the router refused (a parameter past `maxParamLength`, bad percent-encoding) is
 *   answered naming the parameter, as validation would.
 * Call `track` before any route is registered.
 */
export class KnownRoutes {
  private readonly routes = new Map<string, KnownRoute>();

  track(app: FastifyInstance): void {
    app.addHook('onRoute', (route) => {
      const url = normalise(route.url);
      const known = this.routes.get(url) ?? { ...toPattern(url), methods: new Map<string, unknown>() };
      for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
        if (!known.methods.has(method)) known.methods.set(method, route.schema?.params);
      }
      this.routes.set(url, known);
    });
  }

  /** Methods some route serves `path` with, sorted. */
  allowedMethods(path: string): string[] {
    const target = normalise(path);
    const allowed = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.pattern.test(target)) for (const m of route.methods.keys()) allowed.add(m);
    }
    return [...allowed].sort();
  }

  /** Routes with parameters that serve `path` (not yet decoded) with `method`. */
  match(method: string, path: string): MatchedRoute[] {
    const target = normalise(path);
    const matched: MatchedRoute[] = [];
    for (const [url, route] of this.routes) {
      if (route.params.length === 0 || !route.methods.has(method)) continue;
      const groups = route.pattern.exec(target);
      if (groups === null) continue;
      const rawParams: Record<string, string> = {};
      route.params.forEach((name, i) => {
        rawParams[name] = groups[i + 1] ?? '';
      });
      matched.push({ url, rawParams, paramsSchema: route.methods.get(method) });
    }
    return matched;
  }
}

function normalise(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** `/admin/dlq/:id/replay` -> `^/admin/dlq/([^/]+)/replay$` and `['id']`; `*` matches the rest. */
function toPattern(url: string): { pattern: RegExp; params: string[] } {
  const params: string[] = [];
  const source = url
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) {
        params.push(part.slice(1));
        return '([^/]+)';
      }
      if (part === '*') return '.*';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { pattern: new RegExp(`^${source}$`), params };
}
