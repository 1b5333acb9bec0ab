/**
 * Shapes of stream command replies as ioredis returns them. ioredis 6 negotiates RESP3
 * but hands stream replies back in the RESP2 array shapes; `reply.int.spec.ts` pins this.
 */
export type StreamEntry = [id: string, fields: string[] | null];
export type XReadGroupReply = [stream: string, entries: StreamEntry[]][] | null;
export type XAutoClaimReply = [cursor: string, entries: StreamEntry[], deleted: string[]];
export type XPendingEntry = [id: string, consumer: string, idleMs: number, deliveries: number];

/** Turns `XINFO`'s flat `[k, v, k, v]` (or a RESP3 map, should a client return one) into a record. */
export function infoRecord(reply: unknown): Record<string, unknown> {
  if (reply instanceof Map) return Object.fromEntries(reply);
  if (Array.isArray(reply)) {
    const out: Record<string, unknown> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1];
    return out;
  }
  if (reply && typeof reply === 'object') return reply as Record<string, unknown>;
  return {};
}

export function infoList(reply: unknown): Record<string, unknown>[] {
  return Array.isArray(reply) ? reply.map(infoRecord) : [];
}

export function isNoGroupError(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOGROUP');
}

/** Milliseconds part of a stream id (`1700000000000-3` -> 1700000000000). */
export function streamIdTime(id: string): number {
  return Number.parseInt(id, 10);
}

const STREAM_ID = /^\d{1,20}(-\d{1,20})?$/;
export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}
