import { type FieldIssue, ValidationError } from '../errors/index';
import { describe, type EventCatalog } from './catalog';
import type { EventEnvelope, EventMetadata } from './envelope';

/** Stream entry field names. Full words so that `XRANGE` output reads on its own. */
export const FIELD = {
  id: 'id',
  type: 'type',
  schemaVersion: 'schemaVersion',
  aggregateId: 'aggregateId',
  aggregateVersion: 'aggregateVersion',
  occurredAt: 'occurredAt',
  data: 'data',
  correlationId: 'correlationId',
  causationId: 'causationId',
  traceparent: 'traceparent',
} as const;

/** Flattens an envelope into XADD field/value pairs. */
export function encodeEvent(event: EventEnvelope): string[] {
  const fields: string[] = [
    FIELD.id,
    event.id,
    FIELD.type,
    event.type,
    FIELD.schemaVersion,
    String(event.schemaVersion),
    FIELD.occurredAt,
    event.occurredAt,
    FIELD.data,
    JSON.stringify(event.data ?? null),
  ];
  if (event.aggregateId !== undefined) fields.push(FIELD.aggregateId, event.aggregateId);
  if (event.aggregateVersion !== undefined) fields.push(FIELD.aggregateVersion, String(event.aggregateVersion));
  const m = event.metadata;
  if (m.correlationId) fields.push(FIELD.correlationId, m.correlationId);
  if (m.causationId) fields.push(FIELD.causationId, m.causationId);
  if (m.traceparent) fields.push(FIELD.traceparent, m.traceparent);
  return fields;
}

/** Turns a flat `[k, v, k, v]` reply into a record. */
export function fieldsToRecord(fields: readonly string[]): Record<string, string> {
  const record: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i] as string] = fields[i + 1] as string;
  return record;
}

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const POSITIVE_INT = /^[1-9]\d{0,8}$/;
/** Up to 2^53 - 1 (16 digits), what `z.number().int()` and JSON numbers allow; checked exactly below. */
const NON_NEGATIVE_INT = /^(0|[1-9]\d{0,15})$/;
/** The longest id, type and other envelope text a valid entry has. */
export const MAX_ENVELOPE_TEXT = 200;
const MAX_TEXT = MAX_ENVELOPE_TEXT;

/**
 * Decodes and validates a stream entry. Anything wrong (missing field, bad JSON, unknown
 * type, data failing its schema) is a `ValidationError` naming the field: such an entry
 * is never retried.
 *
 * The envelope is checked by hand rather than with zod: this runs once per entry on the
 * hot path, and the fields are flat strings. `data` goes through the catalog's schema, and
 * its upcasters when the type has newer versions: the envelope says the version it is at.
 */
export function decodeEvent(fields: readonly string[], catalog: EventCatalog): EventEnvelope {
  let id: string | undefined;
  let type: string | undefined;
  let schemaVersion: string | undefined;
  let aggregateId: string | undefined;
  let aggregateVersion: string | undefined;
  let occurredAt: string | undefined;
  let rawData: string | undefined;
  let correlationId: string | undefined;
  let causationId: string | undefined;
  let traceparent: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] as string;
    switch (fields[i]) {
      case FIELD.id:
        id = value;
        break;
      case FIELD.type:
        type = value;
        break;
      case FIELD.schemaVersion:
        schemaVersion = value;
        break;
      case FIELD.aggregateId:
        aggregateId = value;
        break;
      case FIELD.aggregateVersion:
        aggregateVersion = value;
        break;
      case FIELD.occurredAt:
        occurredAt = value;
        break;
      case FIELD.data:
        rawData = value;
        break;
      case FIELD.correlationId:
        correlationId = value;
        break;
      case FIELD.causationId:
        causationId = value;
        break;
      case FIELD.traceparent:
        traceparent = value;
        break;
    }
  }
  // The issue list is only allocated once something is wrong: this runs once per entry.
  let issues: FieldIssue[] | undefined;
  issues = checkText(issues, 'id', id, true);
  issues = checkText(issues, 'type', type, true);
  issues = checkText(issues, 'aggregateId', aggregateId, false);
  issues = checkText(issues, 'correlationId', correlationId, false);
  issues = checkText(issues, 'causationId', causationId, false);
  issues = checkText(issues, 'traceparent', traceparent, false);
  if (schemaVersion === undefined) issues = note(issues, 'schemaVersion', 'missing');
  else if (!POSITIVE_INT.test(schemaVersion)) issues = note(issues, 'schemaVersion', 'not a positive integer');
  if (
    aggregateVersion !== undefined &&
    !(NON_NEGATIVE_INT.test(aggregateVersion) && Number.isSafeInteger(Number(aggregateVersion)))
  ) {
    issues = note(issues, 'aggregateVersion', 'not a non-negative integer');
  }
  if (occurredAt === undefined) issues = note(issues, 'occurredAt', 'missing');
  else if (!ISO_DATETIME.test(occurredAt)) issues = note(issues, 'occurredAt', 'not an ISO 8601 date-time');
  let parsedJson: unknown;
  if (rawData === undefined) issues = note(issues, 'data', 'missing');
  else {
    try {
      parsedJson = JSON.parse(rawData);
    } catch {
      issues = note(issues, 'data', 'not valid JSON');
    }
  }
  if (issues) throw new ValidationError(`invalid event envelope: ${describe(issues)}`, issues);
  const { schemaVersion: version, data } = catalog.read(type as string, Number(schemaVersion), parsedJson);
  let metadata: EventMetadata = NO_METADATA;
  if (correlationId || causationId || traceparent) {
    const m: { -readonly [K in keyof EventMetadata]: EventMetadata[K] } = {};
    if (correlationId) m.correlationId = correlationId;
    if (causationId) m.causationId = causationId;
    if (traceparent) m.traceparent = traceparent;
    metadata = m;
  }
  const event: {
    -readonly [K in keyof EventEnvelope]: EventEnvelope[K];
  } = {
    id: id as string,
    type: type as string,
    schemaVersion: version,
    occurredAt: occurredAt as string,
    data,
    metadata,
  };
  if (aggregateId) event.aggregateId = aggregateId;
  if (aggregateVersion !== undefined) event.aggregateVersion = Number(aggregateVersion);
  return event;
}

/** Shared by every decoded event without metadata: events are readonly, so one frozen object serves all. */
const NO_METADATA: EventMetadata = Object.freeze({});

function note(issues: FieldIssue[] | undefined, field: string, message: string): FieldIssue[] {
  const list = issues ?? [];
  list.push({ field, message });
  return list;
}

function checkText(
  issues: FieldIssue[] | undefined,
  field: string,
  value: string | undefined,
  required: boolean,
): FieldIssue[] | undefined {
  if (value === undefined || value === '') return required ? note(issues, field, 'missing') : issues;
  return value.length > MAX_TEXT ? note(issues, field, `longer than ${MAX_TEXT} characters`) : issues;
}
