import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { z } from 'zod';
import { EventCatalog } from '../events/catalog';
import { createEvent, type EventEnvelope } from '../events/envelope';
import { Fleet, type FleetOptions } from '../fleet/fleet';
import type { EventHandler, GroupDefinition } from '../streams/handler';
import { cleanupPrefix, testRedisUrl, uniquePrefix } from './index';

/**
 * The engine specs' world: one stream of `thing.happened` events carrying a number, and
 * fleets started on a fresh key prefix per test. A spec creates one `ThingFleets`, calls
 * `newTest()` at the start of each test and `cleanUp()` after it.
 */
export const THING_STREAM = 'things';

export const thingCatalog = new EventCatalog().register({
  type: 'thing.happened',
  schemaVersion: 1,
  stream: THING_STREAM,
  schema: z.object({ n: z.number().int() }).strict(),
});

export const thing = (n: number, aggregateId?: string): EventEnvelope =>
  createEvent({ type: 'thing.happened', data: { n }, ...(aggregateId ? { aggregateId } : {}) });

/** The number a `thing` carries. */
export const n = (e: EventEnvelope): number => (e.data as { n: number }).n;

/** `undefined` for an empty list: lets `waitFor` wait until something is there. */
export const nonEmpty = <T>(items: T[]): T[] | undefined => (items.length > 0 ? items : undefined);

export const group = (name: string, handler: EventHandler, extra: Partial<GroupDefinition> = {}): GroupDefinition => ({
  group: name,
  stream: THING_STREAM,
  handler,
  ...extra,
});

/** Entries of a group delivered and not acknowledged (XPENDING summary). */
export async function pendingCount(fleet: Fleet, groupName: string): Promise<number> {
  const summary = (await fleet.redis.xpending(fleet.keys.stream(THING_STREAM), groupName)) as [number];
  return Number(summary[0]);
}

/**
 * The fleets of one spec file: each test starts its own on a fresh prefix (`newTest()`),
 * `cleanUp()` closes what is still running and deletes the test's keys.
 */
export class ThingFleets {
  /** Fleets started and not yet closed; a test may take them out (to close them itself). */
  readonly running: Fleet[] = [];
  prefix = uniquePrefix();
  private connection: { url: string; redis: Redis } | undefined;

  /** `defaults`: fleet options every `start()` begins from; a test may override them. */
  constructor(private readonly defaults: Partial<FleetOptions>) {}

  /**
   * Registers the spec file's hooks: connect before its tests, close each test's fleets and
   * delete its keys after it, disconnect at the end.
   */
  useHooks(): void {
    beforeAll(() => this.connect());
    afterEach(() => this.cleanUp());
    afterAll(() => this.disconnect());
  }

  /** Opens the spec's own Redis connection (call from `beforeAll`, once the test servers are up). */
  connect(): void {
    const url = testRedisUrl();
    this.connection = { url, redis: new Redis(url) };
  }

  get url(): string {
    if (!this.connection) throw new Error('ThingFleets: connect() first');
    return this.connection.url;
  }

  /** The spec's own connection, for reading what the fleets did. */
  get redis(): Redis {
    if (!this.connection) throw new Error('ThingFleets: connect() first');
    return this.connection.redis;
  }

  /** A fresh key prefix for the test about to run. */
  newTest(): void {
    this.prefix = uniquePrefix();
  }

  async start(groups: GroupDefinition[], overrides: Partial<FleetOptions> = {}): Promise<Fleet> {
    const fleet = new Fleet({
      redisUrl: this.url,
      prefix: this.prefix,
      catalog: thingCatalog,
      groups,
      ...this.defaults,
      ...overrides,
    });
    this.running.push(fleet);
    await fleet.start();
    return fleet;
  }

  async cleanUp(): Promise<void> {
    await Promise.all(this.running.splice(0).map((f) => f.close({ timeoutMs: 2000 })));
    await cleanupPrefix(this.url, this.prefix);
  }

  disconnect(): void {
    this.connection?.redis.disconnect();
  }
}
