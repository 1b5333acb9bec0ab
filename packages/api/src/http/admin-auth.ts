import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ApiProblem } from './problem';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Hook guarding admin routes with `Authorization: Bearer <ADMIN_TOKEN>`.
 * Both sides are hashed before `timingSafeEqual`, so neither the token's content nor its
 * length leaks through timing. Without a configured token every request is refused: an
 * admin API is never open by default.
 */
export function adminAuth(adminToken: string | undefined): (request: FastifyRequest) => Promise<void> {
  const expected = adminToken ? digest(adminToken) : undefined;
  return async (request) => {
    if (!expected) {
      throw new ApiProblem(
        403,
        'ADMIN_DISABLED',
        'the admin API is disabled: set ADMIN_TOKEN (at least 16 characters) on the server to enable it',
      );
    }
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer[ ]+(\S+)\s*$/i.exec(header) : null;
    const challenge = { 'www-authenticate': 'Bearer realm="streamfleet-admin"' };
    if (!match?.[1]) {
      throw new ApiProblem(401, 'UNAUTHORIZED', 'admin routes need an Authorization: Bearer <ADMIN_TOKEN> header', {
        headers: challenge,
      });
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      throw new ApiProblem(401, 'UNAUTHORIZED', 'the bearer token is not valid', {
        headers: { 'www-authenticate': 'Bearer realm="streamfleet-admin", error="invalid_token"' },
      });
    }
  };
}

const ACTOR = /^[\w.@:+-]{1,100}$/;

/** Who an admin action is recorded as: `X-Actor` when given and sane, otherwise `admin`. */
export function actorOf(request: FastifyRequest): string {
  const header = request.headers['x-actor'];
  return typeof header === 'string' && ACTOR.test(header) ? header : 'admin';
}
