export {
  type CommandOptions,
  type CommandResult,
  cancelOrder,
  confirmOrder,
  createOrder,
  deliverOrder,
  getOrderOrThrow,
  loadOrder,
  markOrderPaid,
  shipOrder,
} from './commands';
export * from './events';
export {
  type CreateOrderInput,
  decideCancel,
  decideConfirm,
  decideCreate,
  decideDeliver,
  decidePay,
  decideShip,
  evolve,
  fitReason,
  foldOrder,
  isOrderEvent,
  ORDER_STATUSES,
  type Order,
  OrderErrorCode,
  type OrderItem,
  type OrderStatus,
} from './order';
export { createOrderGroups, type OrderGroupsDeps } from './order-groups';
export { OrderService } from './order-service';
