import postgres from 'postgres';

export type Sql = postgres.Sql;
export type TransactionSql = postgres.TransactionSql;
/** Either the pool or an open transaction: store functions accept both. */
export type Queryable = Sql | TransactionSql;

export interface PostgresOptions {
  /** Pool size. Default 10. */
  max?: number;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
}

/** A postgres.js pool with notices silenced (migrations emit "already exists" notices). */
export function createPostgres(url: string, options: PostgresOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => undefined,
    connection: { application_name: options.applicationName ?? 'streamfleet' },
  });
}

/**
 * Runs `fn` in a transaction: a new one on a pool, a savepoint inside an open one, so a
 * command can run alone or as part of a handler's transaction (with its idempotency record).
 */
export function inTransaction<T>(sql: Queryable, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  if ('savepoint' in sql) return sql.savepoint(fn) as Promise<T>;
  return sql.begin(fn) as Promise<T>;
}

/**
 * Creates the database named in `url` when it does not exist, connecting to the server's
 * `postgres` database to do so. Safe when several processes race to create it.
 */
/**
 * Serialises transactions on one key (e.g. one order) until `tx` ends: a row lock cannot do
 * that while the row does not exist yet. The key is hashed to Postgres' advisory-lock space.
 */
export async function lockKeyForTransaction(tx: TransactionSql, key: string): Promise<void> {
  await tx`select pg_advisory_xact_lock(hashtext(${key}))`;
}

export async function ensureDatabase(url: string): Promise<{ created: boolean }> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name || name === 'postgres') return { created: false };
  const adminUrl = new URL(url);
  adminUrl.pathname = '/postgres';
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => undefined });
  try {
    const rows = await admin`select 1 from pg_database where datname = ${name}`;
    if (rows.length > 0) return { created: false };
    try {
      await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`);
      return { created: true };
    } catch (err) {
      // 42P04 duplicate_database: another process created it first; 23505 the same race
      // seen through pg_database's unique index.
      const code = (err as { code?: string }).code;
      if (code === '42P04' || code === '23505') return { created: false };
      throw err;
    }
  } finally {
    await admin.end();
  }
}

/** Postgres SQLSTATE of an error, when it has one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export const UNIQUE_VIOLATION = '23505';
