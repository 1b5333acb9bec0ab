import { createHash } from 'node:crypto';
import type { RedisClient, StreamfleetKeys } from '@streamfleet/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiProblem } from './problem';

/** The `Idempotency-Key` request header, for the `headers` schema of a route that honours it. */
export const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,200}$/, 'must be 1-200 visible ASCII characters')
  .optional()
  .meta({
    description:
      'Optional. A repeat with the same key and body within 24 h returns the first answer and writes nothing; ' +
      'the same key with another body is 422',
    example: '5d3c2a8e-order-42',
  });

/** What is stored under an idempotency key: a claim while the first request runs, then its answer. */
type Stored =
  | { state: 'pending'; fingerprint: string; at: string }
  | { state: 'done'; fingerprint: string; at: string; status: number; body: unknown };

export interface IdempotentAnswer {
  status: number;
  body: unknown;
  replayed: boolean;
}

/** A claim still pending after this long belongs to a request that died; it may be taken over. */
const STALE_CLAIM_MS = 30_000;

/**
 * `Idempotency-Key` support for POST routes. The first request claims the key with
 * `SET NX`; its answer then replaces the claim for `ttlSeconds`. A second request with the
 * same key gets the stored answer and writes nothing; one arriving while the first is still
 * running gets 409 (retry shortly); one with a different body gets 422.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: StreamfleetKeys,
    private readonly ttlSeconds: number,
  ) {}

  /** Equal JSON bodies fingerprint alike whatever their key order; array order still counts. */
  static fingerprint(route: string, body: unknown): string {
    return createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');
  }

  /**
   * The answer to `request`: `work`'s, run at most once per `Idempotency-Key` when the
   * request sends one (fingerprinted with its method, route and body), and run plainly
   * otherwise (nothing hashed, stored or read). A replayed answer carries
   * `idempotent-replayed: true`. Call it once the request is fully validated.
   */
  async answer(
    request: FastifyRequest,
    reply: FastifyReply,
    work: () => Promise<{ status: number; body: unknown }>,
  ): Promise<{ status: number; body: unknown }> {
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string') return work();
    const route = `${request.method} ${request.routeOptions.url ?? request.url}`;
    const answer = await this.run(key, IdempotencyStore.fingerprint(route, request.body), work);
    if (answer.replayed) reply.header('idempotent-replayed', 'true');
    return answer;
  }

  /**
   * Runs `work` at most once per key. `work` must only be called after the request has been
   * fully validated, so that a refused request never consumes the key.
   */
  async run(
    key: string,
    fingerprint: string,
    work: () => Promise<{ status: number; body: unknown }>,
  ): Promise<IdempotentAnswer> {
    const redisKey = this.keys.idempotency(key);
    const claim: Stored = { state: 'pending', fingerprint, at: new Date().toISOString() };
    const claimed = await this.redis.set(redisKey, JSON.stringify(claim), 'EX', this.ttlSeconds, 'NX');
    if (claimed !== 'OK') {
      const existing = await this.read(redisKey);
      if (existing === undefined) return this.run(key, fingerprint, work);
      if (existing.fingerprint !== fingerprint) {
        throw new ApiProblem(
          422,
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was already used with a different request; use a new key',
          { errors: [{ field: 'headers.idempotency-key', message: 'already used for a different request' }] },
        );
      }
      if (existing.state === 'done') return { status: existing.status, body: existing.body, replayed: true };
      if (Date.now() - Date.parse(existing.at) < STALE_CLAIM_MS) {
        throw new ApiProblem(
          409,
          'IDEMPOTENCY_KEY_IN_PROGRESS',
          'a request with this Idempotency-Key is still being processed; retry shortly',
          { headers: { 'retry-after': '1' } },
        );
      }
      // The first request died after claiming: take the claim over, atomically, once.
      const raw = JSON.stringify(existing);
      const taken = await this.redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0",
        1,
        redisKey,
        raw,
        JSON.stringify(claim),
        String(this.ttlSeconds),
      );
      if (taken !== 1) return this.run(key, fingerprint, work);
    }
    let answer: { status: number; body: unknown };
    try {
      answer = await work();
    } catch (err) {
      // Nothing was accepted: free the key so the client can retry with it.
      await this.redis.del(redisKey).catch(() => undefined);
      throw err;
    }
    const done: Stored = { state: 'done', fingerprint, at: new Date().toISOString(), ...answer };
    await this.redis.set(redisKey, JSON.stringify(done), 'EX', this.ttlSeconds);
    return { ...answer, replayed: false };
  }

  private async read(redisKey: string): Promise<Stored | undefined> {
    const raw = await this.redis.get(redisKey);
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw) as Stored;
    } catch {
      return undefined;
    }
  }
}

/**
 * JSON with every object's keys sorted, at every depth; arrays keep their order. One pass
 * over a body that is already parsed, and only for requests that carry an Idempotency-Key.
 */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  // `?? 'null'`: undefined in an array, as JSON.stringify writes it.
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const record = value as Record<string, unknown>;
  const members: string[] = [];
  for (const key of Object.keys(record).sort()) {
    if (record[key] !== undefined) members.push(`${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  }
  return `{${members.join(',')}}`;
}
