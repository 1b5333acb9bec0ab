import type { RedisClient } from './connection';

/** Entries one filtered page reads at most, however few of them match. */
export const PAGE_SCAN_BUDGET = 5000;

export interface NewestFirstPage<T> {
  items: T[];
  /** Pass back (as an exclusive upper bound) for the next, older page; absent on the last one. */
  nextCursor?: string;
}

/**
 * One page of a stream's entries, newest first, of those `pick` keeps (it parses a row and
 * says `undefined` to leave it out). Reads `XREVRANGE` in chunks from `end` down to `lower`
 * until `limit` items are found, the stream ends, or `PAGE_SCAN_BUDGET` rows were read: sparse
 * matches then hand back what was found and where to go on (the last row read, so rows left
 * out never end the paging), rather than scan forever.
 */
export async function newestFirstPage<T>(
  redis: RedisClient,
  key: string,
  range: { end: string; lower: string },
  limit: number,
  chunk: number,
  pick: (id: string, fields: string[]) => T | undefined,
): Promise<NewestFirstPage<T>> {
  const items: T[] = [];
  let end = range.end;
  let scanned = 0;
  for (;;) {
    const rows = (await redis.xrevrange(key, end, range.lower, 'COUNT', chunk)) as [string, string[]][];
    const exhausted = rows.length < chunk;
    for (let i = 0; i < rows.length; i++) {
      const [id, fields] = rows[i] as [string, string[]];
      scanned++;
      const item = pick(id, fields);
      if (item === undefined) continue;
      items.push(item);
      if (items.length === limit) {
        const more = i < rows.length - 1 || !exhausted;
        return more ? { items, nextCursor: id } : { items };
      }
    }
    const last = rows.at(-1)?.[0];
    if (exhausted || !last) return { items };
    if (scanned >= PAGE_SCAN_BUDGET) return { items, nextCursor: last };
    end = `(${last}`;
  }
}
