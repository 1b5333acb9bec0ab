import { Redis } from 'ioredis';
import { waitFor } from './index';
import { TestRedisServer } from './redis-server';

const SLOTS = 16_384;

/**
 * A Redis Cluster owned by one test: `masters` nodes sharing the slots evenly, and one
 * replica for each master listed in `replicate` (by index), so a test can kill a master
 * and watch its replica take over (node timeout 1 s). Built with plain cluster commands
 * (ADDSLOTSRANGE, MEET, REPLICATE), no `redis-cli`.
 */
export class TestRedisCluster {
  readonly masters: TestRedisServer[];
  readonly replicas: TestRedisServer[];

  constructor(
    masters = 3,
    private readonly replicate: readonly number[] = [],
  ) {
    const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000'];
    this.masters = Array.from({ length: masters }, () => new TestRedisServer(args));
    this.replicas = replicate.map(() => new TestRedisServer(args));
  }

  /** A seed URL for clients: the first master; they learn the rest from it. */
  get url(): string {
    return this.masters[0]!.url;
  }

  /** Every master's URL, comma-separated (`REDIS_URL` with several seeds). */
  get seeds(): string {
    return this.masters.map((m) => m.url).join(',');
  }

  async start(): Promise<void> {
    const all = [...this.masters, ...this.replicas];
    await Promise.all(all.map((s) => s.start()));
    const clients = all.map((s) => new Redis(s.url, { maxRetriesPerRequest: 0 }));
    try {
      const per = Math.ceil(SLOTS / this.masters.length);
      await Promise.all(
        this.masters.map((_, i) =>
          clients[i]!.call('CLUSTER', 'ADDSLOTSRANGE', i * per, Math.min(SLOTS, (i + 1) * per) - 1),
        ),
      );
      for (const s of all.slice(1)) await clients[0]!.call('CLUSTER', 'MEET', '127.0.0.1', s.port);
      await waitFor(
        async () => {
          const views = await Promise.all(clients.map((c) => c.call('CLUSTER', 'NODES')));
          return views.every((v) => String(v).trim().split('\n').length === all.length);
        },
        { timeoutMs: 20_000, message: 'every cluster node to know every other' },
      );
      for (const [r, m] of this.replicate.entries()) {
        const masterId = String(await clients[m]!.call('CLUSTER', 'MYID'));
        await clients[this.masters.length + r]!.call('CLUSTER', 'REPLICATE', masterId);
      }
      await waitFor(
        async () => {
          const infos = await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO')));
          if (!infos.every((i) => String(i).includes('cluster_state:ok'))) return false;
          const replication = await Promise.all(clients.slice(this.masters.length).map((c) => c.info('replication')));
          return replication.every((i) => i.includes('master_link_status:up'));
        },
        { timeoutMs: 30_000, message: 'the cluster to be ok and its replicas in sync' },
      );
    } finally {
      for (const c of clients) c.disconnect();
    }
  }

  /** The master that serves `key`'s slot now, as the first node that answers sees it. */
  async masterOf(key: string): Promise<TestRedisServer> {
    const nodes = [...this.masters, ...this.replicas];
    let last: unknown;
    for (const node of nodes) {
      const probe = new Redis(node.url, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', key));
        const shards = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
        const port = Number(shards.find(([from, to]) => slot >= from && slot <= to)?.[2][1]);
        const server = nodes.find((s) => s.port === port);
        if (server) return server;
        last = new Error(`no node serves slot ${slot}`);
      } catch (err) {
        last = err; // a killed node: ask the next one
      } finally {
        probe.disconnect();
      }
    }
    throw last;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.masters, ...this.replicas].map((s) => s.stop()));
  }
}
