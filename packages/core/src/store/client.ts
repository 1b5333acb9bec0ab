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

/** postgres.js's own codes for a connection that failed, closed or was ended (its `Errors.connection`). */
const CLIENT_CONNECTION_CODES = new Set([
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
]);

/**
 * SQLSTATEs of a server that cannot serve this connection now: class 08 (connection
 * exception), 53300 too_many_connections, 57P01-57P03 (terminated by an administrator or a
 * shutdown, crashed, starting up or shutting down).
 */
const SERVER_UNAVAILABLE = /^(08...|53300|57P0[123])$/;

/**
 * Whether `err` came from postgres.js: a server error (`PostgresError`), one of its own
 * connection codes, or a socket error it failed a query with (it attaches the query's
 * `query` and `parameters` to those).
 */
export function isPostgresClientError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'PostgresError') return true;
  const code = sqlState(err);
  return (code !== undefined && CLIENT_CONNECTION_CODES.has(code)) || ('query' in err && 'parameters' in err);
}

/**
 * A Postgres that cannot be reached right now (refused, reset, timed out, terminated, shutting
 * down), as opposed to Postgres refusing a statement. Told apart from a Redis outage by where
 * the error comes from, not by its message (both say ECONNREFUSED). postgres.js reconnects by
 * itself on the next query. The statement may or may not have been carried out: a connection
 * lost during COMMIT leaves the outcome unknown.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  if (!isPostgresClientError(err)) return false;
  const { name, code, syscall } = err as Error & { code?: unknown; syscall?: unknown };
  if (typeof code !== 'string') return false;
  if (name === 'PostgresError') return SERVER_UNAVAILABLE.test(code);
  // A system call on the socket that failed (connect ECONNREFUSED, read ECONNRESET, ...).
  return CLIENT_CONNECTION_CODES.has(code) || typeof syscall === 'string';
}
