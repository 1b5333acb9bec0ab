export { describe as describeIssues, EventCatalog, type EventDefinition } from './catalog';
export { decodeEvent, encodeEvent, FIELD, fieldsToRecord } from './codec';
export { createEvent, type EventEnvelope, type EventMetadata, type NewEvent, newEventId } from './envelope';
