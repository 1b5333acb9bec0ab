import type {
  Config,
  EventCatalog,
  GroupDefinition,
  Logger,
  ReadinessCheck,
  RedisClient,
  StreamfleetKeys,
} from '@streamfleet/core';
import type { WorkerMetrics } from '../metrics/worker-metrics';

/** What a group set gets to build its handlers with. Connections are the worker's: don't close them. */
export interface GroupDeps {
  config: Config;
  /** The worker's catalog, with every selected set's event types registered. */
  catalog: EventCatalog;
  redis: RedisClient;
  keys: StreamfleetKeys;
  logger: Logger;
}

/**
 * A named set of consumer groups, e.g. the order domain or the e2e test groups. Its event
 * types go into the worker's catalog; `create` builds the definitions once the worker has a
 * connection; `start` and `close` bracket the consumers' life; `readinessChecks` names the
 * dependencies beyond Redis that its handlers cannot work without.
 */
export interface GroupSet {
  /** Name of the set, for logs. */
  name: string;
  /** Group names this set provides, so `WORKER_GROUPS` can be checked before connecting. */
  groups: readonly string[];
  /** Whether `WORKER_GROUPS` unset ("all groups") includes this set. Test sets say no. */
  includedByDefault: boolean;
  registerEvents?(catalog: EventCatalog): void;
  create(deps: GroupDeps): Promise<GroupDefinition[]> | GroupDefinition[];
  /** Runs before the consumers start: migrations, background services (e.g. an outbox relay). */
  start?(deps: GroupDeps): Promise<void>;
  /**
   * Runs as the worker begins to close, before its consumers drain: gives up duties the
   * fleet shares (the outbox relay's leadership) so another worker takes them over now,
   * not once the drain is over.
   */
  handOver?(): Promise<void>;
  /** Runs after the consumers stopped. */
  close?(): Promise<void>;
  /**
   * Checks of the set's own dependencies by name (e.g. `postgres`, running `select 1`),
   * asked for once `start` has run and run by the worker's `/readyz` on every probe, with a
   * timeout: keep each one cheap. A failing check makes the worker not ready; it does not
   * stop it.
   */
  readinessChecks?(): Record<string, ReadinessCheck>;
  /**
   * Adds the set's own gauges to the worker's registry (`metrics.registry`), read at scrape
   * time; wrap each read in `metrics.withTimeout` so a scrape never hangs on a dependency.
   * Called once, after `create`.
   */
  registerMetrics?(metrics: WorkerMetrics): void;
}

export class UnknownGroupError extends Error {
  constructor(
    readonly unknown: string[],
    readonly known: string[],
  ) {
    super(
      `WORKER_GROUPS: unknown group(s) ${unknown.join(', ')}; known groups: ${known.length ? known.join(', ') : '(none)'}`,
    );
    this.name = 'UnknownGroupError';
  }
}

/** Every group set a worker process can run, and the choice `WORKER_GROUPS` makes among them. */
export class GroupRegistry {
  private readonly sets: GroupSet[] = [];

  add(set: GroupSet): this {
    this.sets.push(set);
    return this;
  }

  list(): readonly GroupSet[] {
    return this.sets;
  }

  knownGroups(): string[] {
    return this.sets.flatMap((s) => [...s.groups]);
  }

  /**
   * The sets to start and, for each, which of its groups. Only `undefined` selects every group
   * of every set that is included by default; `[]` selects nothing. Unknown names throw
   * `UnknownGroupError`.
   */
  select(names: readonly string[] | undefined): { set: GroupSet; groups: Set<string> }[] {
    if (names === undefined) {
      return this.sets.filter((s) => s.includedByDefault).map((set) => ({ set, groups: new Set(set.groups) }));
    }
    const known = this.knownGroups();
    const unknown = names.filter((n) => !known.includes(n));
    if (unknown.length > 0) throw new UnknownGroupError(unknown, known);
    const wanted = new Set(names);
    return this.sets
      .map((set) => ({ set, groups: new Set(set.groups.filter((g) => wanted.has(g))) }))
      .filter((s) => s.groups.size > 0);
  }
}
