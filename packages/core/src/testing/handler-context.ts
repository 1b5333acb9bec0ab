import { silentLogger } from '../logging/index';
import type { HandlerContext } from '../streams/handler';

/**
 * The context of a first delivery from the `orders` stream, for calling a group's handler
 * directly (no fleet, no Redis). Spread it for a retry: `{ ...ctx, attempt: 2 }`.
 */
export function handlerContext(group: string): HandlerContext {
  return {
    group,
    stream: 'orders',
    entryId: '0-1',
    attempt: 1,
    deliveryCount: 1,
    replayCount: 0,
    logger: silentLogger,
    signal: new AbortController().signal,
  };
}
