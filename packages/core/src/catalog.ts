import { EventCatalog } from './events/catalog';
import { registerOrderEvents } from './orders/events';

/** The catalog of every event type streamfleet's reference application knows. */
export function createCatalog(): EventCatalog {
  return registerOrderEvents(new EventCatalog());
}
