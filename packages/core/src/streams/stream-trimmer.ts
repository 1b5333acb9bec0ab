import { readFileSync } from 'node:fs';
import type { RedisClient } from './connection';
import type { StreamfleetKeys } from './keys';
import { infoList, infoRecord } from './reply';

export interface StreamTrimmerOptions {
  redis: RedisClient;
  keys: StreamfleetKeys;
  /** Entries younger than this are kept even when every group acknowledged them. */
  retentionMs?: number;
}

const TRIM_TO_SAFE_FLOOR = readFileSync(new URL('./trim-stream-1.lua', import.meta.url), 'utf8');

type TrimmerRedis = RedisClient & {
  sfTrimToSafeFloor(stream: string, retentionMs: number): Promise<[string, number]>;
};

/**
 * Trims streams without ever dropping an entry a group has not acknowledged: the trim
 * point (XTRIM MINID) is the oldest pending entry, or the oldest last-delivered id, over
 * every group of the stream, computed and applied atomically in one script. A stream without
 * groups is never trimmed. Safe to run from many processes at once: each run trims to a
 * floor that is safe at the moment it runs, and trimming to a lower floor than a previous
 * run is a no-op.
 */
export class StreamTrimmer {
  constructor(private readonly options: StreamTrimmerOptions) {}

  /**
   * The id below which every group has acknowledged everything, or undefined. Read in
   * several round trips, for admin views; `trim()` does not use it.
   */
  async safeTrimPoint(stream: string): Promise<string | undefined> {
    const key = this.options.keys.stream(stream);
    const groups = infoList(await this.options.redis.xinfo('GROUPS', key).catch(() => []));
    if (groups.length === 0) return undefined;
    let floor: string | undefined;
    for (const g of groups) {
      const summary = (await this.options.redis.xpending(key, String(g.name))) as [number, string | null, ...unknown[]];
      const oldestPending = Number(summary[0]) > 0 ? summary[1] : null;
      const candidate = oldestPending ?? String(g['last-delivered-id']);
      if (floor === undefined || compare(candidate, floor) < 0) floor = candidate;
    }
    return floor;
  }

  /** Trims one stream; returns how many entries were removed. */
  async trim(stream: string): Promise<number> {
    const redis = this.options.redis as TrimmerRedis;
    if (typeof redis.sfTrimToSafeFloor !== 'function') {
      redis.defineCommand('sfTrimToSafeFloor', { numberOfKeys: 1, lua: TRIM_TO_SAFE_FLOOR });
    }
    const [, removed] = await redis.sfTrimToSafeFloor(
      this.options.keys.stream(stream),
      Math.max(0, Math.floor(this.options.retentionMs ?? 0)),
    );
    return Number(removed);
  }

  /** Trims every stream that has consumer groups. */
  async trimAll(): Promise<Record<string, number>> {
    const streams = await this.options.redis.smembers(this.options.keys.streams);
    const out: Record<string, number> = {};
    for (const s of streams) out[s] = await this.trim(s);
    return out;
  }

  /** Length and groups of a stream, for admin views. */
  async info(stream: string): Promise<Record<string, unknown>> {
    return infoRecord(await this.options.redis.xinfo('STREAM', this.options.keys.stream(stream)));
  }
}

function compare(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((p) => BigInt(p));
  const [bm = 0n, bs = 0n] = b.split('-').map((p) => BigInt(p));
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}
