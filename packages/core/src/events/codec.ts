import { z } from 'zod';
import { type FieldIssue, ValidationError } from '../errors/index';
import { describe, type EventCatalog } from './catalog';
import type { EventEnvelope } from './envelope';

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

const envelopeShape = z.object({
  id: z.string().min(1).max(200),
  type: z.string().min(1).max(200),
  schemaVersion: z.coerce.number().int().min(1),
  aggregateId: z.string().min(1).max(200).optional(),
  aggregateVersion: z.coerce.number().int().min(0).optional(),
  occurredAt: z.iso.datetime({ offset: true }),
  correlationId: z.string().max(200).optional(),
  causationId: z.string().max(200).optional(),
  traceparent: z.string().max(200).optional(),
});

/**
 * Decodes and validates a stream entry. Anything wrong (missing field, bad JSON, unknown
 * type, data failing its schema) is a `ValidationError` naming the field: such an entry
 * is never retried.
 */
export function decodeEvent(fields: readonly string[], catalog: EventCatalog): EventEnvelope {
  const record = fieldsToRecord(fields);
  const head = envelopeShape.safeParse(record);
  if (!head.success) {
    const issues: FieldIssue[] = head.error.issues.map((i) => ({
      field: i.path.map(String).join('.') || 'entry',
      message: i.message,
    }));
    throw new ValidationError(`invalid event envelope: ${describe(issues)}`, issues);
  }
  const rawData = record[FIELD.data];
  if (rawData === undefined) {
    throw new ValidationError('invalid event envelope: data: missing', [{ field: 'data', message: 'missing' }]);
  }
  let parsedJson: unknown;
  try {
    parsedJson = JSON.parse(rawData);
  } catch {
    throw new ValidationError('invalid event envelope: data: not JSON', [{ field: 'data', message: 'not valid JSON' }]);
  }
  const h = head.data;
  const data = catalog.validate(h.type, h.schemaVersion, parsedJson);
  const metadata: { correlationId?: string; causationId?: string; traceparent?: string } = {};
  if (h.correlationId) metadata.correlationId = h.correlationId;
  if (h.causationId) metadata.causationId = h.causationId;
  if (h.traceparent) metadata.traceparent = h.traceparent;
  return {
    id: h.id,
    type: h.type,
    schemaVersion: h.schemaVersion,
    ...(h.aggregateId === undefined ? {} : { aggregateId: h.aggregateId }),
    ...(h.aggregateVersion === undefined ? {} : { aggregateVersion: h.aggregateVersion }),
    occurredAt: h.occurredAt,
    data,
    metadata,
  };
}
