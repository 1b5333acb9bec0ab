export { defaultConsumerName, Fleet, type FleetOptions } from './fleet';
