import { randomFillSync } from 'node:crypto';

/**
 * What travels on a stream. Readonly: an event is a fact, handlers never mutate it.
 * `data` is validated per `type` + `schemaVersion` by the catalog.
 */
export interface EventEnvelope<TType extends string = string, TData = unknown> {
  readonly id: string;
  readonly type: TType;
  readonly schemaVersion: number;
  readonly aggregateId?: string;
  readonly aggregateVersion?: number;
  readonly occurredAt: string;
  readonly data: TData;
  readonly metadata: EventMetadata;
}

export interface EventMetadata {
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly traceparent?: string;
}

export interface NewEvent<TType extends string = string, TData = unknown> {
  type: TType;
  data: TData;
  schemaVersion?: number;
  id?: string;
  aggregateId?: string;
  aggregateVersion?: number;
  occurredAt?: string | Date;
  metadata?: EventMetadata;
}

// Random bits come from a pool refilled 256 ids at a time: one `getRandomValues` call per id
// (what the uuid package does) was 8% of the API's CPU time on single-event ingestion.
const RANDOM_BYTES_PER_ID = 10;
const pool = new Uint8Array(RANDOM_BYTES_PER_ID * 256);
let poolOffset = pool.length;
/** Two ASCII hex digits per byte value. */
const HEX = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, '0');
  HEX[i * 2] = h.charCodeAt(0);
  HEX[i * 2 + 1] = h.charCodeAt(1);
}
/** The id's text is assembled here and read out once: no intermediate strings per id. */
const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');
/** Where each of the 16 bytes goes in the text (dashes at 8, 13, 18 and 23). */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

function put(index: number, byte: number): void {
  const at = AT[index] as number;
  text[at] = HEX[byte * 2] as number;
  text[at + 1] = HEX[byte * 2 + 1] as number;
}

/** Millisecond and 32-bit counter of the last id, so that ids of one process sort in creation order. */
let lastMs = -1;
let counter = 0;

/**
 * Time-ordered UUID (v7, RFC 9562): 48-bit Unix milliseconds, then a 32-bit counter
 * (rand_a and the top of rand_b, "method 1" of section 6.2) seeded at random each
 * millisecond and incremented within one, then 34 random bits. Ids made by one process
 * sort in creation order even within a millisecond or when the clock steps back.
 */
export function newEventId(): string {
  if (poolOffset + RANDOM_BYTES_PER_ID > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += RANDOM_BYTES_PER_ID;
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    // Top bit clear: at least 2^31 increments before the counter overflows.
    counter =
      (((pool[r] as number) & 0x7f) << 24) |
      ((pool[r + 1] as number) << 16) |
      ((pool[r + 2] as number) << 8) |
      (pool[r + 3] as number);
  } else if (counter === 0xffffffff) {
    lastMs++;
    counter = 0;
  } else {
    counter++;
  }
  const hi = Math.floor(lastMs / 0x1000000);
  const lo = lastMs % 0x1000000;
  const c = counter;
  put(0, (hi >>> 16) & 0xff);
  put(1, (hi >>> 8) & 0xff);
  put(2, hi & 0xff);
  put(3, (lo >>> 16) & 0xff);
  put(4, (lo >>> 8) & 0xff);
  put(5, lo & 0xff);
  put(6, 0x70 | ((c >>> 28) & 0x0f));
  put(7, (c >>> 20) & 0xff);
  put(8, 0x80 | ((c >>> 14) & 0x3f));
  put(9, (c >>> 6) & 0xff);
  put(10, ((c << 2) & 0xfc) | ((pool[r + 4] as number) & 0x03));
  for (let i = 11; i < 16; i++) put(i, pool[r + i - 6] as number);
  return text.toString('latin1', 0, 36);
}

let isoMs = -1;
let iso = '';

/** `new Date().toISOString()`, formatted once per millisecond. */
function nowIso(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

/** Fills in id, time and version of a new event. Validation happens in the catalog. */
export function createEvent<TType extends string, TData>(input: NewEvent<TType, TData>): EventEnvelope<TType, TData> {
  const occurredAt = input.occurredAt instanceof Date ? input.occurredAt.toISOString() : (input.occurredAt ?? nowIso());
  // Built field by field (no spreads of temporary objects): this runs once per ingested event.
  // Key order stays id, type, schemaVersion, aggregateId?, aggregateVersion?, occurredAt, data, metadata.
  const event: { -readonly [K in keyof EventEnvelope<TType, TData>]: EventEnvelope<TType, TData>[K] } = {
    id: input.id ?? newEventId(),
    type: input.type,
    schemaVersion: input.schemaVersion ?? 1,
  } as EventEnvelope<TType, TData>;
  if (input.aggregateId !== undefined) event.aggregateId = input.aggregateId;
  if (input.aggregateVersion !== undefined) event.aggregateVersion = input.aggregateVersion;
  event.occurredAt = occurredAt;
  event.data = input.data;
  event.metadata = input.metadata ?? {};
  return event;
}
