import { domainGroupSet } from './domain-groups';
import { e2eGroupSet } from './e2e-groups';
import { GroupRegistry } from './registry';

export { DOMAIN_GROUPS, type DomainGroupsOptions, domainGroupSet } from './domain-groups';
export { E2E_EVENT_TYPE, E2E_GROUPS, E2E_STREAM, e2eGroupSet, e2eKeys, registerE2eEvents } from './e2e-groups';
export { type GroupDeps, GroupRegistry, type GroupSet, UnknownGroupError } from './registry';

export interface DefaultRegistryOptions {
  /** Simulated work per event in the e2e groups. */
  e2eHandlerDelayMs?: number;
}

/**
 * Every group set this worker binary knows: the order domain (default, with its outbox
 * relay) and the e2e test
 * groups (only when named in `WORKER_GROUPS`). Add a set here to make it deployable.
 */
export function defaultRegistry(options: DefaultRegistryOptions = {}): GroupRegistry {
  const registry = new GroupRegistry();
  registry.add(domainGroupSet());
  registry.add(
    e2eGroupSet(options.e2eHandlerDelayMs === undefined ? {} : { handlerDelayMs: options.e2eHandlerDelayMs }),
  );
  return registry;
}
