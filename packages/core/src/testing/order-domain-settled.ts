import { ORDERS_STREAM } from '../orders/events';
import type { RetryCounts } from '../retry/retry-queues';
import type { Sql } from '../store/client';
import type { RedisClient } from '../streams/connection';
import type { StreamfleetKeys } from '../streams/keys';
import { infoList } from '../streams/reply';
import { waitFor } from './index';

export interface OrderDomainRun {
  sql: Sql;
  redis: RedisClient;
  keys: StreamfleetKeys;
  /** The groups on the orders stream, e.g. the five order groups. */
  groups: readonly string[];
  retryCounts(group: string): Promise<RetryCounts>;
  /** Orders the run created. */
  orders: number;
}

/**
 * What an order-domain run still has to do: orders not final or not projected at their
 * last version, sagas open, outbox rows unpublished, entries pending or not yet read by a
 * group, retry jobs waiting. Empty once everything has settled.
 */
export async function orderDomainBacklog(run: OrderDomainRun): Promise<string[]> {
  const { sql } = run;
  const out: string[] = [];
  const [o] = await sql<{ open: number; views: number; stale: number }[]>`
    select
      count(*) filter (where v.status is null or v.status not in ('PAID', 'CANCELLED'))::int as open,
      count(v.id)::int as views,
      count(*) filter (where v.version is distinct from e.version)::int as stale
    from (select aggregate_id, max(version) as version from events group by aggregate_id) e
    left join orders_view v on v.id = e.aggregate_id`;
  if (o?.open || o?.views !== run.orders || o?.stale) out.push(`orders: ${JSON.stringify(o)}`);
  const open = await sql<{ order_id: string; state: string; history: unknown; status: string | null }[]>`
    select s.order_id, s.state, s.history, v.status from order_sagas s left join orders_view v on v.id = s.order_id
    where s.state not in ('completed', 'cancelled')`;
  if (open.length > 0) out.push(`${open.length} sagas open: ${JSON.stringify(open.slice(0, 3))}`);
  const [u] = await sql<{ n: number }[]>`select count(*)::int as n from outbox where published_at is null`;
  if (u?.n) out.push(`${u.n} outbox rows unpublished`);
  const groups = infoList(await run.redis.xinfo('GROUPS', run.keys.stream(ORDERS_STREAM)));
  if (groups.length !== run.groups.length) out.push(`${groups.length} groups on the stream`);
  for (const g of groups) {
    if (Number(g.pending) !== 0 || Number(g.lag) !== 0) out.push(`group ${g.name}: pending ${g.pending} lag ${g.lag}`);
  }
  for (const group of run.groups) {
    const c = await run.retryCounts(group);
    if (c.waiting + c.delayed + c.active > 0) out.push(`retry queue ${group}: ${JSON.stringify(c)}`);
  }
  return out;
}

/** Waits until `orderDomainBacklog` is empty; fails naming what is left and the first dead letters. */
export async function waitForOrderDomainSettled(
  run: OrderDomainRun,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<void> {
  let problems: string[] = [];
  try {
    await waitFor(async () => {
      problems = await orderDomainBacklog(run);
      return problems.length === 0;
    }, options);
  } catch (err) {
    const dead = await run.redis.xrange(run.keys.deadLetter, '-', '+', 'COUNT', 5);
    throw new Error(
      `did not settle: ${problems.join('; ')}; dead letters: ${JSON.stringify(dead)} (${(err as Error).message})`,
    );
  }
}
