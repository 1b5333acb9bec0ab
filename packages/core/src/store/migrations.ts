import type { Sql } from './client';

export interface Migration {
  /** Strictly increasing; never renumber or edit an applied migration, add a new one. */
  version: number;
  name: string;
  sql: string;
}

/** Any 64-bit number unique to "streamfleet migrations"; the relay uses another. */
const MIGRATION_LOCK_KEY = 727_100_001;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event store and outbox',
    sql: `
      create table events (
        global_position bigserial primary key,
        event_id uuid not null unique,
        aggregate_id text not null,
        version integer not null check (version > 0),
        type text not null,
        schema_version integer not null default 1,
        data jsonb not null,
        metadata jsonb not null default '{}',
        occurred_at timestamptz not null,
        recorded_at timestamptz not null default now(),
        unique (aggregate_id, version)
      );

      create table outbox (
        id bigserial primary key,
        stream text not null,
        event_id uuid not null,
        event jsonb not null,
        created_at timestamptz not null default now(),
        published_at timestamptz
      );
      -- The relay only ever scans unpublished rows in id order.
      create index outbox_unpublished on outbox (id) where published_at is null;

      create table processed_events (
        "group" text not null,
        event_id text not null,
        processed_at timestamptz not null default now(),
        primary key ("group", event_id)
      );
    `,
  },
  {
    version: 2,
    name: 'order read model',
    sql: `
      create table orders_view (
        id text primary key,
        customer_id text not null,
        status text not null,
        total bigint not null,
        currency text not null,
        items jsonb not null,
        cancellation_reason text,
        cancelled_by text,
        payment_id text,
        version integer not null,
        created_at timestamptz not null,
        updated_at timestamptz not null
      );
      create index orders_view_customer on orders_view (customer_id, created_at desc, id desc);
      create index orders_view_status on orders_view (status, created_at desc, id desc);
    `,
  },
  {
    version: 3,
    name: 'inventory, payments, notifications, saga',
    sql: `
      create table inventory (
        sku text primary key,
        available integer not null check (available >= 0),
        reserved integer not null default 0 check (reserved >= 0),
        updated_at timestamptz not null default now()
      );

      -- One row per order: 'reserved', 'released', 'failed' or 'void' (cancelled before
      -- anything was reserved, so a late order.created must not reserve).
      create table reservations (
        order_id text primary key,
        status text not null,
        items jsonb not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );

      create table payments (
        order_id text primary key,
        status text not null,
        amount bigint not null,
        currency text not null,
        charge_id text,
        refund_id text,
        idempotency_key text not null unique,
        failure_reason text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );

      create table notifications (
        event_id text primary key,
        order_id text not null,
        kind text not null,
        recipient text not null,
        delivered boolean not null,
        status_code integer,
        sent_at timestamptz not null default now()
      );
      create index notifications_order on notifications (order_id);

      create table order_sagas (
        order_id text primary key,
        state text not null,
        data jsonb not null default '{}',
        history jsonb not null default '[]',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
    `,
  },
  {
    version: 4,
    name: 'pruning indexes',
    sql: `
      create index outbox_published_at on outbox (published_at) where published_at is not null;
      create index processed_events_processed_at on processed_events (processed_at);
    `,
  },
  {
    version: 5,
    name: 'orders newest first',
    sql: `create index orders_view_newest on orders_view (created_at desc, id desc);`,
  },
  {
    version: 6,
    name: 'outbox rows the catalog refuses are parked',
    sql: `
      alter table outbox add column failed_at timestamptz, add column last_error text;
      drop index outbox_unpublished;
      create index outbox_unpublished on outbox (id) where published_at is null and failed_at is null;
    `,
  },
  {
    version: 7,
    name: 'notifications know their order version; stale ones are recorded as skipped',
    sql: `
      alter table notifications
        add column aggregate_version integer,
        add column status text not null default 'sent' check (status in ('sent', 'skipped')),
        add column superseded_by text;
      -- Rows written before this migration learn their version from the event store, so a
      -- replay of an old confirmation is still compared with the cancellation sent before.
      update notifications n set aggregate_version = e.version
      from events e where e.event_id::text = n.event_id;
    `,
  },
  {
    version: 8,
    name: 'charges that may have reached the payment gateway',
    sql: `
      -- Written before a charge request is sent, deleted when its outcome is recorded or the
      -- gateway said it did nothing: a row left behind means "this charge may have happened".
      create table payment_attempts (
        event_id text primary key,
        order_id text not null,
        created_at timestamptz not null default now()
      );
    `,
  },
  {
    version: 9,
    name: 'parked outbox rows counted from an index',
    sql: `create index outbox_parked on outbox (id) where published_at is null and failed_at is not null;`,
  },
  {
    version: 10,
    name: 'one payment_attempts row per attempt',
    sql: `
      -- Two runs of one charge at once (a redelivery beside a retry) each keep their own row:
      -- the one the gateway refused deletes only its own, never the other's evidence.
      alter table payment_attempts add column attempt_id uuid not null default gen_random_uuid();
      alter table payment_attempts drop constraint payment_attempts_pkey;
      alter table payment_attempts add primary key (event_id, attempt_id);
    `,
  },
  {
    version: 11,
    name: 'a SKU holds at most what an integer column does, reserved units included',
    sql: `
      -- Reserving and releasing move units between the two columns: with their sum bounded, a
      -- release always fits back, however much stock was counted or received meanwhile.
      alter table inventory add constraint inventory_total_fits
        check (available::bigint + reserved <= 2147483647);
    `,
  },
  {
    version: 12,
    name: 'a charge in doubt keeps its request',
    sql: `
      -- What was sent (customer, amount, currency), so a cancellation can ask the gateway again
      -- with the same idempotency key and refund what it finds, without waiting for the charge
      -- request itself to come back (it may sit in the dead-letter stream). Null on older rows.
      alter table payment_attempts add column request jsonb;
    `,
  },
];

export interface MigrateResult {
  applied: number[];
  current: number;
}

/**
 * Applies pending migrations in version order, all in one transaction under an advisory
 * lock, so several processes starting at once apply each migration exactly once.
 */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`;
    const rows = await tx<{ version: number }[]>`select version from schema_migrations`;
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of sorted) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
    const current = Math.max(0, ...done, ...applied);
    return { applied, current };
  }) as Promise<MigrateResult>;
}
