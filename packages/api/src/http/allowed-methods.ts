import type { FastifyInstance } from 'fastify';

interface KnownRoute {
  pattern: RegExp;
  methods: string[];
}

/**
 * Remembers every route's path and methods as routes are added, so that a request for a
 * known path with a method it does not serve can be answered 405 with `Allow` (RFC 9110
 * 15.5.6) rather than 404. Call before any route is registered. Only the not-found path
 * uses it: matched requests never pay for it.
 */
export function trackAllowedMethods(app: FastifyInstance): (path: string) => string[] {
  const routes = new Map<string, KnownRoute>();
  app.addHook('onRoute', (route) => {
    const url = normalise(route.url);
    const known = routes.get(url) ?? { pattern: toPattern(url), methods: [] };
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) {
      if (!known.methods.includes(method)) known.methods.push(method);
    }
    routes.set(url, known);
  });
  return (path) => {
    const target = normalise(path);
    const allowed = new Set<string>();
    for (const route of routes.values()) {
      if (route.pattern.test(target)) for (const m of route.methods) allowed.add(m);
    }
    return [...allowed].sort();
  };
}

function normalise(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** `/admin/dlq/:id/replay` -> `^/admin/dlq/[^/]+/replay$`; `*` matches the rest. */
function toPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((part) => {
      if (part.startsWith(':')) return '[^/]+';
      if (part === '*') return '.*';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}
