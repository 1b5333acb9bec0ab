export { createRedis, isRedisUnavailable, type RedisClient, type RedisConnectionOptions } from './connection';
export { ConsumerGroup, type ConsumerGroupOptions, type ConsumerTuning } from './consumer-group';
export { GroupPauses } from './group-pauses';
export {
  DEFAULT_HANDLER_TIMEOUT_MS,
  type EventHandler,
  type GroupDefinition,
  type GroupObserver,
  type HandlerContext,
} from './handler';
export { KeyedLimiter } from './keyed-limiter';
export { StreamfleetKeys } from './keys';
export { type PublishTarget, StreamProducer, type StreamProducerOptions } from './producer';
export * from './reply';
export { StreamTrimmer, type StreamTrimmerOptions } from './stream-trimmer';
