export { createCatalog } from './catalog';
export * from './config/index';
export * from './dead-letter/index';
export * from './errors/index';
export * from './events/index';
export * from './fleet/index';
export * from './logging/index';
export * from './retry/index';
export * from './streams/index';
