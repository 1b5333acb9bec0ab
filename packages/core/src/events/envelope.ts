import { v7 as uuidv7 } from 'uuid';

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

/** Time-ordered UUID (v7): sorts by creation time, good for indexes and logs. */
export function newEventId(): string {
  return uuidv7();
}

/** Fills in id, time and version of a new event. Validation happens in the catalog. */
export function createEvent<TType extends string, TData>(input: NewEvent<TType, TData>): EventEnvelope<TType, TData> {
  const occurredAt =
    input.occurredAt instanceof Date ? input.occurredAt.toISOString() : (input.occurredAt ?? new Date().toISOString());
  return {
    id: input.id ?? newEventId(),
    type: input.type,
    schemaVersion: input.schemaVersion ?? 1,
    ...(input.aggregateId === undefined ? {} : { aggregateId: input.aggregateId }),
    ...(input.aggregateVersion === undefined ? {} : { aggregateVersion: input.aggregateVersion }),
    occurredAt,
    data: input.data,
    metadata: input.metadata ?? {},
  };
}
