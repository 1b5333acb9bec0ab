import { setTimeout as sleep } from 'node:timers/promises';
import type { EventCatalog, GroupDefinition, StreamfleetKeys } from '@streamfleet/core';
import { z } from 'zod';
import type { GroupSet } from './registry';

/** Stream and event type of the built-in test groups. */
export const E2E_STREAM = 'e2e';
export const E2E_EVENT_TYPE = 'e2e.ping';
export const E2E_GROUPS = ['e2e-a', 'e2e-b'] as const;

export const e2ePingData = z
  .object({
    n: z.number().int().nonnegative(),
    /** The handler throws on the first attempt: exercises the retry path. */
    failFirst: z.boolean().optional(),
  })
  .strict();

/** Keys the e2e handlers write, under the fleet's prefix so `cleanupPrefix` removes them. */
export function e2eKeys(keys: StreamfleetKeys, group: string): { seen: string; calls: string } {
  return { seen: `${keys.root}:e2e:${group}:seen`, calls: `${keys.root}:e2e:${group}:calls` };
}

export function registerE2eEvents(catalog: EventCatalog): void {
  if (catalog.has(E2E_EVENT_TYPE)) return;
  catalog.register({
    type: E2E_EVENT_TYPE,
    schemaVersion: 1,
    stream: E2E_STREAM,
    schema: e2ePingData,
    description: 'Test event of the built-in e2e groups.',
    example: { n: 1 },
  });
}

export interface E2eGroupsOptions {
  /** Simulated work per event, so that kills land mid-flow. */
  handlerDelayMs?: number;
}

/**
 * Test groups that depend on nothing but Redis: each records `(group, event id)` with SADD
 * (the effect, idempotent) and counts calls with INCR (calls - set size = duplicate
 * deliveries). Selected only by name in `WORKER_GROUPS`, never by default.
 */
export function e2eGroupSet(options: E2eGroupsOptions = {}): GroupSet {
  const delay = options.handlerDelayMs ?? 0;
  return {
    name: 'e2e',
    groups: E2E_GROUPS,
    includedByDefault: false,
    registerEvents: registerE2eEvents,
    create({ redis, keys }) {
      return E2E_GROUPS.map(
        (group): GroupDefinition => ({
          group,
          stream: E2E_STREAM,
          types: [E2E_EVENT_TYPE],
          async handler(event, context) {
            if (delay > 0) await sleep(delay);
            const data = event.data as z.infer<typeof e2ePingData>;
            if (data.failFirst && context.attempt === 1) throw new Error(`e2e: planned failure of event ${data.n}`);
            const k = e2eKeys(keys, group);
            await redis.multi().sadd(k.seen, event.id).incr(k.calls).exec();
          },
        }),
      );
    },
  };
}
